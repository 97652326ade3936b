using System.Runtime.InteropServices;
using Tmds.Linux;
using TmdsLibC = Tmds.Linux.LibC;

namespace NetTune.IoUring;

/// <summary>
/// The data plane's one doorway to libc. The calls are thin adapters over Tmds.LibC: they keep the
/// plain blittable types (nint/nuint, our structs) the call sites were written against and cast them
/// to Tmds's types, whose layouts are the same on x86-64 and arm64 (LibcParityTests checks each one).
/// Only what Tmds.LibC 0.5.0 lacks is declared here by hand, each with the reason next to it.
/// </summary>
/// <remarks>
/// The constants stay ours, as C# constants: Tmds.LibC exposes its values only as static properties,
/// and the call sites use these in <c>is</c> patterns, switch arms and <c>const</c> declarations,
/// which need compile-time constants. LibcParityTests compares every one with Tmds's value.
/// </remarks>
public static unsafe partial class Libc
{
    /// <summary>For the calls Tmds.LibC 0.5.0 does not declare.</summary>
    private const string Lib = "libc.so.6";

    public const int EINTR = 4, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EBUSY = 16, EEXIST = 17, EXDEV = 18,
        ENOTDIR = 20, EISDIR = 21, EINVAL = 22, EMFILE = 24, ENFILE = 23, ENOSPC = 28, EPIPE = 32, ENOENT = 2,
        EPERM = 1, ENOSYS = 38, ELOOP = 40, ENAMETOOLONG = 36, ETIME = 62, ECONNRESET = 104, EADDRINUSE = 98,
        ECANCELED = 125, EOPNOTSUPP = 95, ENOBUFS = 105,
        EINPROGRESS = 115, ETIMEDOUT = 110;

    /// <summary>
    /// Not in Tmds.LibC 0.5.0 (it keeps its io_uring numbers private and has no openat2 number);
    /// the io_uring and openat2 numbers are the same on every architecture.
    /// </summary>
    public const long SYS_io_uring_setup = 425, SYS_io_uring_enter = 426, SYS_io_uring_register = 427, SYS_openat2 = 437;

    /// <summary>errno of the last call above (Tmds.LibC declares them all with SetLastError).</summary>
    public static int Errno => TmdsLibC.errno;

