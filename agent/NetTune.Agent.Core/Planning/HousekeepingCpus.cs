using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// The one set of CPUs a node's packet work may use: interrupts, RPS and XPS alike. It is nic.housekeepingCpus (every
/// online CPU when unset) less the CPUs the node keeps quiet for workloads: isolated (isolcpus), nohz_full, and those
/// the kubelet's static CPU manager gave a Guaranteed container exclusively.
/// </summary>
public static class HousekeepingCpus
{
    public static IReadOnlyList<int> Of(HostSnapshot host, NicSpec? spec)
    {
        IEnumerable<int> cpus = spec?.HousekeepingCpus is { } list && CpuList.TryParse(list, out var given) ? given : host.OnlineCpus;
        return cpus.Intersect(host.OnlineCpus).Except(host.IsolatedCpus).Except(host.NohzFullCpus).Except(host.KubeletExclusiveCpus).Order().ToArray();
    }

    /// <summary>
    /// <paramref name="preferred"/> (a NIC's local CPUs) within the housekeeping set; the whole set when the NIC's
    /// node has no housekeeping CPU, since working across the interconnect beats working on a workload's CPU.
    /// </summary>
    public static IReadOnlyList<int> Within(IReadOnlyList<int> housekeeping, IEnumerable<int> preferred)
    {
        var local = preferred.Intersect(housekeeping).Order().ToArray();
        return local.Length > 0 ? local : housekeeping;
    }

    /// <summary>Physical cores among <paramref name="cpus"/>: SMT siblings share a core and its queue's worth of work.</summary>
    public static int Cores(HostSnapshot host, IEnumerable<int> cpus)
    {
        var byId = host.Cpus.ToDictionary(c => c.Id);
        return cpus.Select(c => byId.TryGetValue(c, out var info) ? (info.Package, info.Core) : (-1, c)).Distinct().Count();
    }
}
