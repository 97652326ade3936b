using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>Spreads a NIC's queue interrupts round-robin over the allowed CPUs: queue q goes to CPU q mod n.</summary>
public static class IrqAffinityPlanner
{
    public sealed record Result(IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes, IReadOnlyDictionary<int, int> CpuByRxQueue);

    /// <summary>
    /// The CPUs interrupts of <paramref name="nic"/> may use under the policy: housekeeping CPUs (the NIC's node's under
    /// NumaLocalSpread, any node's when its node has none), not reserved.
    /// </summary>
    public static IReadOnlyList<int> AllowedCpus(HostSnapshot host, Nic nic, IrqAffinityPolicy policy, IReadOnlyList<int> reserved, IReadOnlyList<int>? housekeeping = null)
    {
        housekeeping ??= HousekeepingCpus.Of(host, null);
        var cpus = policy == IrqAffinityPolicy.Spread ? housekeeping : HousekeepingCpus.Within(housekeeping, NodeCpus(host, nic));
        return cpus.Except(reserved).Order().ToArray();
    }

    /// <summary>The CPUs of the NIC's NUMA node; an unknown node (-1) counts as node 0.</summary>
    public static IReadOnlyList<int> NodeCpus(HostSnapshot host, Nic nic)
    {
        var node = host.Node(nic.NumaNode < 0 ? 0 : nic.NumaNode) ?? host.NumaNodes.FirstOrDefault();
        return node?.Cpus.Count > 0 ? node.Cpus : host.OnlineCpus;
    }

    public static Result Plan(HostSnapshot host, Nic nic, IrqAffinitySpec spec, int rxQueues, int txQueues, IReadOnlyList<int>? housekeeping = null)
    {
        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        var cpuByQueue = new Dictionary<int, int>();
        var reserved = CpuList.TryParse(spec.ReservedCpus, out var r) ? r : [];
        var allowed = AllowedCpus(host, nic, spec.Policy, reserved, housekeeping);
        var irqs = nic.Irqs.Where(i => i.Queue < (i.Role == IrqRole.Tx ? txQueues : rxQueues)).OrderBy(i => i.Queue).ThenBy(i => i.Role).ToArray();
        if (irqs.Length == 0)
        {
            // Never a silent success: a selected NIC whose interrupts cannot be found is not tuned, and status says so.
            notes.Add(nic.IsVirtual
                ? new PlanNote($"nic/{nic.Name}/irqs", KnobOutcome.Skipped, $"{nic.Name} is a virtual device (no device behind it): it has no interrupts to place")
                : new PlanNote($"nic/{nic.Name}/irqs", KnobOutcome.Failed,
                    $"no queue interrupt of {nic.Name} (driver {nic.Driver ?? "unknown"}) found: neither a /proc/interrupts name the agent knows nor MSI vectors in its device's msi_irqs; its interrupts are not placed"));
            return new(knobs, notes, cpuByQueue);
        }
        if (allowed.Count == 0)
        {
            notes.Add(new PlanNote($"nic/{nic.Name}/irqs", KnobOutcome.Failed,
                $"no CPU left for {nic.Name}'s interrupts under {spec.Policy} after removing reserved ({spec.ReservedCpus}), isolated, nohz_full and the kubelet's exclusive CPUs"));
            return new(knobs, notes, cpuByQueue);
        }
        foreach (var irq in irqs)
        {
            var cpu = allowed[irq.Queue % allowed.Count];
            if (irq.Role != IrqRole.Tx) cpuByQueue[irq.Queue] = cpu;
            var knob = $"irq/{irq.Irq}/affinity";
            if (irq.Managed)
            {
                notes.Add(new PlanNote(knob, KnobOutcome.Managed, $"the kernel manages the affinity of {irq.Name}"));
                continue;
            }
            knobs.Add(new DesiredKnob(knob, KnobKind.IrqAffinity, $"proc/irq/{irq.Irq}/smp_affinity_list", irq.AffinityList, $"{cpu}", irq.Name));
        }
        return new(knobs, notes, cpuByQueue);
    }
}
