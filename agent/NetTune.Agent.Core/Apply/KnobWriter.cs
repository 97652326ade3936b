using System.Globalization;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Apply;

/// <summary>Writes one knob, reads it back and says what the kernel made of it.</summary>
public sealed class KnobWriter(IHostFileSystem fs, IChannelControl channels, HugepagesRaiseOptions? hugepages = null)
{
    private readonly HugepagesWriter _hugepages = new(fs, hugepages ?? new HugepagesRaiseOptions());
    private readonly HashSet<string> _written = new(StringComparer.Ordinal);

    /// <summary>The paths (ethtool:IFNAME for channels, ethtool-rings:IFNAME and so on for the other ethtool settings) this writer changed since <see cref="ForgetWrites"/>: what one run did.</summary>
    public IReadOnlyCollection<string> Written => _written;

    public void ForgetWrites() => _written.Clear();

    /// <summary>The kind of knob a written path belongs to.</summary>
    public static KnobKind KindOfPath(string path) => path switch
    {
        _ when path.StartsWith("ethtool:", StringComparison.Ordinal) => KnobKind.Channels,
        _ when path.StartsWith("ethtool-rings:", StringComparison.Ordinal) => KnobKind.Rings,
        _ when path.StartsWith("ethtool-coalesce:", StringComparison.Ordinal) => KnobKind.Coalesce,
        _ when path.StartsWith("ethtool-pause:", StringComparison.Ordinal) => KnobKind.Pause,
        _ when path.StartsWith("ethtool-feature:", StringComparison.Ordinal) => KnobKind.Feature,
        _ when path.StartsWith("ethtool-rss:", StringComparison.Ordinal) => KnobKind.RssIndirection,
        _ when path.StartsWith("ethtool-rxfh:", StringComparison.Ordinal) => KnobKind.RxFlowHash,
        _ when path.EndsWith("/tx_queue_len", StringComparison.Ordinal) => KnobKind.TxQueueLength,
        _ when path.EndsWith("/rps_cpus", StringComparison.Ordinal) => KnobKind.RpsCpus,
        _ when path.EndsWith("/rps_flow_cnt", StringComparison.Ordinal) => KnobKind.RpsFlowCount,
        _ when path.EndsWith("/xps_cpus", StringComparison.Ordinal) => KnobKind.XpsCpus,
        _ when path.EndsWith("/smp_affinity_list", StringComparison.Ordinal) => KnobKind.IrqAffinity,
        _ when path.EndsWith("/nr_hugepages", StringComparison.Ordinal) => KnobKind.Hugepages,
        _ => KnobKind.Sysctl,
    };

    public KnobResult Write(string knob, KnobKind kind, string path, string target, string? identity)
    {
        if (kind == KnobKind.Hugepages) return _hugepages.Write(knob, path, target);
        if (kind == KnobKind.IrqAffinity && !fs.Exists(Path.GetDirectoryName(path)!))
            return Result(knob, KnobOutcome.Skipped, null, $"the IRQ no longer exists ({Path.GetDirectoryName(path)} is gone)");
        if (kind == KnobKind.IrqAffinity && identity is not null && !IrqStillBelongsTo(path, identity))
            return Result(knob, KnobOutcome.Skipped, null, $"the IRQ no longer serves {identity} (renumbered after a reboot or driver reload)");

        if (kind == KnobKind.Channels) return WriteChannels(knob, path, target);
        if (kind is KnobKind.Rings or KnobKind.Coalesce or KnobKind.Pause) return WriteSetting(knob, kind, path, target);
        if (kind == KnobKind.Feature) return WriteFeature(knob, path, target);
        if (kind == KnobKind.RssIndirection) return WriteRss(knob, path, target);
        if (kind == KnobKind.RxFlowHash) return WriteFlowHash(knob, path, target);

        var write = fs.Write(path, target);
        if (write.Ok) _written.Add(path);
        if (!write.Ok)
        {
            if (kind == KnobKind.IrqAffinity && write.Errno == Errnos.EPERM)
                return Result(knob, KnobOutcome.Managed, null, "the kernel manages this interrupt's affinity (EPERM)");
            return Result(knob, KnobOutcome.Failed, ReadBack(path), $"write {target} to {path}: {Errnos.Describe(write.Errno)}");
        }
        var value = ReadBack(path);
        if (KnobValues.Same(kind, value, target)) return Result(knob, KnobOutcome.Applied, value, null);
        return Result(knob, KnobOutcome.Failed, value, $"wrote {target} to {path} but read back {value ?? "nothing"}");
    }

