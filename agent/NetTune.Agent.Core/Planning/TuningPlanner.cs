using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>Topology, current values and the desired spec in; every desired knob (with its current value) out. No I/O.</summary>
public static class TuningPlanner
{
    public static TuningPlan Plan(HostSnapshot host, NodeStateSpec spec)
    {
        var desired = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        var unbanned = new List<int>();
        var managesIrqs = false;
        if (spec.Nic is { } nicSpec)
        {
            var housekeeping = HousekeepingCpus.Of(host, nicSpec);
            foreach (var nic in host.Nics.Where(n => InterfaceMatcher.Matches(nicSpec.Interfaces, n.Name, n.Driver)))
            {
                var irqPolicy = nicSpec.IrqAffinity;
                DataPlaneCpus? aligned = null;
                if (irqPolicy?.Policy == IrqAffinityPolicy.AlignWithDataPlane)
                {
                    aligned = AlignmentPlanner.LocalDataPlane(host, nic, out var why);
                    if (aligned is null)
                    {
                        notes.Add(new PlanNote($"nic/{nic.Name}/alignment", KnobOutcome.Skipped, $"{why}; its queues are placed NumaLocalSpread until one runs"));
                        irqPolicy = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread, ReservedCpus = irqPolicy.ReservedCpus };
                    }
                }
                var channels = ManagementInterfaceGuard.Channels(host, nic, nicSpec.Channels, aligned is null
                    ? ChannelPlanner.Plan(nic, nicSpec.Channels, HousekeepingCpus.Cores(host, ServingCpus(host, nic, nicSpec, housekeeping)))
                    : ChannelPlanner.Plan(nic, AlignmentPlanner.Channels, aligned.Cpus.Count));
                if (channels.Knob is not null) desired.Add(channels.Knob);
                if (channels.Note is not null) notes.Add(channels.Note);
                var settings = ManagementInterfaceGuard.Settings(host, nic, nicSpec, NicSettingsPlanner.Plan(nic, nicSpec,
                    channels.Knob is { NeedsChange: true } ck && ChannelCounts.TryParse(ck.Target, out var after) ? after.Combined + after.Rx : null));
                desired.AddRange(settings.Knobs);
                notes.AddRange(settings.Notes);

                IReadOnlyDictionary<int, int> irqCpus = new Dictionary<int, int>();
                if (irqPolicy is { Policy: not IrqAffinityPolicy.Unmanaged } irqSpec)
                {
                    managesIrqs = true;
                    var irq = ManagementInterfaceGuard.Irqs(host, nic, aligned is null
                        ? IrqAffinityPlanner.Plan(host, nic, irqSpec, channels.RxQueues, channels.TxQueues, housekeeping)
                        : IrqAffinityPlanner.Place(nic, aligned.Cpus, channels.RxQueues, channels.TxQueues, [], $"the data-plane pod {aligned.PodUid} has no CPU for {nic.Name}'s interrupts"));
                    notes.AddRange(irq.Notes);
                    var (kept, leftAlone) = LeaveToIrqBalance(host.IrqBalance, irq.Knobs);
                    desired.AddRange(kept);
                    notes.AddRange(leftAlone.Select(k => new PlanNote(k.Knob, KnobOutcome.Skipped,
                        $"not placed: irqbalance (pid {host.IrqBalance!.Pid}) runs and would move {k.Identity} back within seconds; ban it there (--banirq) or stop irqbalance",
                        KnobKind.IrqAffinity, k.Identity)));
                    unbanned.AddRange(leftAlone.Select(k => int.Parse(k.Knob.Split('/')[1], System.Globalization.CultureInfo.InvariantCulture)));
                    // XPS follows the IRQs the agent places; IRQs left to irqbalance are followed where they are.
                    irqCpus = leftAlone.Count == 0 ? irq.CpuByRxQueue : new Dictionary<int, int>();
                }
                var queues = aligned is null
                    ? RpsXpsPlanner.Plan(host, nic, nicSpec.Rps, nicSpec.Xps, channels.RxQueues, channels.TxQueues, irqCpus, housekeeping)
                    : AlignmentPlanner.Queues(host, nic, aligned, nicSpec.Rps?.FlowEntries, channels.RxQueues, channels.TxQueues, irqCpus);
                desired.AddRange(queues.Knobs);
                notes.AddRange(queues.Notes);
            }
        }
        var pages = HugepagesPlanner.Plan(host, spec.Hugepages, spec.HugepagesBudget);
        desired.AddRange(pages.Knobs);
        notes.AddRange(pages.Notes);
        var sysctls = SysctlPlanner.Plan(host, spec.Sysctls, spec.Nic?.Rps?.FlowEntries);
        desired.AddRange(sysctls.Knobs);
        notes.AddRange(sysctls.Notes);

        // Two matching NICs cannot share an IRQ, but keep the first of any duplicate knob so a plan never writes one twice.
        var unique = desired.GroupBy(d => d.Knob, StringComparer.Ordinal).Select(g => g.First()).OrderBy(d => d.Phase).ToArray();
        return new TuningPlan(unique, notes)
        {
            ManagesIrqs = managesIrqs,
            IrqBalance = unbanned.Count > 0 ? new IrqBalanceConflict(host.IrqBalance!.Pid, unbanned.Order().ToArray(), host.IrqBalance.CommandLine) : null,
        };
    }

    /// <summary>
    /// Never fight irqbalance: an IRQ it balances is left alone (it would move it back every 10 s, and the agent's
    /// drift repair would move it again, forever). IRQs its command line bans stay the agent's.
    /// </summary>
    private static (IReadOnlyList<DesiredKnob> Kept, IReadOnlyList<DesiredKnob> LeftAlone) LeaveToIrqBalance(IrqBalanceProcess? irqbalance, IReadOnlyList<DesiredKnob> irqKnobs)
    {
        if (irqbalance is null) return (irqKnobs, []);
        var banned = irqbalance.BannedIrqs.ToHashSet();
        var left = irqKnobs.Where(k => !banned.Contains(int.Parse(k.Knob.Split('/')[1], System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        return (irqKnobs.Except(left).ToArray(), left);
    }

    /// <summary>The CPUs that will handle a NIC's queues: its interrupts' CPUs when the spec places them, else its local housekeeping CPUs.</summary>
    public static IReadOnlyList<int> ServingCpus(HostSnapshot host, Nic nic, NicSpec spec, IReadOnlyList<int> housekeeping) =>
        spec.IrqAffinity is { Policy: not IrqAffinityPolicy.Unmanaged } irq
            ? IrqAffinityPlanner.AllowedCpus(host, nic, irq.Policy, CpuList.TryParse(irq.ReservedCpus, out var r) ? r : [], housekeeping)
            : RpsXpsPlanner.LocalCpus(host, nic, housekeeping);
}
