namespace NetTune.Agent.Core.Host;

/// <summary>
/// Rings, coalescing, pause and features of a fixture NIC, where no kernel answers ethtool. The state lives in
/// .fixture/nic/IFNAME as key=value lines (<c>rings=rx=1024,...</c>, <c>rings-max=...</c>, <c>coalesce=...</c>,
/// <c>pause=...</c>, <c>feature.rx-gro=on</c> or <c>=off fixed</c>); a group without a line is one the driver does not
/// implement (EOPNOTSUPP), as the kernel answers when the driver has no such ethtool op. A change is checked the way
/// the kernel's ethtool core and the NIC's driver (by its sysfs driver link) check it:
/// <list type="bullet">
/// <item>core: a ring above its maximum is EINVAL; a non-zero coalescing field the driver does not support is EOPNOTSUPP
/// (ethtool_set_coalesce_supported); a feature outside hw_features is dropped (ETHTOOL_F_UNSUPPORTED); TSO stays off
/// while tx checksumming or scatter-gather is off, hardware GRO while rx checksumming is off (netdev_fix_features).</item>
/// <item>mlx5_core: rings between 64 and the maximum, rounded up to a power of two; no rx-mini/rx-jumbo (EINVAL);
/// coalescing usecs up to 4095, frames up to 65535 (EINVAL); pause autoneg refused (EINVAL).</item>
/// <item>ice: rings from 64, rounded up to a multiple of 32; coalescing without frames (EOPNOTSUPP), usecs up to
/// 8160, and usecs cannot change in a request that leaves adaptive on (EINVAL); pause autoneg only as the link's
/// autoneg is (EOPNOTSUPP: "To change autoneg please use: ethtool -s").</item>
/// <item>ena: rings below 256 become 256, then round down to a power of two; coalescing only usecs and adaptive-rx,
/// and rx-usecs reads 0 while adaptive-rx is on; no pause.</item>
/// <item>RSS (<c>rss-size=N</c> for a device with an N-entry indirection table, <c>rss-indir=</c> once one was set,
/// <c>rxfh.tcp4=sdfn</c> per flow type): core: a table entry at or above the receive ring count is EINVAL
/// (ethtool_copy_validate_indir), and a channel change that leaves fewer rings than a table set by hand uses is EINVAL
/// (ethtool_check_max_channel); a table never set by hand follows the ring count (mlx5e_num_channels_changed spreads
/// it uniformly again, as the drivers here do). mlx5 and ice hash only on s, d, f and n (EOPNOTSUPP otherwise) and
/// mlx5 not sctp flows (EINVAL); ENA's device refuses hash field changes (EOPNOTSUPP).</item>
/// </list>
/// </summary>
public sealed class SimulatedNicSettings(IHostFileSystem fs) : INicSettingsControl
{
    public static string StatePath(string ifName) => $".fixture/nic/{ifName}";

    public (NicSetting? Setting, int Errno) Get(string ifName, NicSettingGroup group)
    {
        if (Load(ifName) is not { } state) return (null, fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV);
        var key = Key(group);
        if (!state.TryGetValue(key, out var text) || !NicSettingValues.TryParse(group, text, out var current)) return (null, Errnos.EOPNOTSUPP);
        if (group == NicSettingGroup.Coalesce && Driver(ifName) == "ena" && current["adaptive-rx"] == 1) current = current.With("rx-usecs", 0);
        NicSettingValues? max = null;
        if (group == NicSettingGroup.Rings)
            max = state.TryGetValue("rings-max", out var m) && NicSettingValues.TryParse(group, m, out var mv) ? mv : current;
        return (new NicSetting(current, max), 0);
    }

    public int Set(string ifName, NicSettingValues values)
    {
        if (Load(ifName) is not { } state) return fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV;
        var key = Key(values.Group);
        if (!state.TryGetValue(key, out var text) || !NicSettingValues.TryParse(values.Group, text, out var stored)) return Errnos.EOPNOTSUPP;
        var request = values.Over(stored);
        var driver = Driver(ifName);
        var (err, result) = values.Group switch
        {
            NicSettingGroup.Rings => Rings(driver, request, state.TryGetValue("rings-max", out var m) ? NicSettingValues.Parse(NicSettingGroup.Rings, m) : stored),
            NicSettingGroup.Coalesce => Coalesce(driver, request, stored),
            _ => Pause(driver, request, state.GetValueOrDefault("link-autoneg")),
        };
        if (err != 0) return err;
        var ringsChanged = values.Group == NicSettingGroup.Rings && !result.Equals(stored);
        state[key] = result.ToString();
        var saved = Save(ifName, state);
        if (saved == 0 && ringsChanged) SimulatedDriver.OnRingsChanged(fs, ifName);
        return saved;
    }

