using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// Queue-to-core alignment (irqAffinity AlignWithDataPlane): a NIC's queues go one to one onto the CPUs of the
/// data-plane pod on its NUMA node. The data plane runs worker i on the pod's i-th CPU (ascending) and each worker's
/// listener asks for the connections whose SYN that CPU processed (SO_INCOMING_CPU), so with queue q's interrupt on
/// CPU q and RPS off, a connection's interrupt, softirq, accept and every request after share one core.
/// </summary>
public static class AlignmentPlanner
{
    /// <summary>The channels alignment asks for: as many as the pod has worker CPUs, within the NIC's maximum (<see cref="ChannelPlanner"/> caps).</summary>
    public static readonly ChannelsSpec Channels = new() { MatchLocalCpus = true };

    /// <summary>
    /// The data-plane container whose CPUs take <paramref name="nic"/>'s queues: the one holding the NIC's NUMA node
    /// (node 0 on a single-node host whose platform does not say); null, with the reason, when there is none.
    /// </summary>
    public static DataPlaneCpus? LocalDataPlane(HostSnapshot host, Nic nic, out string why)
    {
        var node = nic.NumaNode >= 0 ? nic.NumaNode : host.NumaNodes.Count == 1 ? host.NumaNodes[0].Id : -1;
        if (node < 0)
        {
            why = $"the platform does not say which NUMA node {nic.Name} is on (numa_node -1) and this host has {host.NumaNodes.Count} NUMA nodes: no data-plane pod is known to be local to it";
            return null;
        }
        // Only pods whose CPUs are all online: a checkpoint left from before a CPU went offline names no worker there.
        var local = host.DataPlanes.Where(d => d.NumaNode == node && d.Cpus.Count > 0 && d.Cpus.All(host.OnlineCpus.Contains)).ToArray();
        if (local.Length == 0)
        {
            why = host.DataPlanes.Count == 0
                ? $"no data-plane pod runs on this node yet (none holds a {NumaResources.Prefix}N device with exclusive CPUs)"
                : $"no data-plane pod holds NUMA node {node}'s device (pods hold {string.Join(", ", host.DataPlanes.Select(d => "numa" + d.NumaNode))})";
            return null;
        }
        why = "";
        // Two tunings may each run a pod on one node; the queues can follow only one: the one with the most workers.
        return local.OrderByDescending(d => d.Cpus.Count).ThenBy(d => d.PodUid, StringComparer.Ordinal).First();
    }

    /// <summary>
    /// RPS off on the aligned rx queues (the packet stays on the interrupt's CPU), RFS table shares as the spec asks,
    /// and tx-q's XPS on queue q's interrupt CPU.
    /// </summary>
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Queues(HostSnapshot host, Nic nic, DataPlaneCpus pod, int? flowEntries,
        int rxQueues, int txQueues, IReadOnlyDictionary<int, int> irqCpuByRxQueue)
    {
        var knobs = new List<DesiredKnob>();
        var off = CpuMask.Format([], host.CpuIds);
        for (var q = 0; q < rxQueues; q++)
            knobs.Add(new DesiredKnob($"nic/{nic.Name}/rx-{q}/rps_cpus", KnobKind.RpsCpus, $"sys/class/net/{nic.Name}/queues/rx-{q}/rps_cpus",
                nic.RxQueues.FirstOrDefault(r => r.Index == q)?.RpsCpus, off));
        // XPS follows the placed interrupts; the pod's CPUs stand in for the housekeeping set so a queue without a
        // placed interrupt (a virtual device) still goes to a worker's CPU.
        var steering = RpsXpsPlanner.Plan(host, nic, flowEntries is null ? null : new RpsSpec { Enabled = false, FlowEntries = flowEntries },
            new XpsSpec { Enabled = true }, rxQueues, txQueues, irqCpuByRxQueue, pod.Cpus);
        knobs.AddRange(steering.Knobs);
        return (knobs, steering.Notes);
    }
}
