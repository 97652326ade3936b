using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent;

/// <summary>The agent's view of the API: its own NetworkTuningNodeState, read, watched and given a status.</summary>
public sealed class NodeStateClient(IKubernetes client, string nodeName)
{
    public async Task<NetworkTuningNodeState?> GetAsync(CancellationToken ct)
    {
        try
        {
            return await client.CustomObjects.GetClusterCustomObjectAsync<NetworkTuningNodeState>(
                ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, nodeName, ct).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>This node's Node object (for its hugepage capacity); needs get on nodes.</summary>
    public Task<V1Node> GetNodeAsync(CancellationToken ct) => client.CoreV1.ReadNodeAsync(nodeName, cancellationToken: ct);

    /// <summary>Watches the object until the server ends the watch or it fails; calls <paramref name="changed"/> on every event.</summary>
    public async Task WatchAsync(Action changed, CancellationToken ct)
    {
        var events = client.CustomObjects.WatchListClusterCustomObjectAsync(
            ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural,
            fieldSelector: $"metadata.name={nodeName}", timeoutSeconds: 300, cancellationToken: ct);
        await foreach (var (type, _) in events.ConfigureAwait(false))
        {
            if (type is WatchEventType.Added or WatchEventType.Modified or WatchEventType.Deleted) changed();
        }
    }

    /// <summary>
    /// Records an Event about this agent's Node, in namespace default (the only one the API server takes Events about
    /// cluster-scoped objects in). Events are for people: a refused one is the caller's to log, never a stop.
    /// </summary>
    public async Task RecordNodeEventAsync(string type, string reason, string message, CancellationToken ct)
    {
        var now = DateTime.UtcNow;
        var ev = new Corev1Event
        {
            // The server shortens a long node name's prefix to fit and makes the name unique.
            Metadata = new V1ObjectMeta { GenerateName = $"{nodeName}.", NamespaceProperty = EventNamespace },
            InvolvedObject = new V1ObjectReference { ApiVersion = "v1", Kind = "Node", Name = nodeName },
            Type = type,
            Reason = reason,
            Message = message,
            Source = new V1EventSource { Component = "nettune-agent", Host = nodeName },
            ReportingComponent = "nettune-agent",
            ReportingInstance = nodeName,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        await client.CoreV1.CreateNamespacedEventAsync(ev, EventNamespace, cancellationToken: ct).ConfigureAwait(false);
    }

    public const string EventNamespace = "default";

    /// <summary>Replaces the whole status through the status subresource (a merge patch of status with every field set).</summary>
    public async Task PatchStatusAsync(NodeStateStatus status, CancellationToken ct)
    {
        var body = new Dictionary<string, object?> { ["status"] = status };
        var patch = new V1Patch(KubernetesJson.Serialize(body), V1Patch.PatchType.MergePatch);
        await client.CustomObjects.PatchClusterCustomObjectStatusAsync(patch, ApiGroup.Name, ApiGroup.Version,
            NetworkTuningNodeState.Plural, nodeName, cancellationToken: ct).ConfigureAwait(false);
    }
}