    public (IReadOnlyList<NicFeature>? Features, int Errno) GetFeatures(string ifName)
    {
        if (Load(ifName) is not { } state) return (null, fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV);
        var requested = state.Where(kv => kv.Key.StartsWith("feature.", StringComparison.Ordinal))
            .Select(kv => (Name: kv.Key["feature.".Length..], On: kv.Value.StartsWith("on", StringComparison.Ordinal), Fixed: kv.Value.EndsWith(" fixed", StringComparison.Ordinal)))
            .ToArray();
        if (requested.Length == 0) return (null, Errnos.EOPNOTSUPP);
        var wanted = requested.ToDictionary(f => f.Name, f => f.On, StringComparer.Ordinal);
        return (requested.Select(f => new NicFeature(f.Name, f.On, f.On && Allowed(f.Name, wanted), !f.Fixed)).ToArray(), 0);
    }

    public int SetFeature(string ifName, string feature, bool on)
    {
        if (Load(ifName) is not { } state) return fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV;
        if (!state.TryGetValue($"feature.{feature}", out var now) || now.EndsWith(" fixed", StringComparison.Ordinal)) return Errnos.EOPNOTSUPP;
        state[$"feature.{feature}"] = on ? "on" : "off";
        return Save(ifName, state);
    }

    public (RssTable? Table, int Errno) GetRss(string ifName)
    {
        if (Load(ifName) is not { } state) return (null, fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV);
        if (!state.TryGetValue("rss-size", out var sizeText) || !int.TryParse(sizeText, out var size) || size <= 0) return (null, Errnos.EOPNOTSUPP);
        var rings = RxRings(fs, ifName);
        var table = state.TryGetValue("rss-indir", out var set) && RssIndirection.TryParse(set, out var t, out _) && t.Length == size
            ? t : RssIndirection.Equal(size, Math.Max(rings, 1));
        return (new RssTable(rings, table), 0);
    }

    public int SetRss(string ifName, uint[]? indirection)
    {
        if (Load(ifName) is not { } state) return fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV;
        if (!state.TryGetValue("rss-size", out var sizeText) || !int.TryParse(sizeText, out var size)) return Errnos.EOPNOTSUPP;
        if (indirection is null)
        {
            state.Remove("rss-indir");
            return Save(ifName, state);
        }
        var rings = RxRings(fs, ifName);
        if (indirection.Length != size || indirection.Any(q => q >= rings)) return Errnos.EINVAL;
        state["rss-indir"] = RssIndirection.Format(indirection, 0);
        return Save(ifName, state);
    }

    public (uint? Fields, int Errno) GetFlowHash(string ifName, string flowType)
    {
        if (Load(ifName) is not { } state) return (null, fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV);
        if (!state.ContainsKey("rss-size")) return (null, Errnos.EOPNOTSUPP);
        return state.TryGetValue($"rxfh.{flowType}", out var text) && RxFlowHashFields.TryParse(text, out var bits) ? (bits, 0) : (null, Errnos.EINVAL);
    }

    public int SetFlowHash(string ifName, string flowType, uint fields)
    {
        if (Load(ifName) is not { } state) return fs.Exists($"sys/class/net/{ifName}") ? Errnos.EOPNOTSUPP : Errnos.ENODEV;
        if (!state.ContainsKey("rss-size") || !state.ContainsKey($"rxfh.{flowType}")) return Errnos.EOPNOTSUPP;
        RxFlowHashFields.TryParse("sdfn", out var fourTuple);
        switch (Driver(ifName))
        {
            case "ena":
                return Errnos.EOPNOTSUPP;
            case "mlx5_core" when flowType.StartsWith("sctp", StringComparison.Ordinal):
                return Errnos.EINVAL;
            case "mlx5_core" or "ice" when (fields & ~fourTuple) != 0:
                return Errnos.EOPNOTSUPP;
        }
        state[$"rxfh.{flowType}"] = RxFlowHashFields.Format(fields);
        return Save(ifName, state);
    }

    /// <summary>
    /// Whether the kernel lets <paramref name="ifName"/> go to <paramref name="rxRings"/> receive rings: not below a
    /// queue that an indirection table set by hand uses (ethtool_check_max_channel gives EINVAL).
    /// </summary>
    public static bool ChannelChangeAllowed(IHostFileSystem fs, string ifName, int rxRings)
    {
        var read = fs.Read(StatePath(ifName));
        if (!read.Ok) return true;
        var line = read.Text!.Split('\n').FirstOrDefault(l => l.StartsWith("rss-indir=", StringComparison.Ordinal));
        return line is null || !RssIndirection.TryParse(line["rss-indir=".Length..], out var table, out _) || table.Max() < rxRings;
    }

    private static int RxRings(IHostFileSystem fs, string ifName)
    {
        var read = fs.Read(SimulatedChannelControl.StatePath(ifName));
        return read.Ok && SimulatedChannelControl.TryParseState(read.Text!, out var info) ? info.Current.Combined + info.Current.Rx : 1;
    }

