namespace NetTune.Agent.Core.Host;

/// <summary>
/// Channels through the SIOCETHTOOL ioctl (ETHTOOL_GCHANNELS / ETHTOOL_SCHANNELS), in the calling process's network
/// namespace (see <see cref="EthtoolIoctl"/>).
/// </summary>
public sealed class EthtoolChannelControl : IChannelControl
{
    private const uint ETHTOOL_GCHANNELS = 0x3c;
    private const uint ETHTOOL_SCHANNELS = 0x3d;

    public INicSettingsControl Settings { get; } = new EthtoolNicSettings();

    // struct ethtool_channels from linux/ethtool.h: cmd, four maximums, four counts (nine __u32).
    public (ChannelInfo? Info, int Errno) Get(string ifName)
    {
        var ch = new uint[9];
        ch[0] = ETHTOOL_GCHANNELS;
        var err = EthtoolIoctl.Call(ifName, ch);
        if (err != 0) return (null, err);
        return (new ChannelInfo(
            new ChannelCounts((int)ch[5], (int)ch[6], (int)ch[7], (int)ch[8]),
            new ChannelCounts((int)ch[1], (int)ch[2], (int)ch[3], (int)ch[4])), 0);
    }

    public int Set(string ifName, ChannelCounts counts) =>
        EthtoolIoctl.Call(ifName, new uint[] { ETHTOOL_SCHANNELS, 0, 0, 0, 0, (uint)counts.Rx, (uint)counts.Tx, (uint)counts.Other, (uint)counts.Combined });
}
