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

    /// <summary>The paths (ethtool:IFNAME for channels) this writer changed since <see cref="ForgetWrites"/>: what one run did.</summary>
    public IReadOnlyCollection<string> Written => _written;

    public void ForgetWrites() => _written.Clear();

    /// <summary>The kind of knob a written path belongs to.</summary>
    public static KnobKind KindOfPath(string path) => path switch
    {
        _ when path.StartsWith("ethtool:", StringComparison.Ordinal) => KnobKind.Channels,
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