    /// <summary>netdev_fix_features: TSO needs tx checksumming and scatter-gather; hardware GRO needs rx checksumming.</summary>
    private static bool Allowed(string feature, IReadOnlyDictionary<string, bool> wanted)
    {
        bool On(string f) => wanted.GetValueOrDefault(f);
        if (feature.StartsWith("tx-tcp", StringComparison.Ordinal) && feature.EndsWith("-segmentation", StringComparison.Ordinal))
            return (On("tx-checksum-ipv4") || On("tx-checksum-ip-generic") || On("tx-checksum-ipv6")) && (!wanted.ContainsKey("tx-scatter-gather") || On("tx-scatter-gather"));
        if (feature == "rx-gro-hw") return On("rx-checksum");
        return true;
    }

    private static (int Errno, NicSettingValues Result) Rings(string? driver, NicSettingValues request, NicSettingValues max)
    {
        foreach (var f in NicSettingValues.Fields(NicSettingGroup.Rings))
            if (request[f] > (max[f] ?? 0)) return (Errnos.EINVAL, request);
        uint rx = request["rx"] ?? 0, tx = request["tx"] ?? 0;
        switch (driver)
        {
            case "mlx5_core":
                if (request["rx-mini"] > 0 || request["rx-jumbo"] > 0 || rx < 64 || tx < 64) return (Errnos.EINVAL, request);
                return (0, request.With("rx", RoundUpPowerOfTwo(rx)).With("tx", RoundUpPowerOfTwo(tx)));
            case "ice":
                if (request["rx-mini"] > 0 || request["rx-jumbo"] > 0 || rx < 64 || tx < 64) return (Errnos.EINVAL, request);
                return (0, request.With("rx", (rx + 31) / 32 * 32).With("tx", (tx + 31) / 32 * 32));
            case "ena":
                return (0, request.With("rx", RoundDownPowerOfTwo(Math.Max(rx, 256u))).With("tx", RoundDownPowerOfTwo(Math.Max(tx, 256u))));
            default:
                return (0, request);
        }
    }

    private static (int Errno, NicSettingValues Result) Coalesce(string? driver, NicSettingValues request, NicSettingValues stored)
    {
        string[] supported = driver switch
        {
            "ice" => ["adaptive-rx", "adaptive-tx", "rx-usecs", "tx-usecs"],
            "ena" => ["adaptive-rx", "rx-usecs", "tx-usecs"],
            _ => [.. NicSettingValues.Fields(NicSettingGroup.Coalesce)],
        };
        if (request.Names.Any(f => !supported.Contains(f) && request[f] != 0)) return (Errnos.EOPNOTSUPP, request);
        switch (driver)
        {
            case "mlx5_core":
                if (request["rx-usecs"] > 4095 || request["tx-usecs"] > 4095 || request["rx-frames"] > 65535 || request["tx-frames"] > 65535) return (Errnos.EINVAL, request);
                break;
            case "ice":
                foreach (var dir in new[] { "rx", "tx" })
                {
                    if (request[$"{dir}-usecs"] > 8160) return (Errnos.EINVAL, request);
                    if (request[$"adaptive-{dir}"] == 1 && request[$"{dir}-usecs"] != stored[$"{dir}-usecs"]) return (Errnos.EINVAL, request);
                }
                break;
        }
        return (0, request);
    }

    private static (int Errno, NicSettingValues Result) Pause(string? driver, NicSettingValues request, string? linkAutoneg)
    {
        if (driver == "mlx5_core" && request["autoneg"] == 1) return (Errnos.EINVAL, request);
        if (driver == "ice" && linkAutoneg is not null && request["autoneg"] != (linkAutoneg == "on" ? 1u : 0u)) return (Errnos.EOPNOTSUPP, request);
        return (0, request);
    }

    private static uint RoundUpPowerOfTwo(uint n)
    {
        uint p = 1;
        while (p < n) p <<= 1;
        return p;
    }

    private static uint RoundDownPowerOfTwo(uint n)
    {
        uint p = 1;
        while (p <= n / 2) p <<= 1;
        return p;
    }

    private static string Key(NicSettingGroup group) => group switch
    {
        NicSettingGroup.Rings => "rings",
        NicSettingGroup.Coalesce => "coalesce",
        _ => "pause",
    };

    private string? Driver(string ifName) =>
        fs.ResolveLink($"sys/class/net/{ifName}/device") is { } device && fs.ResolveLink($"{device}/driver") is { } driver ? Path.GetFileName(driver) : null;

    private Dictionary<string, string>? Load(string ifName)
    {
        var read = fs.Read(StatePath(ifName));
        if (!read.Ok) return null;
        return read.Text!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
    }

    private int Save(string ifName, Dictionary<string, string> state)
    {
        // The fixture file is a regular file: one write replaces it, as a driver applies one request at a time.
        var write = fs.Write(StatePath(ifName), string.Join('\n', state.Select(kv => $"{kv.Key}={kv.Value}")));
        return write.Ok ? 0 : write.Errno;
    }
}
