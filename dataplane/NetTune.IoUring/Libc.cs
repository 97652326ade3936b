using System.Runtime.InteropServices;

namespace NetTune.IoUring;

/// <summary>
/// The raw Linux calls the ring and the server need, declared with plain blittable types so the
/// source-generated stubs are allocation-free and NativeAOT-safe. Layouts are x86-64 (epoll_event is
/// packed there); the io_uring and openat2 syscall numbers are the same on every architecture.
/// </summary>
public static unsafe partial class Libc
{
    private const string Lib = "libc.so.6";

    public const int EINTR = 4, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EBUSY = 16, EEXIST = 17, EXDEV = 18,
        ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EMFILE = 24, ENFILE = 23, ENOSPC = 28, EPIPE = 32, ENOENT = 2,
        EPERM = 1, ENOSYS = 38, ELOOP = 40, ENAMETOOLONG = 36, ETIME = 62, ECONNRESET = 104, EADDRINUSE = 98,
        ECANCELED = 125, EOPNOTSUPP = 95, ENOBUFS = 105,
        EINPROGRESS = 115, ETIMEDOUT = 110, ECONNREFUSED = 111;

    public const long SYS_io_uring_setup = 425, SYS_io_uring_enter = 426, SYS_io_uring_register = 427, SYS_openat2 = 437;

    public static int Errno => Marshal.GetLastPInvokeError();

    [LibraryImport(Lib, SetLastError = true)]
    public static partial long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int munmap(void* addr, nuint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int madvise(void* addr, nuint length, int advice);

    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
        MAP_POPULATE = 0x8000, MAP_HUGETLB = 0x40000;
    public static readonly void* MAP_FAILED = (void*)-1;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int bind(int fd, void* address, uint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int connect(int fd, void* address, uint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int listen(int fd, int backlog);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int accept4(int fd, void* address, uint* length, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int getsockname(int fd, void* address, uint* length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int getpeername(int fd, void* address, uint* length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint recv(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, EntryPoint = "pread64", SetLastError = true)]
    public static partial nint pread(int fd, void* buffer, nuint length, long offset);

    [LibraryImport(Lib, EntryPoint = "sendfile64", SetLastError = true)]
    public static partial nint sendfile(int outFd, int inFd, long* offset, nuint count);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint splice(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int eventfd(uint initial, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_wait(int epfd, EpollEvent* events, int max, int timeoutMs);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sched_setaffinity(int pid, nuint size, ulong* mask);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sched_getaffinity(int pid, nuint size, ulong* mask);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int statx(int dirfd, byte* path, int flags, uint mask, byte* statxBuffer);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int getpid();

    public const int AF_INET = 2, SOCK_STREAM = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000,
        SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_ERROR = 4, SO_REUSEPORT = 15, SO_INCOMING_CPU = 49, SO_ZEROCOPY = 60,
        SO_SNDBUF = 7, IPPROTO_TCP = 6, TCP_NODELAY = 1, TCP_DEFER_ACCEPT = 9,
        MSG_NOSIGNAL = 0x4000, MSG_DONTWAIT = 0x40, MSG_WAITALL = 0x100, MSG_MORE = 0x8000, MSG_ZEROCOPY = 0x4000000, MSG_ERRQUEUE = 0x2000, SO_LINGER = 13, SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;

    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3, EPOLL_CLOEXEC = 0x80000;
    public const uint EPOLLIN = 1, EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000, EPOLLONESHOT = 1u << 30, EPOLLET = 1u << 31;

    public const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;
    public const ulong RESOLVE_NO_MAGICLINKS = 2, RESOLVE_BENEATH = 8;
    public const int AT_EMPTY_PATH = 0x1000, F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, SPLICE_F_MOVE = 1, SPLICE_F_NONBLOCK = 2, SPLICE_F_MORE = 4;
    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;

    /// <summary>openat2(2): the kernel refuses escapes from <paramref name="dirfd"/>, including via symlinks.</summary>
    public static int OpenBeneath(int dirfd, byte* path, int flags)
    {
        var how = stackalloc ulong[3];
        how[0] = (ulong)flags;
        how[1] = 0;
        how[2] = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        return (int)syscall(SYS_openat2, dirfd, (long)path, (long)how, 24, 0, 0);
    }
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVec
{
    public void* Base;
    public nuint Length;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLength;
    public IoVec* Iov;
    public nuint IovLength;
    public void* Control;
    public nuint ControlLength;
    public int Flags;
}

/// <summary>struct cmsghdr (x86-64/arm64 layout); the data follows, 8-byte aligned.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CmsgHdr
{
    public nuint Length;
    public int Level;
    public int Type;
}

/// <summary>struct sock_extended_err from linux/errqueue.h: what the socket error queue delivers.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SockExtendedErr
{
    public uint Errno;
    public byte Origin;
    public byte Type;
    public byte Code;
    public byte Pad;
    public uint Info;
    public uint Data;

    public const byte OriginZeroCopy = 5;
    public const byte CodeZeroCopyCopied = 1;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct EpollEvent
{
    public uint Events;
    public ulong Data;
}

[StructLayout(LayoutKind.Sequential)]
public struct SockAddrIn
{
    public ushort Family;
    /// <summary>Network byte order.</summary>
    public ushort Port;
    /// <summary>Network byte order.</summary>
    public uint Address;
    public ulong Zero;
}

/// <summary>The fields of struct statx (256 bytes, same on every architecture) that we read.</summary>
public static unsafe class StatxFields
{
    public const int BufferSize = 256;
    public const uint STATX_BASIC_STATS = 0x7ff;
    public const ushort S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000;
    public static ushort Mode(byte* b) => *(ushort*)(b + 28);
    public static ulong Inode(byte* b) => *(ulong*)(b + 32);
    public static long Size(byte* b) => *(long*)(b + 40);
    public static long MtimeSeconds(byte* b) => *(long*)(b + 112);
    public static uint MtimeNanos(byte* b) => *(uint*)(b + 120);
}
