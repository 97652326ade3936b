using System.Runtime.InteropServices;
using System.Text;
using static Tmds.Linux.LibC;

namespace NetTune.Agent.Core.Host;

/// <summary>
/// Channels through the SIOCETHTOOL ioctl (ETHTOOL_GCHANNELS / ETHTOOL_SCHANNELS) on a datagram socket. It acts on
/// the network namespace of the calling process, which is the host's when the agent runs with hostNetwork.
/// </summary>
public sealed class EthtoolChannelControl : IChannelControl
{
    private const int SIOCETHTOOL = 0x8946;
    private const uint ETHTOOL_GCHANNELS = 0x3c;
    private const uint ETHTOOL_SCHANNELS = 0x3d;
    private const int IFNAMSIZ = 16;

    // struct ethtool_channels from linux/ethtool.h: nine __u32.
    [StructLayout(LayoutKind.Sequential)]
    private struct EthtoolChannels
    {
        public uint Cmd, MaxRx, MaxTx, MaxOther, MaxCombined, RxCount, TxCount, OtherCount, CombinedCount;
    }

    // struct ifreq: a 16-byte name, then a 24-byte union whose first member here is ifr_data.
    [StructLayout(LayoutKind.Sequential, Size = 40)]
    private unsafe struct IfReq
    {
        public fixed byte Name[IFNAMSIZ];
        public void* Data;
    }

    public (ChannelInfo? Info, int Errno) Get(string ifName)
    {
        var ch = new EthtoolChannels { Cmd = ETHTOOL_GCHANNELS };
        var err = Ioctl(ifName, ref ch);
        if (err != 0) return (null, err);
        return (new ChannelInfo(
            new ChannelCounts((int)ch.RxCount, (int)ch.TxCount, (int)ch.OtherCount, (int)ch.CombinedCount),
            new ChannelCounts((int)ch.MaxRx, (int)ch.MaxTx, (int)ch.MaxOther, (int)ch.MaxCombined)), 0);
    }

    public int Set(string ifName, ChannelCounts counts)
    {
        var ch = new EthtoolChannels
        {
            Cmd = ETHTOOL_SCHANNELS,
            RxCount = (uint)counts.Rx,
            TxCount = (uint)counts.Tx,
            OtherCount = (uint)counts.Other,
            CombinedCount = (uint)counts.Combined,
        };
        return Ioctl(ifName, ref ch);
    }

    private static unsafe int Ioctl(string ifName, ref EthtoolChannels ch)
    {
        var name = Encoding.ASCII.GetBytes(ifName);
        if (name.Length >= IFNAMSIZ) return Errnos.EINVAL;
        var fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return errno;
        try
        {
            var req = new IfReq();
            for (var i = 0; i < name.Length; i++) req.Name[i] = name[i];
            fixed (EthtoolChannels* p = &ch)
            {
                req.Data = p;
                return ioctl(fd, SIOCETHTOOL, &req) < 0 ? errno : 0;
            }
        }
        finally
        {
            close(fd);
        }
    }
}
