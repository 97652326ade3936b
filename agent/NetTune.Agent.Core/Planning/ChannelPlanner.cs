using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>The channel counts a NIC should have, and the queue counts that follow from them.</summary>
public static class ChannelPlanner
{
    public sealed record Result(DesiredKnob? Knob, PlanNote? Note, int RxQueues, int TxQueues);

    public static Result Plan(Nic nic, ChannelsSpec? spec, int localCpuCount)
    {
        var knob = $"nic/{nic.Name}/channels";
        if (spec is null) return new(null, null, nic.RxQueues.Count, nic.TxQueues.Count);
        if (nic.Channels is not { } info)
            return new(null, new PlanNote(knob, KnobOutcome.Failed, $"cannot read channels: {nic.ChannelsError}"), nic.RxQueues.Count, nic.TxQueues.Count);

        var cur = info.Current;
        var max = info.Max;
        ChannelCounts target;
        if (spec.MatchLocalCpus == true)
        {
            var want = Math.Max(1, localCpuCount);
            target = max.Combined > 0
                ? cur with { Combined = Math.Min(want, max.Combined) }
                : cur with { Rx = max.Rx > 0 ? Math.Min(want, max.Rx) : cur.Rx, Tx = max.Tx > 0 ? Math.Min(want, max.Tx) : cur.Tx };
        }
        else
        {
            target = cur with
            {
                Combined = spec.Combined ?? cur.Combined,
                Rx = spec.Rx ?? cur.Rx,
                Tx = spec.Tx ?? cur.Tx,
            };
        }
        // Queue folders in sysfs follow the channels: a combined channel is one rx and one tx queue.
        var rxQueues = target == cur ? nic.RxQueues.Count : target.Combined + target.Rx;
        var txQueues = target == cur ? nic.TxQueues.Count : target.Combined + target.Tx;
        return new(new DesiredKnob(knob, KnobKind.Channels, $"ethtool:{nic.Name}", cur.ToString(), target.ToString()), null, rxQueues, txQueues);
    }
}