    private KnobResult WriteChannels(string knob, string path, string target)
    {
        var ifName = path["ethtool:".Length..];
        var counts = ChannelCounts.Parse(target);
        var err = channels.Set(ifName, counts);
        if (err == 0) _written.Add(path);
        var (info, _) = channels.Get(ifName);
        var value = info?.Current.ToString();
        if (err != 0) return Result(knob, KnobOutcome.Failed, value, $"ethtool -L {ifName} {target}: {Errnos.Describe(err)}");
        return value == counts.ToString()
            ? Result(knob, KnobOutcome.Applied, value, null)
            : Result(knob, KnobOutcome.Failed, value, $"set {target} on {ifName} but read back {value ?? "nothing"}");
    }

    /// <summary>
    /// Sets only the fields that differ from what the driver reports now, and reads the group back: drivers round
    /// (mlx5 rings to a power of two, ice to a multiple of 32) or hide values (ENA's rx-usecs under adaptive-rx), and
    /// the read-back says so. EOPNOTSUPP means the driver does not support a field: Skipped, with the fields named.
    /// </summary>
    private KnobResult WriteSetting(string knob, KnobKind kind, string path, string targetText)
    {
        var ifName = path[(path.IndexOf(':') + 1)..];
        var group = KnobValues.Group(kind);
        var option = NicSettingsPlanner.Option(kind);
        var target = NicSettingValues.Parse(group, targetText);
        var (now, readErr) = channels.Settings.Get(ifName, group);
        if (now is null)
            return Result(knob, readErr == Errnos.EOPNOTSUPP ? KnobOutcome.Skipped : KnobOutcome.Failed, null,
                $"ethtool {option.ToLowerInvariant()} {ifName}: {Errnos.Describe(readErr)}");
        var change = NicSettingValues.Empty(group);
        foreach (var f in target.Names)
            if (now.Current[f] != target[f]) change = change.With(f, target[f]!.Value);
        var err = 0;
        foreach (var step in Steps(change, now.Current))
        {
            err = channels.Settings.Set(ifName, step);
            if (err != 0) break;
            _written.Add(path);
        }
        var (after, _) = channels.Settings.Get(ifName, group);
        var value = after?.Current.Only(target.Names).ToString();
        if (err == Errnos.EOPNOTSUPP)
            return Result(knob, KnobOutcome.Skipped, value, $"the driver of {ifName} does not support setting {string.Join(", ", change.Names)} (ethtool {option} {ifName} {Spaced(change)}: {Errnos.Describe(err)})");
        if (err != 0) return Result(knob, KnobOutcome.Failed, value, $"ethtool {option} {ifName} {Spaced(change)}: {Errnos.Describe(err)}");
        return value == target.ToString()
            ? Result(knob, KnobOutcome.Applied, value, null)
            : Result(knob, KnobOutcome.Failed, value, $"set {change} on {ifName} but read back {value ?? "nothing"}");
    }

    /// <summary>
    /// One request, except when adaptive coalescing goes on along with other changes: the others first, then adaptive
    /// (ice refuses a usecs change in a request that has adaptive on, which is exactly what restoring an original does).
    /// </summary>
    private static IEnumerable<NicSettingValues> Steps(NicSettingValues change, NicSettingValues current)
    {
        if (!change.Names.Any()) yield break;
        var turningOn = change.Names.Where(f => f.StartsWith("adaptive-", StringComparison.Ordinal) && change[f] == 1 && current[f] != 1).ToArray();
        var rest = change.Names.Except(turningOn).ToArray();
        if (change.Group != NicSettingGroup.Coalesce || turningOn.Length == 0 || rest.Length == 0)
        {
            yield return change;
            yield break;
        }
        yield return change.Only(rest);
        yield return change.Only(turningOn);
    }

    private static string Spaced(NicSettingValues values) => values.ToString().Replace(',', ' ').Replace('=', ' ');

