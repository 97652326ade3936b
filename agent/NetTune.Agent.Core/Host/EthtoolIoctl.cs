using System.Runtime.InteropServices;
using System.Text;
using static Tmds.Linux.LibC;

namespace NetTune.Agent.Core.Host;

/// <summary>
/// The SIOCETHTOOL ioctl on a datagram socket: the command structure is passed by pointer in ifr_data. It acts on the
/// network namespace of the calling process, which is the host's when the agent runs with hostNetwork.
/// </summary>
public static class EthtoolIoctl
{
    private const int SIOCETHTOOL = 0x8946;
    private const int IFNAMSIZ = 16;

    // struct ifreq: a 16-byte name, then a 24-byte union whose first member here is ifr_data.
    [StructLayout(LayoutKind.Sequential, Size = 40)]
    private unsafe struct IfReq
    {
        public fixed byte Name[IFNAMSIZ];
        public void* Data;
    }

    /// <summary>Runs the command in <paramref name="data"/> (its first __u32 is the command); returns the ioctl's result (≥ 0) or -errno.</summary>
    public static unsafe int Call(string ifName, Span<byte> data)
    {
        var name = Encoding.ASCII.GetBytes(ifName);
        if (name.Length >= IFNAMSIZ || name.Length == 0) return -Errnos.EINVAL;
        var fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        try
        {
            var req = new IfReq();
            for (var i = 0; i < name.Length; i++) req.Name[i] = name[i];
            fixed (byte* p = data)
            {
                req.Data = p;
                var r = ioctl(fd, SIOCETHTOOL, &req);
                return r < 0 ? -errno : r;
            }
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Runs a command made of __u32 words (most ethtool structures are); returns 0 or the errno.</summary>
    public static int Call(string ifName, uint[] words)
    {
        var r = Call(ifName, MemoryMarshal.AsBytes(words.AsSpan()));
        return r < 0 ? -r : 0;
    }
}
