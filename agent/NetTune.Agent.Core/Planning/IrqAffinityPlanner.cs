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
        var allowed = cpus.Except(reserved).Order().ToArray();
        return policy != IrqAffinityPolicy.Spread && nic.NumaNode < 0 ? AcrossNodes(host, allowed) : allowed;
    }

    /// <summary>The CPUs taken a NUMA node at a time (node 0's first, node 1's first, ...): queue q of q mod n lands on every node.</summary>
    private static int[] AcrossNodes(HostSnapshot host, IReadOnlyList<int> cpus)
    {
        var byNode = cpus.GroupBy(c => host.NumaNodes.FirstOrDefault(n => n.Cpus.Contains(c))?.Id ?? int.MaxValue).OrderBy(g => g.Key).Select(g => g.ToList()).ToList();
        var result = new List<int>(cpus.Count);
        for (var i = 0; result.Count < cpus.Count; i++)
            foreach (var node in byNode)
                if (i < node.Count) result.Add(node[i]);
        return [.. result];
    }

    /// <summary>
    /// The CPUs of the NIC's NUMA node. A node the platform does not say (numa_node -1, common in VMs) is unknown, not
    /// node 0: every online CPU, so the interrupts and steering spread over every NUMA node instead of piling onto one.
    /// </summary>
    public static IReadOnlyList<int> NodeCpus(HostSnapshot host, Nic nic)
    {
        if (nic.NumaNode < 0) return host.OnlineCpus;
        var node = host.Node(nic.NumaNode) ?? host.NumaNodes.FirstOrDefault();
        return node?.Cpus.Count > 0 ? node.Cpus : host.OnlineCpus;
    }

    public static Result Plan(HostSnapshot host, Nic nic, IrqAffinitySpec spec, int rxQueues, int txQueues, IReadOnlyList<int>? housekeeping = null)
    {
        var notes = new List<PlanNote>();
        var reserved = CpuList.TryParse(spec.ReservedCpus, out var r) ? r : [];
        var allowed = AllowedCpus(host, nic, spec.Policy, reserved, housekeeping);
        if (nic.NumaNode < 0 && host.NumaNodes.Count > 1 && spec.Policy == IrqAffinityPolicy.NumaLocalSpread)
            notes.Add(new PlanNote($"nic/{nic.Name}/numa", KnobOutcome.Skipped,
                $"the platform does not say which NUMA node {nic.Name} is on (numa_node -1): unknown, so its interrupts and packet steering spread over every NUMA node"));
        return Place(nic, allowed, rxQueues, txQueues, notes,
            $"no CPU left for {nic.Name}'s interrupts under {spec.Policy} after removing reserved ({spec.ReservedCpus}), isolated, nohz_full and the kubelet's exclusive CPUs");
    }

    /// <summary>Queue q's interrupts (rx, tx or combined) on <paramref name="allowed"/>[q mod n], for the queues the channels leave.</summary>
    public static Result Place(Nic nic, IReadOnlyList<int> allowed, int rxQueues, int txQueues, List<PlanNote> notes, string noCpuMessage)
    {
        var knobs = new List<DesiredKnob>();
        var cpuByQueue = new Dictionary<int, int>();
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
            notes.Add(new PlanNote($"nic/{nic.Name}/irqs", KnobOutcome.Failed, noCpuMessage));
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
