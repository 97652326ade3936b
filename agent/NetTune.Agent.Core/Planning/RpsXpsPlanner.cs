using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// RPS: every rx queue steers to the NIC's local CPUs; RFS: each rx queue gets its share of the flow table;
/// XPS: tx queue i is used by the CPU that handles rx queue i's interrupt.
/// </summary>
public static class RpsXpsPlanner
{
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Plan(
        HostSnapshot host, Nic nic, RpsSpec? rps, XpsSpec? xps, int rxQueues, int txQueues, IReadOnlyDictionary<int, int> irqCpuByRxQueue,
        IReadOnlyList<int>? housekeeping = null)
    {
        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        var local = LocalCpus(host, nic, housekeeping ?? HousekeepingCpus.Of(host, null));
        var dir = $"sys/class/net/{nic.Name}/queues";
        if (local.Count == 0 && (rps?.Enabled == true || xps?.Enabled == true))
        {
            // Steering to every CPU would put packet work on the CPUs that must not have any: none is planned.
            notes.Add(new PlanNote($"nic/{nic.Name}/steering", KnobOutcome.Failed,
                $"no CPU left for {nic.Name}'s RPS and XPS: every online CPU is isolated, nohz_full, a container's exclusively or outside housekeepingCpus"));
            rps = rps is null ? null : new RpsSpec { Enabled = false, FlowEntries = rps.FlowEntries };
            xps = null;
        }

        if (rps?.Enabled == true)
        {
            var mask = CpuMask.Format(local, host.CpuIds);
            for (var q = 0; q < rxQueues; q++)
                knobs.Add(new DesiredKnob($"nic/{nic.Name}/rx-{q}/rps_cpus", KnobKind.RpsCpus, $"{dir}/rx-{q}/rps_cpus", Rx(nic, q)?.RpsCpus, mask));
        }
        if (rps?.FlowEntries is { } flows && rxQueues > 0)
        {
            var perQueue = KnobValues.RoundUpPowerOfTwo(flows == 0 ? 0 : (flows + rxQueues - 1) / rxQueues);
            for (var q = 0; q < rxQueues; q++)
                knobs.Add(new DesiredKnob($"nic/{nic.Name}/rx-{q}/rps_flow_cnt", KnobKind.RpsFlowCount, $"{dir}/rx-{q}/rps_flow_cnt",
                    Rx(nic, q)?.RpsFlowCnt, perQueue.ToString(CultureInfo.InvariantCulture)));
        }
        if (xps?.Enabled == true)
        {
            if (txQueues <= 1)
            {
                notes.Add(new PlanNote($"nic/{nic.Name}/tx-0/xps_cpus", KnobOutcome.Skipped, "xps_cpus does not exist on a device with a single tx queue"));
            }
            else
            {
                for (var q = 0; q < txQueues; q++)
                {
                    var cpus = TxCpus(nic, q, local, irqCpuByRxQueue);
                    var existing = nic.TxQueues.FirstOrDefault(t => t.Index == q);
                    knobs.Add(new DesiredKnob($"nic/{nic.Name}/tx-{q}/xps_cpus", KnobKind.XpsCpus, $"{dir}/tx-{q}/xps_cpus",
                        existing?.XpsCpus, CpuMask.Format(cpus, host.CpuIds)));
                }
            }
        }
        return (knobs, notes);
    }

    /// <summary>
    /// The NIC's local housekeeping CPUs: local_cpulist when the platform knows the NUMA node, else every online CPU
    /// (-1: unknown, spread over every NUMA node), within the housekeeping set (the whole set when the NIC's node has no housekeeping CPU; none when the
    /// node has no housekeeping CPU at all).
    /// </summary>
    public static IReadOnlyList<int> LocalCpus(HostSnapshot host, Nic nic, IReadOnlyList<int> housekeeping)
    {
        var cpus = nic.NumaNode >= 0 && nic.LocalCpus is { Count: > 0 } l ? l : IrqAffinityPlanner.NodeCpus(host, nic);
        return housekeeping.Count > 0 ? HousekeepingCpus.Within(housekeeping, cpus) : [];
    }

    private static RxQueue? Rx(Nic nic, int q) => nic.RxQueues.FirstOrDefault(r => r.Index == q);

    private static IReadOnlyList<int> TxCpus(Nic nic, int q, IReadOnlyList<int> local, IReadOnlyDictionary<int, int> planned)
    {
        if (planned.TryGetValue(q, out var cpu)) return [cpu];
        // Without a planned affinity, the rx interrupt's current one; devices without interrupts (veth) go round-robin.
        var irq = nic.Irqs.FirstOrDefault(i => i.Queue == q && i.Role != IrqRole.Tx);
        if (irq?.AffinityList is { } aff && CpuList.TryParse(aff, out var cur) && cur.Count == 1) return cur;
        return [local[q % local.Count]];
    }
}
