using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.ControllerRuntime;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// What one cluster test needs: its own namespace, Node objects, NetworkTunings and operator hosts, all named after a
/// random id and removed at the end; and helpers that play the node agents by writing NodeState status.
/// </summary>
public sealed class TestBed : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(45);

    private readonly List<OperatorHost> _hosts = [];
    private readonly List<string> _tunings = [];
    private readonly List<string> _nodes = [];
    private readonly ITestOutputHelper _output;
    private readonly ILoggerFactory _loggers;
    private CancellationTokenSource? _agentStop;
    private Task? _agent;

    public TestBed(KubeCluster cluster, ITestOutputHelper output)
    {
        Cluster = cluster;
        _output = output;
        Client = cluster.CreateClient();
        Id = Guid.NewGuid().ToString("N")[..6];
        Namespace = "op-" + Id;
        _loggers = LoggerFactory.Create(b => b.AddProvider(new OutputLoggerProvider(output)).SetMinimumLevel(LogLevel.Information));
    }

    public KubeCluster Cluster { get; }
    public IKubernetes Client { get; }
    public string Id { get; }
    public string Namespace { get; }

    /// <summary>The label every node of this test carries; tunings select on it so tests never see each other's nodes.</summary>
    public (string Key, string Value) TestLabel => ("nettune-test", Id);

    public static async Task<TestBed> StartAsync(KubeCluster cluster, ITestOutputHelper output)
    {
        var bed = new TestBed(cluster, output);
        await bed.Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = bed.Namespace } });
        return bed;
    }

    public OperatorOptions FastOptions(string? identity = null) => new()
    {
        Namespace = Namespace,
        AgentImage = "nettune/agent:test",
        Identity = identity ?? "op-" + Id,
        ResyncPeriod = TimeSpan.FromSeconds(30),
        RevertTimeout = TimeSpan.FromSeconds(30),
        PodDeleteGraceSeconds = 0,
        Informer = new InformerOptions { RetryDelay = TimeSpan.FromMilliseconds(100), MaxRetryDelay = TimeSpan.FromSeconds(1) },
        Queue = new WorkQueueOptions { BaseRetryDelay = TimeSpan.FromMilliseconds(50), MaxRetryDelay = TimeSpan.FromSeconds(2) },
    };

    public async Task<OperatorHost> StartOperatorAsync(OperatorOptions? options = null, IKubernetes? client = null, OperatorMetrics? metrics = null)
    {
        var host = new OperatorHost(client ?? Cluster.CreateClient(), options ?? FastOptions(), _loggers, metrics);
        _hosts.Add(host);
        await host.StartAsync();
        return host;
    }

    public string NodeName(int i) => $"{Id}-node{i}";

    public async Task<List<string>> CreateNodesAsync(int count, params (string Key, string Value)[] labels)
    {
        var names = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var name = NodeName(_nodes.Count + 1);
            var all = labels.Append(TestLabel).ToDictionary(l => l.Key, l => l.Value);
            await Client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = name, Labels = all } });
            // As the node's agent's device plugin registers them: each data-plane pod asks for its NUMA node's resource.
            await SetAllocatableAsync(name, [.. Enumerable.Range(0, 4).Select(n => (NetTune.Api.V1Alpha1.NumaResources.ResourceName(n), "4"))]);
            _nodes.Add(name);
            names.Add(name);
        }
        return names;
    }

    public async Task SetNodeLabelAsync(string node, string key, string? value)
    {
        var patch = JsonSerializer.Serialize(new { metadata = new { labels = new Dictionary<string, string?> { [key] = value } } });
        await Client.CoreV1.PatchNodeAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), node);
    }

    /// <summary>Plays the node's kubelet: reports what the node can allocate (capacity the same).</summary>
    public async Task SetAllocatableAsync(string node, params (string Resource, string Quantity)[] resources)
    {
        var quantities = resources.ToDictionary(r => r.Resource, r => r.Quantity);
        var patch = JsonSerializer.Serialize(new { status = new { allocatable = quantities, capacity = quantities } });
        await Client.CoreV1.PatchNodeStatusAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), node);
    }

    /// <summary>
    /// A pod of another component (CNI, CSI, an exporter) that the scheduler bound to the node, requesting these
    /// resources, in the test's namespace (whose default ServiceAccount it makes first, if the controller-manager has not).
    /// </summary>
    public async Task BindPodAsync(string node, string name, params (string Resource, string Quantity)[] requests)
    {
        try { await Client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "default" } }, Namespace); }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict) { }
        await Client.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new V1PodSpec
            {
                NodeName = node,
                AutomountServiceAccountToken = false,
                Containers = [new V1Container
                {
                    Name = "c", Image = "pause",
                    Resources = new V1ResourceRequirements { Requests = requests.ToDictionary(r => r.Resource, r => new ResourceQuantity(r.Quantity)) },
                }],
            },
        }, Namespace);
    }

    /// <summary>Plays the node's kubelet after a boot: reports the kernel's boot id.</summary>
    public async Task SetBootIdAsync(string node, string bootId)
    {
        var patch = JsonSerializer.Serialize(new { status = new { nodeInfo = new { bootID = bootId } } });
        await Client.CoreV1.PatchNodeStatusAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), node);
    }

    public async Task<bool> HasLabelAsync(string node, string key, string value = "true") =>
        (await Client.CoreV1.ReadNodeAsync(node)).Metadata.Labels?.TryGetValue(key, out var v) == true && v == value;

    public async Task SetUnschedulableAsync(string node, bool unschedulable)
    {
        var patch = JsonSerializer.Serialize(new { spec = new { unschedulable } });
        await Client.CoreV1.PatchNodeAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), node);
    }

    public async Task<List<V1Pod>> DataPlanePodsAsync() =>
        (await Client.CoreV1.ListNamespacedPodAsync(Namespace, labelSelector: "app.kubernetes.io/name=nettune-dataplane")).Items.ToList();

    /// <summary>
    /// Plays the kubelet on a pod: writes its status (the scheduler's binding is left out; the pod keeps its affinity).
    /// Running and ready on 127.0.0.1 by default, so the operator's probe reaches a local server on its admin port.
    /// </summary>
    public async Task SetPodStatusAsync(string pod, string phase = "Running", bool ready = true, string? reason = null, string? message = null, string ip = "127.0.0.1")
    {
        while (true)
        {
            var current = await Client.CoreV1.ReadNamespacedPodAsync(pod, Namespace);
            var now = DateTime.UtcNow;
            current.Status = new V1PodStatus
            {
                Phase = phase,
                Reason = reason,
                Message = message,
                PodIP = phase == "Running" ? ip : null,
                HostIP = phase == "Running" ? ip : null,
                QosClass = current.Status?.QosClass,
                Conditions = phase == "Failed" ? null : [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False", LastTransitionTime = now }],
            };
            try
            {
                await Client.CoreV1.ReplaceNamespacedPodStatusAsync(current, pod, Namespace);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict) { }
        }
    }

    /// <summary>A selector for this test's nodes (and any extra labels).</summary>
    public V1LabelSelector Selector(params (string Key, string Value)[] extra) =>
        new() { MatchLabels = extra.Append(TestLabel).ToDictionary(l => l.Key, l => l.Value) };

    public async Task<NetworkTuning> CreateTuningAsync(string shortName, NetworkTuningSpec spec)
    {
        var name = $"{Id}-{shortName}";
        var body = new NetworkTuning { Metadata = new V1ObjectMeta { Name = name }, Spec = spec };
        var created = await Client.CustomObjects.CreateClusterCustomObjectAsync(body, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        _tunings.Add(name);
        return Parse<NetworkTuning>(created);
    }

    public async Task<NetworkTuning?> GetTuningAsync(string name)
    {
        try
        {
            return Parse<NetworkTuning>(await Client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Changes a tuning's spec (read, change, replace; again on a write conflict).</summary>
    public async Task<NetworkTuning> UpdateTuningAsync(string name, Action<NetworkTuningSpec> change)
    {
        while (true)
        {
            var t = (await GetTuningAsync(name))!;
            change(t.Spec);
            try
            {
                return Parse<NetworkTuning>(await Client.CustomObjects.ReplaceClusterCustomObjectAsync(t, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name));
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict) { }
        }
    }

    public async Task DeleteTuningAsync(string name) =>
        await Client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);

    public async Task<NetworkTuningNodeState?> GetNodeStateAsync(string node)
    {
        try
        {
            return Parse<NetworkTuningNodeState>(await Client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node));
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>The NodeStates of this test's nodes, by node name.</summary>
    public async Task<Dictionary<string, NetworkTuningNodeState>> NodeStatesAsync()
    {
        var list = Parse<NetworkTuningNodeStateList>(await Client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural));
        return list.Items.Where(s => s.Metadata.Name.StartsWith(Id + "-", StringComparison.Ordinal)).ToDictionary(s => s.Metadata.Name);
    }

    /// <summary>
    /// Plays the node's agent once: reports the NodeState's current generation as Applied (or failed, or reverted
    /// when the spec asks for a revert), with an optional topology.
    /// </summary>
    public async Task ReportAsync(string node, string outcome = "Applied", string? message = null, NodeTopology? topology = null, string? bootId = null)
    {
        while (true)
        {
            var state = (await GetNodeStateAsync(node))!;
            state.Status = AgentStatus(state, outcome, message, topology ?? state.Status?.Topology);
            state.Status.BootId = bootId;
            try
            {
                await Client.CustomObjects.ReplaceClusterCustomObjectStatusAsync(state, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict) { }
        }
    }

    public static NodeStateStatus AgentStatus(NetworkTuningNodeState state, string outcome, string? message, NodeTopology? topology)
    {
        var generation = state.Metadata.Generation ?? 0;
        var now = DateTime.UtcNow;
        V1Condition Condition(string type, string status, string reason) =>
            new() { Type = type, Status = status, Reason = reason, Message = message ?? reason, LastTransitionTime = now, ObservedGeneration = generation };
        var conditions = outcome switch
        {
            "Applied" when state.Spec.Revert => [Condition("Reverted", "True", "Reverted"), Condition("Applied", "False", "Reverted")],
            "Applied" when state.Spec.DryRun => [Condition("Applied", "False", "DryRun")],
            "Applied" => [Condition("Applied", "True", "Applied"), Condition("Degraded", "False", "AsExpected")],
            "Failed" => new List<V1Condition> { Condition("Applied", "False", "ApplyFailed"), Condition("Degraded", "True", "ApplyFailed") },
            _ => throw new ArgumentException(outcome),
        };
        return new NodeStateStatus
        {
            ObservedGeneration = generation,
            LastAppliedGeneration = outcome == "Applied" && !state.Spec.Revert && !state.Spec.DryRun ? generation : state.Status?.LastAppliedGeneration,
            Conditions = conditions,
            Topology = topology,
            AgentVersion = "test",
        };
    }

    /// <summary>
    /// Plays every agent of this test's nodes in the background: each NodeState generation gets Applied (or Reverted)
    /// soon after it appears. Nodes in <paramref name="silent"/> never answer.
    /// </summary>
    public void StartAgents(Func<string, NodeTopology?>? topology = null, params string[] silent)
    {
        _agentStop = new CancellationTokenSource();
        var ct = _agentStop.Token;
        _agent = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    foreach (var (node, state) in await NodeStatesAsync())
                    {
                        if (silent.Contains(node) || state.Status?.ObservedGeneration == state.Metadata.Generation) continue;
                        state.Status = AgentStatus(state, "Applied", null, topology?.Invoke(node) ?? state.Status?.Topology);
                        try
                        {
                            await Client.CustomObjects.ReplaceClusterCustomObjectStatusAsync(state, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node, cancellationToken: ct);
                        }
                        catch (HttpOperationException) { }
                    }
                    await Task.Delay(100, ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
                catch (Exception)
                {
                    // The API server may be down on purpose; the agents keep trying like real ones.
                    await Task.Delay(200, CancellationToken.None);
                }
            }
        });
    }

    public async Task StopAgentsAsync()
    {
        if (_agentStop is null) return;
        _agentStop.Cancel();
        await _agent!;
        _agentStop = null;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails with <paramref name="what"/> after the timeout.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T>> probe, Func<T, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Timeout);
        T? last = default;
        Exception? lastError = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await probe();
                if (condition(last)) return last;
            }
            catch (Exception e) when (e is HttpOperationException or HttpRequestException or IOException or TaskCanceledException)
            {
                lastError = e;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"timed out waiting for {what}; last seen: {Describe(last)}{(lastError is null ? "" : $"; last error: {lastError.Message}")}");
    }

    public static Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        EventuallyAsync<bool>(condition, ok => ok, what, timeout);

    private static string Describe(object? value) => value switch
    {
        null => "nothing",
        NetworkTuning t => KubernetesJson.Serialize(t.Status),
        _ => value is IKubernetesObject ? KubernetesJson.Serialize(value) : value.ToString() ?? "",
    };

    public async Task<NetworkTuning> WaitForTuningAsync(string name, Func<NetworkTuning, bool> condition, string what, TimeSpan? timeout = null) =>
        (await EventuallyAsync(() => GetTuningAsync(name), t => t is not null && condition(t), $"{name}: {what}", timeout))!;

    public static V1Condition? Condition(NetworkTuning t, string type) => t.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    public static bool Has(NetworkTuningNodeState? state, string tuning, long generation) =>
        state?.Spec.Sources?.Any(s => s.Name == tuning && s.Generation == generation) == true;

    public async Task<List<Corev1Event>> EventsAsync(string tuning) =>
        (await Client.CoreV1.ListNamespacedEventAsync("default")).Items.Where(e => e.InvolvedObject.Name == tuning).ToList();

    public static T Parse<T>(object body) => body is JsonElement e ? KubernetesJson.Deserialize<T>(e) : KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(body));

    public async ValueTask DisposeAsync()
    {
        await StopAgentsAsync();
        foreach (var host in _hosts) await host.DisposeAsync();
        // Nothing runs the finalizers now: take them off so the objects go at once.
        foreach (var name in _tunings)
        {
            try
            {
                var patch = new V1Patch("{\"metadata\":{\"finalizers\":null}}", V1Patch.PatchType.MergePatch);
                await Client.CustomObjects.PatchClusterCustomObjectAsync(patch, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
                await DeleteTuningAsync(name);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { }
        }
        foreach (var node in _nodes)
        {
            try { await Client.CoreV1.DeleteNodeAsync(node); }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { }
            try { await Client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node); }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { }
        }
        try { await Client.CoreV1.DeleteNamespaceAsync(Namespace); }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { }
        _loggers.Dispose();
    }
}

