using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent;

/// <summary>
/// The agent's view of the API: its own NetworkTuningNodeState, read, watched and given a status.
/// The NodeState goes over the client's own HttpClient and credentials with <see cref="AgentJson"/>'s source-generated
/// contracts rather than through CustomObjects: KubernetesClient.Aot (the NativeAOT build) has no Watcher and serializes
/// only the built-in types, and one code path serves both builds.
/// </summary>
public sealed class NodeStateClient(Kubernetes client, string nodeName)
{
    private static readonly string Resource = $"apis/{ApiGroup.Name}/{ApiGroup.Version}/{NetworkTuningNodeState.Plural}";

    public async Task<NetworkTuningNodeState?> GetAsync(CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, $"{Resource}/{Uri.EscapeDataString(nodeName)}", null, HttpCompletionOption.ResponseContentRead, ct)
            .ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await ThrowUnlessSuccessAsync(response, ct).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        return await JsonSerializer.DeserializeAsync(body, AgentJson.Default.NetworkTuningNodeState, ct).ConfigureAwait(false);
    }

    /// <summary>This node's Node object (for its hugepage capacity); needs get on nodes.</summary>
    public Task<V1Node> GetNodeAsync(CancellationToken ct) => client.CoreV1.ReadNodeAsync(nodeName, cancellationToken: ct);

    /// <summary>Watches the object until the server ends the watch or it fails; calls <paramref name="changed"/> on every event.</summary>
    public async Task WatchAsync(Action changed, CancellationToken ct)
    {
        var query = $"?watch=true&timeoutSeconds=300&fieldSelector={Uri.EscapeDataString("metadata.name=" + nodeName)}";
        using var response = await SendAsync(HttpMethod.Get, Resource + query, null, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        await ThrowUnlessSuccessAsync(response, ct).ConfigureAwait(false);
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var lines = new StreamReader(stream, Encoding.UTF8);
        // One JSON object per line: {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. Only the type
        // matters: the loop reads the object afresh.
        while (await lines.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0) continue;
            if (EventType(line) is "ADDED" or "MODIFIED" or "DELETED") changed();
        }
    }

    private static string? EventType(string line)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(line));
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isType = reader.ValueTextEquals("type"u8);
            if (!reader.Read()) return null;
            if (isType) return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            reader.Skip();
        }
        return null;
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
        var content = new StringContent(JsonSerializer.Serialize(new NodeStateStatusPatch(status), AgentJson.Default.NodeStateStatusPatch), Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/merge-patch+json") { CharSet = "utf-8" };
        using var response = await SendAsync(HttpMethod.Patch, $"{Resource}/{Uri.EscapeDataString(nodeName)}/status", content, HttpCompletionOption.ResponseContentRead, ct)
            .ConfigureAwait(false);
        await ThrowUnlessSuccessAsync(response, ct).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, HttpContent? content, HttpCompletionOption completion, CancellationToken ct)
    {
        // HTTP/2 as the generated client asks for it: the watch and every other request share its connection.
        using var request = new HttpRequestMessage(method, new Uri(client.BaseUri, pathAndQuery)) { Content = content, Version = HttpVersion.Version20 };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (client.Credentials is { } credentials) await credentials.ProcessHttpRequestAsync(request, ct).ConfigureAwait(false);
        return await client.HttpClient.SendAsync(request, completion, ct).ConfigureAwait(false);
    }

    /// <summary>A refusal as the generated client reports it (<see cref="HttpOperationException"/> with status and body), which the worker handles.</summary>
    private static async Task ThrowUnlessSuccessAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        // The server's Status message says which field it refused: keep it in the message the worker logs.
        var reason = body.Length > 2048 ? body[..2048] : body;
        throw new HttpOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.AbsolutePath}: {(int)response.StatusCode} {response.StatusCode}: {reason}")
        {
            Response = new HttpResponseMessageWrapper(response, body),
        };
    }
}