    public static long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6) =>
        TmdsLibC.syscall((ssize_t)number, (ssize_t)a1, (ssize_t)a2, (ssize_t)a3, (ssize_t)a4, (ssize_t)a5, (ssize_t)a6).Long();

    public static int close(int fd) => TmdsLibC.close(fd);

    public static void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset) =>
        TmdsLibC.mmap(addr, length.Size(), prot, flags, fd, offset);

    public static int munmap(void* addr, nuint length) => TmdsLibC.munmap(addr, length.Size());

    public static int madvise(void* addr, nuint length, int advice) => TmdsLibC.madvise(addr, length.Size(), advice);

    public const int PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
        MAP_POPULATE = 0x8000, MAP_HUGETLB = 0x40000, MADV_DONTNEED = 4;
    public static readonly void* MAP_FAILED = TmdsLibC.MAP_FAILED;

    public static int socket(int domain, int type, int protocol) => TmdsLibC.socket(domain, type, protocol);

    public static int setsockopt(int fd, int level, int name, void* value, uint length) =>
        TmdsLibC.setsockopt(fd, level, name, value, length);

    public static int getsockopt(int fd, int level, int name, void* value, uint* length) =>
        TmdsLibC.getsockopt(fd, level, name, value, (socklen_t*)length);

    public static int bind(int fd, void* address, uint length) => TmdsLibC.bind(fd, (sockaddr*)address, length);

    public static int connect(int fd, void* address, uint length) => TmdsLibC.connect(fd, (sockaddr*)address, length);

    public static int listen(int fd, int backlog) => TmdsLibC.listen(fd, backlog);

    public static int accept4(int fd, void* address, uint* length, int flags) =>
        TmdsLibC.accept4(fd, (sockaddr*)address, (socklen_t*)length, flags);

    public static int getsockname(int fd, void* address, uint* length) =>
        TmdsLibC.getsockname(fd, (sockaddr*)address, (socklen_t*)length);

    public static int getpeername(int fd, void* address, uint* length) =>
        TmdsLibC.getpeername(fd, (sockaddr*)address, (socklen_t*)length);

    public static int shutdown(int fd, int how) => TmdsLibC.shutdown(fd, how);

    public static nint recv(int fd, void* buffer, nuint length, int flags) =>
        TmdsLibC.recv(fd, buffer, length.Size(), flags).Nint();

    public static nint send(int fd, void* buffer, nuint length, int flags) =>
        TmdsLibC.send(fd, buffer, length.Size(), flags).Nint();

    public static nint sendmsg(int fd, MsgHdr* message, int flags) => TmdsLibC.sendmsg(fd, (msghdr*)message, flags).Nint();

    public static nint recvmsg(int fd, MsgHdr* message, int flags) => TmdsLibC.recvmsg(fd, (msghdr*)message, flags).Nint();

    /// <summary>Tmds.LibC binds "pread", which glibc's 64-bit ABIs alias to pread64 (off_t is 64-bit there).</summary>
    public static nint pread(int fd, void* buffer, nuint length, long offset) =>
        TmdsLibC.pread(fd, buffer, length.Size(), offset).Nint();

    /// <summary>Ours: sendfile is not in Tmds.LibC 0.5.0.</summary>
    [LibraryImport(Lib, EntryPoint = "sendfile64", SetLastError = true)]
    public static partial nint sendfile(int outFd, int inFd, long* offset, nuint count);

    /// <summary>Ours: getrlimit/setrlimit are not in Tmds.LibC 0.5.0 (struct rlimit is two 64-bit words on 64-bit ABIs).</summary>
    [LibraryImport(Lib, EntryPoint = "getrlimit", SetLastError = true)]
    public static partial int getrlimit(int resource, ulong* limits);

    [LibraryImport(Lib, EntryPoint = "setrlimit", SetLastError = true)]
    public static partial int setrlimit(int resource, ulong* limits);

    public const int RLIMIT_NOFILE = 7;

    public static nint splice(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags) =>
        TmdsLibC.splice(fdIn, (off_t*)offIn, fdOut, (off_t*)offOut, length.Size(), flags).Nint();

    public static int pipe2(int* fds, int flags) => TmdsLibC.pipe2(fds, flags);

    public static int fcntl(int fd, int cmd, int arg) => TmdsLibC.fcntl(fd, cmd, arg);

    public static int eventfd(uint initial, int flags) => TmdsLibC.eventfd(initial, flags);

    public static nint write(int fd, void* buffer, nuint length) => TmdsLibC.write(fd, buffer, length.Size()).Nint();

    public static nint read(int fd, void* buffer, nuint length) => TmdsLibC.read(fd, buffer, length.Size()).Nint();

    public static int epoll_create1(int flags) => TmdsLibC.epoll_create1(flags);

    public static int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev) => TmdsLibC.epoll_ctl(epfd, op, fd, (epoll_event*)ev);

    public static int epoll_wait(int epfd, EpollEvent* events, int max, int timeoutMs) =>
        TmdsLibC.epoll_wait(epfd, (epoll_event*)events, max, timeoutMs);

    /// <summary><paramref name="mask"/> may be larger than cpu_set_t: the kernel goes by <paramref name="size"/>.</summary>
    public static int sched_setaffinity(int pid, nuint size, ulong* mask) =>
        TmdsLibC.sched_setaffinity(pid, size.Size(), (cpu_set_t*)mask);

    public static int sched_getaffinity(int pid, nuint size, ulong* mask) =>
        TmdsLibC.sched_getaffinity(pid, size.Size(), (cpu_set_t*)mask);

    public static int statx(int dirfd, byte* path, int flags, uint mask, byte* statxBuffer) =>
        TmdsLibC.statx(dirfd, path, flags, mask, (global::Tmds.Linux.statx*)statxBuffer);

    public static int getpid() => TmdsLibC.getpid();

    public const int AF_INET = 2, SOCK_STREAM = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000,
        SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_ERROR = 4, SO_REUSEPORT = 15, SO_INCOMING_CPU = 49, SO_ZEROCOPY = 60,
        SO_SNDBUF = 7, IPPROTO_TCP = 6, TCP_NODELAY = 1, TCP_DEFER_ACCEPT = 9,
        MSG_NOSIGNAL = 0x4000, MSG_PEEK = 2, MSG_DONTWAIT = 0x40, MSG_WAITALL = 0x100, MSG_MORE = 0x8000, MSG_ZEROCOPY = 0x4000000, MSG_ERRQUEUE = 0x2000, SO_LINGER = 13, SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;

    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3, EPOLL_CLOEXEC = 0x80000;
    public const uint EPOLLIN = 1, EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000, EPOLLET = 1u << 31;

    public const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_DIRECTORY = 0x10000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000, O_PATH = 0x200000, AT_FDCWD = -100;
    public const ulong RESOLVE_NO_MAGICLINKS = 2, RESOLVE_BENEATH = 8;
    public const int AT_EMPTY_PATH = 0x1000, F_GETFL = 3, F_SETFL = 4, F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, SPLICE_F_MOVE = 1, SPLICE_F_NONBLOCK = 2, SPLICE_F_MORE = 4;
    public const int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;

    public static int openat(int dirfd, byte* path, int flags) => TmdsLibC.openat(dirfd, path, flags, 0);

    /// <summary>openat2(2): the kernel refuses escapes from <paramref name="dirfd"/>, including via symlinks.</summary>
    public static int OpenBeneath(int dirfd, byte* path, int flags)
    {
        var how = new open_how { flags = (ulong)flags, resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
        return TmdsLibC.openat2(dirfd, path, &how, sizeof(open_how));
    }

    // Tmds.LibC's size_t/ssize_t are structs whose conversions go through ulong/long; these keep the
    // adapters above one expression each.
    private static size_t Size(this nuint value) => (size_t)(ulong)value;
    private static nint Nint(this ssize_t value) => (nint)(long)value;
    private static long Long(this syscall_arg value) => (long)(ssize_t)value;
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

/// <summary>The fields of struct statx (256 bytes, same on every architecture) that we read, through Tmds.LibC's struct statx.</summary>
public static unsafe class StatxFields
{
    public const int BufferSize = 256;
    public const uint STATX_BASIC_STATS = 0x7ff;
    public const ushort S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000;
    public static ushort Mode(byte* b) => ((statx*)b)->stx_mode;
    public static ulong Inode(byte* b) => ((statx*)b)->stx_ino;
    public static long Size(byte* b) => (long)((statx*)b)->stx_size;
    public static long MtimeSeconds(byte* b) => ((statx*)b)->stx_mtime.tv_sec;
    public static uint MtimeNanos(byte* b) => ((statx*)b)->stx_mtime.tv_nsec;
}