    private KnobResult WriteFeature(string knob, string path, string target)
    {
        var rest = path["ethtool-feature:".Length..];
        var slash = rest.IndexOf('/');
        var (ifName, feature) = (rest[..slash], rest[(slash + 1)..]);
        var on = target == "on";
        var err = channels.Settings.SetFeature(ifName, feature, on);
        if (err == 0) _written.Add(path);
        var (features, _) = channels.Settings.GetFeatures(ifName);
        var f = features?.FirstOrDefault(x => x.Name == feature);
        var value = f is null ? null : f.Requested ? "on" : "off";
        if (err == Errnos.EOPNOTSUPP) return Result(knob, KnobOutcome.Skipped, value, $"{ifName} cannot change {feature} (ethtool -K {ifName} {feature} {target}: it is not among the device's changeable features)");
        if (err != 0) return Result(knob, KnobOutcome.Failed, value, $"ethtool -K {ifName} {feature} {target}: {Errnos.Describe(err)}");
        if (f is null || value != target) return Result(knob, KnobOutcome.Failed, value, $"asked for {feature} {target} on {ifName} but read back {value ?? "nothing"}");
        // The kernel keeps a requested feature off while one it needs is off (TSO without tx checksumming, hardware GRO
        // without rx checksumming). The request is what the agent sets and restores, so it counts as applied: a revert
        // restores the requests one by one, and the dependency holds again once all are back.
        return Result(knob, KnobOutcome.Applied, value, f.Active == on ? null
            : $"requested {target}, but the kernel keeps {feature} {(f.Active ? "on" : "off")} while a feature it depends on is off (tx checksumming for TSO, rx checksumming for hardware GRO)");
    }

    /// <summary>
    /// Writes the whole indirection table, or resets it when the target is the driver's default (a revert to a table
    /// nobody had set: the reset also lets later channel changes spread it again), and reads it back.
    /// </summary>
    private KnobResult WriteRss(string knob, string path, string target)
    {
        var ifName = path["ethtool-rss:".Length..];
        if (!RssIndirection.TryParse(target, out var table, out var isDefault))
            return Result(knob, KnobOutcome.Failed, null, $"'{target}' is not an indirection table");
        var err = channels.Settings.SetRss(ifName, isDefault ? null : table);
        if (err == 0) _written.Add(path);
        var (after, _) = channels.Settings.GetRss(ifName);
        var value = after?.ToString();
        var asked = isDefault ? "default" : $"{table.Length} entries over queues {string.Join(",", table.Distinct().Order())}";
        if (err == Errnos.EOPNOTSUPP) return Result(knob, KnobOutcome.Skipped, value, $"the driver of {ifName} cannot set its indirection table (ethtool -X {ifName} {asked}: {Errnos.Describe(err)})");
        if (err != 0) return Result(knob, KnobOutcome.Failed, value, $"ethtool -X {ifName} {asked}: {Errnos.Describe(err)}");
        // The default spread is over the rings there are now: restored before the channels, it follows them when they go back.
        var done = after is not null && (isDefault ? RssIndirection.IsDefault(after.Indirection, after.RxRings) : after.Indirection.SequenceEqual(table));
        return done
            ? Result(knob, KnobOutcome.Applied, value, null)
            : Result(knob, KnobOutcome.Failed, value, $"set the indirection table of {ifName} to {target} but read back {value ?? "nothing"}");
    }

    private KnobResult WriteFlowHash(string knob, string path, string target)
    {
        var rest = path["ethtool-rxfh:".Length..];
        var slash = rest.IndexOf('/');
        var (ifName, flowType) = (rest[..slash], rest[(slash + 1)..]);
        if (!RxFlowHashFields.TryParse(target, out var bits)) return Result(knob, KnobOutcome.Failed, null, $"'{target}' is not hash fields");
        var err = channels.Settings.SetFlowHash(ifName, flowType, bits);
        if (err == 0) _written.Add(path);
        var (now, _) = channels.Settings.GetFlowHash(ifName, flowType);
        var value = now is { } v ? RxFlowHashFields.Format(v) : null;
        var command = $"ethtool -N {ifName} rx-flow-hash {flowType} {target}";
        if (err == Errnos.EOPNOTSUPP) return Result(knob, KnobOutcome.Skipped, value, $"the driver of {ifName} cannot hash {flowType} on {target} ({command}: {Errnos.Describe(err)})");
        if (err != 0) return Result(knob, KnobOutcome.Failed, value, $"{command}: {Errnos.Describe(err)}");
        return now == bits
            ? Result(knob, KnobOutcome.Applied, value, null)
            : Result(knob, KnobOutcome.Failed, value, $"set {flowType} hashing on {target} on {ifName} but read back {value ?? "nothing"}");
    }

    private bool IrqStillBelongsTo(string path, string identity)
    {
        // proc/irq/N/ holds a folder named after each action of the interrupt.
        var dir = Path.GetDirectoryName(path)!;
        return fs.Exists($"{dir}/{identity}") || identity.Contains('/');
    }

    private string? ReadBack(string path)
    {
        var r = fs.Read(path);
        return r.Ok ? TopologyDiscovery.StripNewline(r.Text!) : null;
    }

    private static KnobResult Result(string knob, KnobOutcome outcome, string? value, string? message) =>
        new() { Knob = knob, Result = outcome, Value = value, Message = message };
}
