using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// Rings, offloads, coalescing, pause and RSS of one NIC, in that order (the order they are applied in: a ring change
/// rebuilds the queues on most drivers, a pause change restarts the link on ice), and its transmit queue length. Each group is one knob holding every
/// field the driver reports, the spec's fields put over them, so the journal keeps the whole original; each offload
/// is one knob per kernel feature. What the NIC cannot do is a note with the reason, never a knob.
/// </summary>
public static class NicSettingsPlanner
{
    /// <summary>
    /// The API's offloads, the kernel features each one switches (as ethtool -K's short names do), and how the spec
    /// says it; checksumming first, since TSO and hardware GRO are only active while it is on.
    /// </summary>
    public static readonly IReadOnlyList<(string Offload, string[] Features, Func<OffloadsSpec, bool?> Asked)> Offloads =
    [
        ("rxChecksum", ["rx-checksum"], o => o.RxChecksum),
        ("txChecksum", ["tx-checksum-ipv4", "tx-checksum-ip-generic", "tx-checksum-ipv6", "tx-checksum-sctp", "tx-checksum-fcoe-crc"], o => o.TxChecksum),
        ("gro", ["rx-gro"], o => o.Gro),
        ("groHw", ["rx-gro-hw"], o => o.GroHw),
        ("lro", ["rx-lro"], o => o.Lro),
        ("tso", ["tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation"], o => o.Tso),
        ("gso", ["tx-generic-segmentation"], o => o.Gso),
        ("ntuple", ["rx-ntuple-filter"], o => o.Ntuple),
    ];

    /// <param name="rxRingsAfterChannels">The receive queues the NIC will have once its planned channel change is made
    /// (null: no change planned), which the RSS table must fit.</param>
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Plan(Nic nic, NicSpec spec, int? rxRingsAfterChannels = null)
    {
        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        if (spec.Rings is { } rings)
        {
            var wanted = NicSettingValues.Empty(NicSettingGroup.Rings);
            if (rings.Rx is { } rx) wanted = wanted.With("rx", (uint)rx);
            if (rings.Tx is { } tx) wanted = wanted.With("tx", (uint)tx);
            Group(nic, KnobKind.Rings, wanted, knobs, notes, RingLimits);
        }
        if (spec.Offloads is { } offloads) PlanOffloads(nic, offloads, knobs, notes);
        if (spec.Coalesce is { } c)
        {
            var wanted = NicSettingValues.Empty(NicSettingGroup.Coalesce);
            if (c.AdaptiveRx is { } ar) wanted = wanted.With("adaptive-rx", ar ? 1u : 0u);
            if (c.AdaptiveTx is { } at) wanted = wanted.With("adaptive-tx", at ? 1u : 0u);
            if (c.RxUsecs is { } ru) wanted = wanted.With("rx-usecs", (uint)ru);
            if (c.RxFrames is { } rf) wanted = wanted.With("rx-frames", (uint)rf);
            if (c.TxUsecs is { } tu) wanted = wanted.With("tx-usecs", (uint)tu);
            if (c.TxFrames is { } tf) wanted = wanted.With("tx-frames", (uint)tf);
            Group(nic, KnobKind.Coalesce, wanted, knobs, notes, null);
        }
        if (spec.Pause is { } p)
        {
            var wanted = NicSettingValues.Empty(NicSettingGroup.Pause);
            if (p.Autoneg is { } an) wanted = wanted.With("autoneg", an ? 1u : 0u);
            if (p.Rx is { } prx) wanted = wanted.With("rx", prx ? 1u : 0u);
            if (p.Tx is { } ptx) wanted = wanted.With("tx", ptx ? 1u : 0u);
            Group(nic, KnobKind.Pause, wanted, knobs, notes, null);
        }
        // Last: drivers re-spread the indirection table when channels change (mlx5), and a ring change may rebuild it.
        if (spec.Rss is { } rss) PlanRss(nic, rss, rxRingsAfterChannels, knobs, notes);
        if (spec.TxQueueLength is { } qlen) PlanTxQueueLength(nic, qlen, knobs, notes);
        return (knobs, notes);
    }

    /// <summary>Where the RSS indirection table is applied, and one flow type's hash fields.</summary>
    public static string RssPath(string ifName) => $"ethtool-rss:{ifName}";

    public static string FlowHashPath(string ifName, string flowType) => $"ethtool-rxfh:{ifName}/{flowType}";

    public static string TxQueueLengthPath(string ifName) => $"sys/class/net/{ifName}/tx_queue_len";

