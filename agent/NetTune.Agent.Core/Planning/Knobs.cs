using System.Globalization;
using NetTune.Agent.Core.Host;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>Kinds of knob; the journal stores them by name, so new ones go at the end.</summary>
public enum KnobKind { Channels, RpsCpus, RpsFlowCount, XpsCpus, IrqAffinity, Hugepages, Sysctl, SeccompProfile, Rings, Coalesce, Pause, Feature, RssIndirection, RxFlowHash, TxQueueLength }

/// <summary>
/// One knob the spec wants at a value. <see cref="Path"/> is relative to the host root (ethtool:IFNAME for channels);
/// <see cref="Identity"/> names what the path must still belong to (an IRQ's action name), since IRQ numbers can
/// change across reboots.
/// </summary>
public sealed record DesiredKnob(string Knob, KnobKind Kind, string Path, string? Current, string Target, string? Identity = null)
{
    public bool NeedsChange => !KnobValues.Same(Kind, Current, Target);
    public int Phase => KnobValues.Phase(Kind);
}

/// <summary>
/// Something the planner could not plan, with the outcome it means for the knob. <see cref="Kind"/> and
/// <see cref="Identity"/> are set when the note stands for a knob the agent may have journaled (an IRQ left to irqbalance).
/// </summary>
public sealed record PlanNote(string Knob, KnobOutcome Outcome, string Message, KnobKind? Kind = null, string? Identity = null);

/// <summary>irqbalance runs and would move these IRQs back: the agent leaves their affinity alone.</summary>
public sealed record IrqBalanceConflict(int Pid, IReadOnlyList<int> UnbannedIrqs, string CommandLine);

/// <summary>The plan: every knob the spec wants (changed or already right), and what it could not plan.</summary>
public sealed record TuningPlan(IReadOnlyList<DesiredKnob> Desired, IReadOnlyList<PlanNote> Notes)
{
    /// <summary>Set when the spec asks for IRQ affinity and irqbalance would fight it.</summary>
    public IrqBalanceConflict? IrqBalance { get; init; }

    /// <summary>Whether the spec asks the agent to place IRQs at all.</summary>
    public bool ManagesIrqs { get; init; }

    /// <summary>The knobs to change, in apply order: channels, then the NIC's rings, features, coalescing, pause and RSS, then queue settings and the transmit queue length (lost when channels change), IRQs, hugepages, sysctls, the seccomp profile.</summary>
    public IReadOnlyList<DesiredKnob> Changes => Desired.Where(d => d.NeedsChange).OrderBy(d => d.Phase).ToArray();
}

/// <summary>How each kind of knob compares and orders.</summary>
public static class KnobValues
{
    public const int ChannelPhase = 0, NicSettingPhase = 1, QueuePhase = 2, IrqPhase = 3, HugepagesPhase = 4, SysctlPhase = 5, SeccompPhase = 6;

    /// <summary>
    /// The order knobs are applied in. NIC settings come right after channels and before the queue settings and IRQs:
    /// drivers rebuild their queues for a ring change (mlx5, ENA) or an LRO toggle (mlx5), and whatever they reset
    /// is set again by the phases after.
    /// </summary>
    public static int Phase(KnobKind kind) => kind switch
    {
        KnobKind.Channels => ChannelPhase,
        KnobKind.Rings or KnobKind.Coalesce or KnobKind.Pause or KnobKind.Feature or KnobKind.RssIndirection or KnobKind.RxFlowHash => NicSettingPhase,
        KnobKind.RpsCpus or KnobKind.RpsFlowCount or KnobKind.XpsCpus or KnobKind.TxQueueLength => QueuePhase,
        KnobKind.IrqAffinity => IrqPhase,
        KnobKind.Hugepages => HugepagesPhase,
        // Last: the data-plane pods that name the profile are made once the node reports Applied.
        KnobKind.SeccompProfile => SeccompPhase,
        _ => SysctlPhase,
    };

    public const int LastPhase = SeccompPhase;

    /// <summary>
    /// The order originals are restored in: by phase, except the RSS indirection table before everything. The kernel
    /// refuses a channel change that leaves fewer receive queues than a table set by hand uses (ethtool_check_max_channel),
    /// so a table over added channels must go back before the channels can.
    /// </summary>
    public static int RestorePhase(KnobKind kind) => kind == KnobKind.RssIndirection ? ChannelPhase - 1 : Phase(kind);

    /// <summary>The ethtool group of a rings, coalescing or pause knob.</summary>
    public static NicSettingGroup Group(KnobKind kind) => kind switch
    {
        KnobKind.Rings => NicSettingGroup.Rings,
        KnobKind.Coalesce => NicSettingGroup.Coalesce,
        KnobKind.Pause => NicSettingGroup.Pause,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an ethtool settings group"),
    };

    /// <summary>Whether the kernel's value means the same as the target: masks and cpulists as CPU sets, numbers as numbers.</summary>
    public static bool Same(KnobKind kind, string? current, string target)
    {
        if (current is null) return false;
        switch (kind)
        {
            case KnobKind.Channels:
                return ChannelCounts.TryParse(current, out var a) && ChannelCounts.TryParse(target, out var b) && a == b;
            case KnobKind.RpsCpus or KnobKind.XpsCpus:
                return CpuMask.TryParse(current, out var ma) && CpuMask.TryParse(target, out var mb) && ma.SequenceEqual(mb);
            case KnobKind.IrqAffinity:
                return CpuList.TryParse(current, out var la) && CpuList.TryParse(target, out var lb) && la.SequenceEqual(lb);
            case KnobKind.SeccompProfile or KnobKind.Feature:
                return current == target;
            case KnobKind.Rings or KnobKind.Coalesce or KnobKind.Pause:
                return NicSettingValues.TryParse(Group(kind), current, out var sa) && NicSettingValues.TryParse(Group(kind), target, out var sb) && sa.Equals(sb);
            case KnobKind.RssIndirection:
                return RssIndirection.TryParse(current, out var ta, out _) && RssIndirection.TryParse(target, out var tb, out _) && ta.SequenceEqual(tb);
            case KnobKind.RxFlowHash:
                return RxFlowHashFields.TryParse(current, out var ha) && RxFlowHashFields.TryParse(target, out var hb) && ha == hb;
            case KnobKind.RpsFlowCount or KnobKind.Hugepages or KnobKind.TxQueueLength:
                return long.TryParse(current.Trim(), CultureInfo.InvariantCulture, out var na) && long.TryParse(target.Trim(), CultureInfo.InvariantCulture, out var nb) && na == nb;
            default:
                return NormalizeSysctl(current) == NormalizeSysctl(target);
        }
    }

    /// <summary>procfs prints vectors such as tcp_rmem with tabs; users write spaces.</summary>
    public static string NormalizeSysctl(string value) => string.Join(' ', value.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The kernel rounds rps_flow_cnt and rps_sock_flow_entries up to a power of two; targets do the same so the read-back matches.</summary>
    public static long RoundUpPowerOfTwo(long n)
    {
        if (n <= 1) return n;
        long p = 1;
        while (p < n) p <<= 1;
        return p;
    }
}
