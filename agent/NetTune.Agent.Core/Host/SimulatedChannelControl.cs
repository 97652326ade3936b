namespace NetTune.Agent.Core.Host;

/// <summary>
/// Channels of the interfaces of a fixture host root, where no kernel answers ethtool. The state lives in
/// .fixture/ethtool/IFNAME ("rx=0,tx=0,other=1,combined=8 max rx=0,tx=0,other=1,combined=16"), and a change behaves
/// like the kernel's: counts above the maximum give EINVAL, and the queue folders follow the new counts, so
/// settings on removed queues are lost and new queues start at the kernel defaults.
/// </summary>
public sealed class SimulatedChannelControl(IHostFileSystem fs) : IChannelControl
{
    public static string StatePath(string ifName) => $".fixture/ethtool/{ifName}";

    public INicSettingsControl Settings { get; } = new SimulatedNicSettings(fs);

    public (ChannelInfo? Info, int Errno) Get(string ifName)
    {
        if (!fs.Exists($"sys/class/net/{ifName}")) return (null, Errnos.ENODEV);
        var read = fs.Read(StatePath(ifName));
        if (!read.Ok) return (null, Errnos.EOPNOTSUPP);
        return TryParseState(read.Text!, out var info) ? (info, 0) : (null, Errnos.EIO);
    }

    public int Set(string ifName, ChannelCounts counts)
    {
        var (info, err) = Get(ifName);
        if (info is not { } current) return err;
        var max = current.Max;
        if (counts.Rx > max.Rx || counts.Tx > max.Tx || counts.Other > max.Other || counts.Combined > max.Combined) return Errnos.EINVAL;
        if (counts.Combined + counts.Rx == 0 || counts.Combined + counts.Tx == 0) return Errnos.EINVAL;
        if (!SimulatedNicSettings.ChannelChangeAllowed(fs, ifName, counts.Combined + counts.Rx)) return Errnos.EINVAL;
        var write = fs.Write(StatePath(ifName), $"{counts} max {max}");
        if (!write.Ok) return write.Errno;
        ResizeQueues(fs, ifName, counts.Combined + counts.Rx, counts.Combined + counts.Tx);
        SimulatedDriver.OnChannelsChanged(fs, ifName, counts);
        return 0;
    }

    public static bool TryParseState(string text, out ChannelInfo info)
    {
        info = default;
        var parts = text.Trim().Split(" max ");
        if (parts.Length != 2 || !ChannelCounts.TryParse(parts[0], out var cur) || !ChannelCounts.TryParse(parts[1], out var max)) return false;
        info = new ChannelInfo(cur, max);
        return true;
    }

    private static void ResizeQueues(IHostFileSystem fs, string ifName, int rxCount, int txCount)
    {
        var queues = Path.Join(fs.Root, $"sys/class/net/{ifName}/queues");
        var possible = CpuMask.GroupWidthFromPossible(fs.Read("sys/devices/system/cpu/possible").Text);
        var empty = CpuMask.Format([], possible);
        Resize(queues, "rx-", rxCount, dir =>
        {
            File.WriteAllText(Path.Join(dir, "rps_cpus"), empty + "\n");
            File.WriteAllText(Path.Join(dir, "rps_flow_cnt"), "0\n");
        });
        Resize(queues, "tx-", txCount, dir =>
        {
            // The kernel hides xps_cpus when the device has a single tx queue.
            if (txCount > 1) File.WriteAllText(Path.Join(dir, "xps_cpus"), empty + "\n");
            File.WriteAllText(Path.Join(dir, "tx_maxrate"), "0\n");
        });
        if (txCount <= 1) File.Delete(Path.Join(queues, "tx-0", "xps_cpus"));
        else if (!File.Exists(Path.Join(queues, "tx-0", "xps_cpus"))) File.WriteAllText(Path.Join(queues, "tx-0", "xps_cpus"), empty + "\n");
    }

    private static void Resize(string queues, string prefix, int count, Action<string> create)
    {
        foreach (var dir in Directory.EnumerateDirectories(queues, prefix + "*"))
            if (int.TryParse(Path.GetFileName(dir)[prefix.Length..], out var i) && i >= count) Directory.Delete(dir, recursive: true);
        for (var i = 0; i < count; i++)
        {
            var dir = Path.Join(queues, prefix + i);
            if (Directory.Exists(dir)) continue;
            Directory.CreateDirectory(dir);
            create(dir);
        }
    }
}