    private static void PlanRss(Nic nic, RssSpec spec, int? rxRingsAfterChannels, List<DesiredKnob> knobs, List<PlanNote> notes)
    {
        var knob = $"nic/{nic.Name}/rss/indirection";
        var asksTable = spec.Equal is not null || spec.Weights is { Count: > 0 };
        if (nic.Rss is not { } read)
        {
            notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"the RSS table of {nic.Name} was not read"));
            return;
        }
        if (read.Table is not { } table)
        {
            // Without an indirection table the device does no RSS (veth, tap, virtio without VIRTIO_NET_F_RSS), and its
            // hash fields mean nothing either: virtio then reports none and refuses any (EINVAL).
            var why = read.Errno == Errnos.EOPNOTSUPP
                ? $"{nic.Name} ({nic.Driver ?? "virtual"}) has no RSS indirection table (ethtool -x: {Errnos.Describe(read.Errno)})"
                : $"cannot read the RSS table of {nic.Name}: {Errnos.Describe(read.Errno)}";
            var outcome = read.Errno == Errnos.EOPNOTSUPP ? KnobOutcome.Skipped : KnobOutcome.Failed;
            if (asksTable) notes.Add(new PlanNote(knob, outcome, why));
            foreach (var h in spec.RxFlowHash ?? []) notes.Add(new PlanNote($"nic/{nic.Name}/rss/rx-flow-hash/{h.FlowType}", outcome, why));
            return;
        }
        var rings = rxRingsAfterChannels ?? table.RxRings;
        if (asksTable)
        {
            var size = table.Indirection.Length;
            uint[]? target = null;
            string? skip = null;
            if (spec.Equal is { } n)
            {
                if (n > rings) skip = $"equal {n} is more than the {rings} receive queues of {nic.Name}" + (rxRingsAfterChannels is null ? "" : " after its channel change");
                else target = RssIndirection.Equal(size, n);
            }
            else if (spec.Weights is { } weights)
            {
                var last = weights.FindLastIndex(w => w > 0);
                if (last >= rings) skip = $"weights give queue {last} a share, but {nic.Name} has {rings} receive queues" + (rxRingsAfterChannels is null ? "" : " after its channel change");
                else if (RssIndirection.Weights(size, weights) is { } t) target = t;
                else skip = $"the weights add up to {weights.Sum()}, more than the {size} entries of the indirection table of {nic.Name}";
            }
            if (skip is not null) notes.Add(new PlanNote(knob, KnobOutcome.Skipped, skip));
            else knobs.Add(new DesiredKnob(knob, KnobKind.RssIndirection, RssPath(nic.Name), table.ToString(), RssIndirection.Format(target!, rings)));
        }
        foreach (var h in spec.RxFlowHash ?? [])
        {
            var hashKnob = $"nic/{nic.Name}/rss/rx-flow-hash/{h.FlowType}";
            if (!RxFlowHashFields.TryParse(h.Fields, out var bits)) continue; // the validator refused it already
            if (!nic.FlowHash.TryGetValue(h.FlowType, out var hr) || hr.Fields is not { } fields)
            {
                var errno = hr?.Errno ?? Errnos.EOPNOTSUPP;
                notes.Add(new PlanNote(hashKnob, errno is Errnos.EOPNOTSUPP or Errnos.EINVAL ? KnobOutcome.Skipped : KnobOutcome.Failed,
                    $"{nic.Name} reports no hash fields for {h.FlowType} (ethtool -n {nic.Name} rx-flow-hash {h.FlowType}: {Errnos.Describe(errno)})"));
                continue;
            }
            knobs.Add(new DesiredKnob(hashKnob, KnobKind.RxFlowHash, FlowHashPath(nic.Name, h.FlowType), RxFlowHashFields.Format(fields), RxFlowHashFields.Format(bits)));
        }
    }

    private static void PlanTxQueueLength(Nic nic, int length, List<DesiredKnob> knobs, List<PlanNote> notes)
    {
        var knob = $"nic/{nic.Name}/txqueuelen";
        if (nic.TxQueueLength is null)
        {
            notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"cannot read {TxQueueLengthPath(nic.Name)}"));
            return;
        }
        knobs.Add(new DesiredKnob(knob, KnobKind.TxQueueLength, TxQueueLengthPath(nic.Name), nic.TxQueueLength, length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    /// <summary>The ethtool option of each group, for messages a person can repeat by hand.</summary>
    public static string Option(KnobKind kind) => kind switch
    {
        KnobKind.Rings => "-G",
        KnobKind.Coalesce => "-C",
        KnobKind.Pause => "-A",
        KnobKind.Feature => "-K",
        KnobKind.RssIndirection => "-X",
        KnobKind.RxFlowHash => "-N",
        _ => "-L",
    };

    public static string Name(KnobKind kind) => kind switch
    {
        KnobKind.Rings => "rings",
        KnobKind.Coalesce => "coalesce",
        KnobKind.Pause => "pause",
        _ => kind.ToString(),
    };

    /// <summary>Where a group knob is applied: ethtool-rings:IFNAME and so on; features use ethtool-feature:IFNAME/FEATURE.</summary>
    public static string PathOf(KnobKind kind, string ifName) => $"ethtool-{Name(kind)}:{ifName}";

    public static string FeaturePath(string ifName, string feature) => $"ethtool-feature:{ifName}/{feature}";

    private static void Group(Nic nic, KnobKind kind, NicSettingValues wanted, List<DesiredKnob> knobs, List<PlanNote> notes,
        Func<Nic, NicSetting, NicSettingValues, string?>? limits)
    {
        if (!wanted.Names.Any()) return;
        var knob = $"nic/{nic.Name}/{Name(kind)}";
        var group = KnobValues.Group(kind);
        if (!nic.Settings.TryGetValue(group, out var read))
        {
            notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"the {Name(kind)} of {nic.Name} were not read"));
            return;
        }
        if (read.Setting is not { } setting)
        {
            notes.Add(read.Errno == Errnos.EOPNOTSUPP
                ? new PlanNote(knob, KnobOutcome.Skipped, $"the {nic.Driver ?? "virtual"} driver of {nic.Name} does not support {Name(kind)} (ethtool {Option(kind).ToLowerInvariant()}: {Errnos.Describe(read.Errno)})")
                : new PlanNote(knob, KnobOutcome.Failed, $"cannot read the {Name(kind)} of {nic.Name}: {Errnos.Describe(read.Errno)}"));
            return;
        }
        if (limits?.Invoke(nic, setting, wanted) is { } why)
        {
            notes.Add(new PlanNote(knob, KnobOutcome.Skipped, why));
            return;
        }
        var current = setting.Current;
        knobs.Add(new DesiredKnob(knob, kind, PathOf(kind, nic.Name), current.ToString(), wanted.Over(current).ToString()));
    }

    /// <summary>A ring size the NIC reports it cannot take: above its maximum, or a ring it does not have (maximum 0).</summary>
    private static string? RingLimits(Nic nic, NicSetting setting, NicSettingValues wanted)
    {
        foreach (var field in wanted.Names)
        {
            var max = setting.Max?[field] ?? 0;
            if (max == 0) return $"{nic.Name} has no {field} ring size to set (its driver reports no maximum)";
            if (wanted[field] > max) return $"{field} ring {wanted[field]} is above the maximum of {nic.Name} ({max}, ethtool -g)";
        }
        return null;
    }

    private static void PlanOffloads(Nic nic, OffloadsSpec spec, List<DesiredKnob> knobs, List<PlanNote> notes)
    {
        foreach (var (offload, names, asked) in Offloads)
        {
            if (asked(spec) is not { } want) continue;
            var knobPrefix = $"nic/{nic.Name}/offloads/{offload}";
            if (nic.Features is not { } features)
            {
                notes.Add(nic.FeaturesErrno == Errnos.EOPNOTSUPP
                    ? new PlanNote(knobPrefix, KnobOutcome.Skipped, $"{nic.Name} reports no features (ethtool -k: {Errnos.Describe(nic.FeaturesErrno)})")
                    : new PlanNote(knobPrefix, KnobOutcome.Failed, $"cannot read the features of {nic.Name}: {Errnos.Describe(nic.FeaturesErrno)}"));
                continue;
            }
            var present = features.Where(f => names.Contains(f.Name)).ToArray();
            if (present.Length == 0)
            {
                notes.Add(new PlanNote(knobPrefix, KnobOutcome.Skipped, $"this kernel has no {string.Join("/", names)} feature"));
                continue;
            }
            var target = want ? "on" : "off";
            foreach (var f in present)
            {
                var knob = $"nic/{nic.Name}/features/{f.Name}";
                var current = f.Requested ? "on" : "off";
                // A fixed feature already where the spec wants it is fine; one that is not cannot be changed.
                if (!f.Changeable && current != target)
                {
                    notes.Add(new PlanNote(knob, KnobOutcome.Skipped, $"{f.Name} is fixed {current} on {nic.Name} ({nic.Driver ?? "virtual"}: ethtool -k shows [fixed])"));
                    continue;
                }
                knobs.Add(new DesiredKnob(knob, KnobKind.Feature, FeaturePath(nic.Name, f.Name), current, target));
            }
        }
    }
}
