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

    public KnobResult Write(string knob, KnobKind kind, string path, string target, string? identity)
    {
        if (kind == KnobKind.Hugepages) return _hugepages.Write(knob, path, target);
        if (kind == KnobKind.IrqAffinity && !fs.Exists(Path.GetDirectoryName(path)!))
            return Result(knob, KnobOutcome.Skipped, null, $"the IRQ no longer exists ({Path.GetDirectoryName(path)} is gone)");
        if (kind == KnobKind.IrqAffinity && identity is not null && !IrqStillBelongsTo(path, identity))
            return Result(knob, KnobOutcome.Skipped, null, $"the IRQ no longer serves {identity} (renumbered after a reboot or driver reload)");

        if (kind == KnobKind.Channels) return WriteChannels(knob, path, target);

        var write = fs.Write(path, target);
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
