using System.Net;
using System.Runtime.InteropServices;
using NetTune.IoUring;

namespace NetTune.DataPlane;

internal static unsafe class Platform
{
    private const int MaskWords = 16; // 1024 CPUs

    public static IReadOnlyList<int> AllowedCpus()
    {
        ulong* mask = stackalloc ulong[MaskWords];
        new Span<ulong>(mask, MaskWords).Clear();
        if (Libc.sched_getaffinity(0, MaskWords * 8, mask) != 0)
            throw new InvalidOperationException($"sched_getaffinity failed: errno {Libc.Errno}");
        var cpus = new List<int>();
        for (int i = 0; i < MaskWords * 64; i++)
            if ((mask[i / 64] & (1UL << (i % 64))) != 0) cpus.Add(i);
        return cpus;
    }

    /// <summary>
    /// Raises the soft open-files limit to the hard one (every connection is an fd, two in proxy mode) and
    /// returns the limit now in force, or -1 if it cannot be read.
    /// </summary>
    public static long RaiseOpenFilesLimit()
    {
        ulong* limits = stackalloc ulong[2];
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, limits) != 0) return -1;
        if (limits[0] < limits[1])
        {
            ulong soft = limits[0];
            limits[0] = limits[1];
            if (Libc.setrlimit(Libc.RLIMIT_NOFILE, limits) != 0) limits[0] = soft;
        }
        return limits[0] > long.MaxValue ? long.MaxValue : (long)limits[0];
    }

    /// <summary>Pins the calling thread to one CPU.</summary>
    public static void PinCurrentThread(int cpu)
    {
        ulong* mask = stackalloc ulong[MaskWords];
        new Span<ulong>(mask, MaskWords).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        if (Libc.sched_setaffinity(0, MaskWords * 8, mask) != 0)
            throw new InvalidOperationException($"sched_setaffinity to CPU {cpu} failed: errno {Libc.Errno}");
    }

    /// <summary>
    /// Binds the calling thread's future allocations to a NUMA node (set_mempolicy MPOL_BIND). Buffers
    /// are allocated and first touched by the worker after this, so they land on its node.
    /// </summary>
    public static bool BindMemoryToNode(int node, out int errno)
    {
        const int MPOL_BIND = 2;
        long sysno = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 238,
            Architecture.Arm64 => 237,
            _ => -1,
        };
        errno = Libc.ENOSYS;
        if (sysno < 0) return false;
        ulong* nodemask = stackalloc ulong[16];
        new Span<ulong>(nodemask, 16).Clear();
        nodemask[node / 64] = 1UL << (node % 64);
        long r = Libc.syscall(sysno, MPOL_BIND, (long)nodemask, 16 * 64 + 1, 0, 0, 0);
        errno = r == 0 ? 0 : Libc.Errno;
        return r == 0;
    }

    /// <summary>
    /// A listening socket for one worker. SO_REUSEPORT gives every worker its own accept queue, so
    /// no lock or thundering herd sits between the kernel and a core.
    /// </summary>
    public static int CreateListener(IPAddress address, int port, int incomingCpu, bool nonBlocking)
    {
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new StartupException($"--address {address} is not IPv4");
        int fd = Libc.socket(Libc.AF_INET, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC | (nonBlocking ? Libc.SOCK_NONBLOCK : 0), 0);
        if (fd < 0) throw new StartupException($"socket() failed: errno {Libc.Errno}");
        int one = 1;
        Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_REUSEADDR, &one, 4);
        Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_REUSEPORT, &one, 4);
        if (incomingCpu >= 0) Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_INCOMING_CPU, &incomingCpu, 4);
        Libc.setsockopt(fd, Libc.IPPROTO_TCP, Libc.TCP_NODELAY, &one, 4);
        var sa = new SockAddrIn
        {
            Family = Libc.AF_INET,
            Port = (ushort)IPAddress.HostToNetworkOrder((short)port),
            Address = BitConverter.ToUInt32(address.GetAddressBytes()),
        };
        if (Libc.bind(fd, &sa, (uint)sizeof(SockAddrIn)) != 0)
        {
            int e = Libc.Errno;
            Libc.close(fd);
            throw new StartupException(e == Libc.EADDRINUSE
                ? $"port {port} on {address} is already in use"
                : $"bind to {address}:{port} failed: errno {e}");
        }
        if (Libc.listen(fd, 4096) != 0)
        {
            int e = Libc.Errno;
            Libc.close(fd);
            throw new StartupException($"listen on {address}:{port} failed: errno {e}");
        }
        return fd;
    }

    public static int LocalPort(int fd)
    {
        SockAddrIn sa;
        uint len = (uint)sizeof(SockAddrIn);
        if (Libc.getsockname(fd, &sa, &len) != 0) return -1;
        return (ushort)IPAddress.NetworkToHostOrder((short)sa.Port);
    }

    /// <summary>Whether the peer of a connected socket is 127.0.0.0/8 (where zero-copy does not pay).</summary>
    public static bool PeerIsLoopback(int fd)
    {
        SockAddrIn sa;
        uint len = (uint)sizeof(SockAddrIn);
        if (Libc.getpeername(fd, &sa, &len) != 0 || sa.Family != Libc.AF_INET) return false;
        return (sa.Address & 0xff) == 127;
    }

    /// <summary>
    /// The peer's IPv4 address as text (for X-Forwarded-For); returns the bytes written, "unknown" if there is none.
    /// <paramref name="address"/> is the address as it sits in the sockaddr (network order), 0 when unknown.
    /// </summary>
    public static int FormatPeerAddress(int fd, Span<byte> destination, out uint address)
    {
        SockAddrIn sa;
        uint len = (uint)sizeof(SockAddrIn);
        address = 0;
        if (Libc.getpeername(fd, &sa, &len) != 0 || sa.Family != Libc.AF_INET)
        {
            "unknown"u8.CopyTo(destination);
            return 7;
        }
        int n = 0;
        uint a = address = sa.Address;
        for (int i = 0; i < 4; i++)
        {
            if (i > 0) destination[n++] = (byte)'.';
            System.Buffers.Text.Utf8Formatter.TryFormat((byte)(a >> (8 * i)), destination[n..], out int w);
            n += w;
        }
        return n;
    }

    /// <summary>A socket for connecting to an upstream.</summary>
    public static int CreateUpstreamSocket(int family, bool nonBlocking) =>
        Libc.socket(family, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC | (nonBlocking ? Libc.SOCK_NONBLOCK : 0), 0);

    public static void SetNonBlocking(int fd)
    {
        int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
        if (flags >= 0) Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK);
    }

    /// <summary>
    /// Bytes of this connection the peer has acknowledged (TCP_INFO's tcpi_bytes_acked, Linux 4.1+): what a client
    /// really took, not what sits in our send buffer. -1 when the kernel does not say.
    /// </summary>
    public static long BytesAcked(int fd)
    {
        const int TcpInfo = 11, BytesAckedOffset = 120, Needed = BytesAckedOffset + 8;
        byte* info = stackalloc byte[256];
        uint length = 256;
        if (Libc.getsockopt(fd, Libc.IPPROTO_TCP, TcpInfo, info, &length) != 0 || length < Needed) return -1;
        return *(long*)(info + BytesAckedOffset);
    }

    /// <summary>Makes the coming close() reset the connection and drop what is still queued for the peer.</summary>
    public static void ResetOnClose(int fd)
    {
        int* linger = stackalloc int[2] { 1, 0 };
        Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_LINGER, linger, 8);
    }

    public static void SetNoDelay(int fd)
    {
        int one = 1;
        Libc.setsockopt(fd, Libc.IPPROTO_TCP, Libc.TCP_NODELAY, &one, 4);
    }
}

public sealed class StartupException(string message) : Exception(message);
