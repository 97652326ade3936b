using System.Text.Json;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Planning;
using NetTune.Operator.Core.Selection;

namespace NetTune.Operator.Admission;

/// <summary>
/// Refuses a NetworkTuning whose data plane would bind a port that another tuning's data plane binds on a node both
/// select (SO_REUSEPORT lets both bind and splits the traffic). Ports per node as the planner counts them
/// (<see cref="DataPlanePorts"/>: the port, and adminPort + id of each NUMA node the node's NodeState reports). The
/// planner refuses the same on its side for what gets past admission (nodes relabelled later, servers without the
/// webhook).
/// </summary>
public sealed class PortAdmission(IKubernetes client)
{
    public async Task<string?> ConflictAsync(NetworkTuning tuning, CancellationToken ct)
    {
        if (!DataPlanePorts.Serves(tuning)) return null;
        var tunings = Parse<NetworkTuningList>(await client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, cancellationToken: ct)
            .ConfigureAwait(false)).Items.Where(t => t.Metadata.Name != tuning.Metadata.Name && t.Metadata.DeletionTimestamp is null && DataPlanePorts.Serves(t)).ToList();
        if (tunings.Count == 0) return null;
        var states = Parse<NetworkTuningNodeStateList>(await client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, cancellationToken: ct)
            .ConfigureAwait(false)).Items.ToDictionary(s => s.Metadata.Name, StringComparer.Ordinal);
        var nodes = await client.CoreV1.ListNodeAsync(cancellationToken: ct).ConfigureAwait(false);
        foreach (var node in nodes.Items.Where(n => NodeSelection.Selects(tuning.Spec, n)).OrderBy(n => n.Metadata.Name, StringComparer.Ordinal))
        {
            var topology = states.GetValueOrDefault(node.Metadata.Name)?.Status?.Topology;
            var mine = DataPlanePorts.On(tuning.Spec.DataPlane!, topology);
            foreach (var other in tunings.Where(t => NodeSelection.Selects(t.Spec, node)).OrderBy(t => t.Metadata.Name, StringComparer.Ordinal))
            {
                var shared = DataPlanePorts.On(other.Spec.DataPlane!, topology).Where(mine.Contains).Order().ToList();
                if (shared.Count > 0)
                    return $"spec.dataPlane: port {shared[0]} is also bound by NetworkTuning {other.Metadata.Name}'s data plane on node {node.Metadata.Name}, which both select (port, and adminPort + NUMA id per socket)";
            }
        }
        return null;
    }

    private static T Parse<T>(object body) => body is JsonElement e ? KubernetesJson.Deserialize<T>(e) : KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(body));
}
