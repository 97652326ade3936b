using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;

namespace NetTune.Operator.Bench;

/// <summary>
/// One simulated agent per Node object, all in this process: each holds its own watch on its NodeState (field selector
/// on the name, as the agent's) and answers every new generation with the status an agent writes after a successful
/// apply (observed and last applied generation, Applied=True, Degraded=False), at once. What they leave out is the
/// apply itself: the rollout's time is the operator's and the API server's.
/// </summary>
public static class SimulatedAgents
{
    /// <summary>Starts them; the task ends after <paramref name="stop"/> with the number of status writes made.</summary>
    public static Task<int> Start(KubeCluster cluster, IReadOnlyList<string> nodes, CancellationToken stop)
    {
        var client = cluster.CreateClient();
        var writes = 0;
        var agents = nodes.Select(node => Task.Run(() => RunAsync(client, node, () => Interlocked.Increment(ref writes), stop))).ToArray();
        return Task.WhenAll(agents).ContinueWith(_ =>
        {
            client.Dispose();
            return writes;
        }, TaskScheduler.Default);
    }

    private static async Task RunAsync(IKubernetes client, string node, Action wrote, CancellationToken stop)
    {
        long answered = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var events = client.CustomObjects.WatchListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural,
                    fieldSelector: $"metadata.name={node}", timeoutSeconds: 300, cancellationToken: stop);
                await foreach (var (type, body) in events)
                {
                    if (type is not (WatchEventType.Added or WatchEventType.Modified)) continue;
                    var state = KubernetesJson.Deserialize<NetworkTuningNodeState>(KubernetesJson.Serialize(body));
                    var generation = state.Metadata.Generation ?? 0;
                    if (generation <= answered || state.Status?.ObservedGeneration == generation) continue;
                    var patch = new V1Patch(KubernetesJson.Serialize(new Dictionary<string, object> { ["status"] = Applied(generation) }), V1Patch.PatchType.MergePatch);
                    await client.CustomObjects.PatchClusterCustomObjectStatusAsync(patch, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node,
                        cancellationToken: stop);
                    answered = generation;
                    wrote();
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or k8s.Autorest.HttpOperationException)
            {
                try { await Task.Delay(500, stop); } catch (OperationCanceledException) { return; }
            }
        }
    }

    private static NodeStateStatus Applied(long generation)
    {
        var now = DateTime.UtcNow;
        return new NodeStateStatus
        {
            ObservedGeneration = generation,
            LastAppliedGeneration = generation,
            AgentVersion = "simulated",
            Conditions =
            [
                new V1Condition { Type = ConditionTypes.Applied, Status = ConditionStatus.True, Reason = ConditionReasons.Applied, Message = "simulated", ObservedGeneration = generation, LastTransitionTime = now },
                new V1Condition { Type = ConditionTypes.Degraded, Status = ConditionStatus.False, Reason = ConditionReasons.AsExpected, Message = "simulated", ObservedGeneration = generation, LastTransitionTime = now },
            ],
        };
    }
}
