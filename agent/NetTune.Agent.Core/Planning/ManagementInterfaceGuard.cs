using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// Keeps a spec from cutting the node off: the interface that carries the default route (and the bond slaves or VLAN
/// parent below it) keeps its channels unless the spec opts in, and even then never gets fewer than two channels or
/// every queue interrupt on one CPU. A channel change resets the link on most drivers; one queue, or one CPU for
/// every queue, leaves the node's own traffic (the kubelet's, the agent's) one busy CPU away from timing out.
/// </summary>
public static class ManagementInterfaceGuard
{
    public const int MinChannels = 2;

    public static ChannelPlanner.Result Channels(HostSnapshot host, Nic nic, ChannelsSpec? spec, ChannelPlanner.Result planned)
    {
        if (planned.Knob is not { NeedsChange: true } knob || !host.ManagementInterfaces.TryGetValue(nic.Name, out var why)) return planned;
        var unchanged = new ChannelPlanner.Result(null, null, nic.RxQueues.Count, nic.TxQueues.Count);
        if (spec?.AllowManagementInterface != true)
            return unchanged with
            {
                Note = new PlanNote(knob.Knob, KnobOutcome.Skipped,
                    $"left at {knob.Current}: {why}, and a channel change can reset its link; set nic.channels.allowManagementInterface to change it"),
            };
        var target = ChannelCounts.Parse(knob.Target);
        if (target.Combined + target.Rx < MinChannels || target.Combined + target.Tx < MinChannels)
            return unchanged with
            {
                Note = new PlanNote(knob.Knob, KnobOutcome.Failed,
                    $"refused {knob.Target}: {why}, and fewer than {MinChannels} rx or tx channels put all of its traffic on one queue"),
            };
        return planned;
    }

    /// <summary>Ring and pause changes restart the link on ice, ENA and others: on the management interface only when the spec opts in.</summary>
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Settings(HostSnapshot host, Nic nic, NicSpec spec,
        (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) planned)
    {
        if (!host.ManagementInterfaces.TryGetValue(nic.Name, out var why)) return planned;
        var knobs = new List<DesiredKnob>();
        var notes = planned.Notes.ToList();
        foreach (var k in planned.Knobs)
        {
            var allowed = k.Kind switch
            {
                KnobKind.Rings => spec.Rings?.AllowManagementInterface == true,
                KnobKind.Pause => spec.Pause?.AllowManagementInterface == true,
                _ => true,
            };
            if (allowed || !k.NeedsChange) knobs.Add(k);
            else notes.Add(new PlanNote(k.Knob, KnobOutcome.Skipped,
                $"left at {k.Current}: {why}, and a {NicSettingsPlanner.Name(k.Kind)} change restarts the link on many drivers; set nic.{NicSettingsPlanner.Name(k.Kind)}.allowManagementInterface to change it"));
        }
        return (knobs, notes);
    }

    public static IrqAffinityPlanner.Result Irqs(HostSnapshot host, Nic nic, IrqAffinityPlanner.Result planned)
    {
        if (!host.ManagementInterfaces.TryGetValue(nic.Name, out var why) || host.OnlineCpus.Count < 2) return planned;
        // One queue's interrupts (virtio's input and output of a single pair) belong on one CPU; several queues' do not.
        var cpus = planned.CpuByRxQueue.Values.Distinct().ToArray();
        if (planned.CpuByRxQueue.Count < 2 || cpus.Length != 1) return planned;
        return new IrqAffinityPlanner.Result([], [.. planned.Notes, new PlanNote($"nic/{nic.Name}/irqs", KnobOutcome.Failed,
            $"refused: the interrupts of all {planned.CpuByRxQueue.Count} queues of {nic.Name} on CPU {cpus[0]}; {why}, so one busy CPU would stall the node's own traffic (leave it more housekeeping CPUs or fewer reserved ones)")],
            new Dictionary<int, int>());
    }
}
