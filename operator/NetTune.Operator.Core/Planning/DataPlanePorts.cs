using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Selection;

namespace NetTune.Operator.Core.Planning;

/// <summary>
/// The host ports a tuning's data plane binds on a node: its port on every socket (SO_REUSEPORT would let a second
/// tuning's pods bind it too and take half the connections) and adminPort + NUMA id per socket. Two tunings whose
/// ports meet on a node cannot both serve there: the older (then by name) keeps the node.
/// </summary>
public static class DataPlanePorts
{
    public static IReadOnlySet<int> On(DataPlaneSpec dp, NodeTopology? topology)
    {
        var numa = topology?.NumaNodes?.Where(n => !string.IsNullOrEmpty(n.Cpus)).Select(n => n.Id).ToList() is { Count: > 0 } ids ? ids : [0];
        return new HashSet<int>([dp.Port, .. numa.Select(id => dp.AdminPort + id)]);
    }

    public static bool Serves(NetworkTuning t) => t.Spec.DataPlane?.Enabled == true && t.Spec.Rollout?.DryRun != true;

    /// <summary>The first older tuning whose data plane on <paramref name="node"/> binds a port this one needs, and the port.</summary>
    public static (string Other, int Port)? Conflict(NetworkTuning tuning, V1Node node, NodeTopology? topology, IEnumerable<NetworkTuning> tunings)
    {
        if (!Serves(tuning)) return null;
        var mine = On(tuning.Spec.DataPlane!, topology);
        foreach (var other in tunings.Where(o => o.Metadata.Name != tuning.Metadata.Name && Serves(o) && Older(o, tuning)).OrderBy(o => o.Metadata.Name, StringComparer.Ordinal))
        {
            if (!NodeSelection.Selects(other.Spec, node)) continue;
            var taken = On(other.Spec.DataPlane!, topology).Where(mine.Contains).Order().ToList();
            if (taken.Count > 0) return (other.Metadata.Name, taken[0]);
        }
        return null;
    }

    private static bool Older(NetworkTuning a, NetworkTuning b)
    {
        var (ta, tb) = (a.Metadata.CreationTimestamp ?? DateTime.MaxValue, b.Metadata.CreationTimestamp ?? DateTime.MaxValue);
        return ta != tb ? ta < tb : string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name) < 0;
    }
}
