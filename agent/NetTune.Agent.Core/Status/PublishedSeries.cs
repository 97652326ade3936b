using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

/// <summary>
/// The label sets of one metric published by the last observation. A series whose NIC went (unplugged, renamed, its
/// driver unbound) or whose queue went (a channel change) must be removed, not left at its last value: this says which.
/// </summary>
public sealed class PublishedSeries
{
    private Dictionary<string, string[]> _published = new(StringComparer.Ordinal);

    /// <summary>Takes the label sets published now; returns those published before and not now, to be removed.</summary>
    public IReadOnlyList<string[]> Replace(IEnumerable<string[]> now)
    {
        var next = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var labels in now) next[string.Join('\0', labels)] = labels;
        var gone = _published.Where(p => !next.ContainsKey(p.Key)).Select(p => p.Value).ToArray();
        _published = next;
        return gone;
    }

    /// <summary>nettune_agent_nic_queues: (nic, direction) of every NIC.</summary>
    public static IEnumerable<string[]> QueueCounts(HostSnapshot host) =>
        host.Nics.SelectMany(n => new[] { new[] { n.Name, "rx" }, [n.Name, "tx"] });

    /// <summary>nettune_agent_irq_cpu: (irq, nic, queue) of every queue interrupt with an affinity.</summary>
    public static IEnumerable<string[]> QueueIrqs(HostSnapshot host) =>
        host.Nics.SelectMany(n => n.Irqs.Where(i => CpuList.TryParse(i.AffinityList, out var cpus) && cpus.Count > 0)
            .Select(i => new[] { $"{i.Irq}", n.Name, $"{i.Queue}" }));
}
