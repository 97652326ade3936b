namespace NetTune.Agent.Core.Host;

/// <summary>Channel counts as ethtool -l shows them.</summary>
public readonly record struct ChannelCounts(int Rx, int Tx, int Other, int Combined)
{
    public override string ToString() => $"rx={Rx},tx={Tx},other={Other},combined={Combined}";

    public static bool TryParse(string? text, out ChannelCounts counts)
    {
        counts = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        int rx = 0, tx = 0, other = 0, combined = 0;
        foreach (var part in text.Split([',', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0 || !int.TryParse(part[(eq + 1)..], out var v) || v < 0) return false;
            switch (part[..eq])
            {
                case "rx": rx = v; break;
                case "tx": tx = v; break;
                case "other": other = v; break;
                case "combined": combined = v; break;
                default: return false;
            }
        }
        counts = new(rx, tx, other, combined);
        return true;
    }

    public static ChannelCounts Parse(string text) =>
        TryParse(text, out var c) ? c : throw new FormatException($"'{text}' is not channel counts such as rx=1,tx=1,other=0,combined=0");
}

/// <summary>Current and maximum channels of one interface.</summary>
public readonly record struct ChannelInfo(ChannelCounts Current, ChannelCounts Max);

/// <summary>Reads and sets NIC channel counts (ethtool -l / -L).</summary>
public interface IChannelControl
{
    /// <summary>The channels, or the errno (EOPNOTSUPP when the driver has no channel support, ENODEV for no such device).</summary>
    (ChannelInfo? Info, int Errno) Get(string ifName);

    /// <summary>Sets all four counts; returns 0 or the errno.</summary>
    int Set(string ifName, ChannelCounts counts);

    /// <summary>The same backend's other ethtool settings (rings, coalescing, pause, features).</summary>
    INicSettingsControl Settings { get; }
}
