using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.ControllerRuntime;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;
using NetTune.Operator.Core.Rollout;

namespace NetTune.Operator;

/// <summary>The caches a reconcile reads.</summary>
public sealed record OperatorCaches(
    Informer<NetworkTuning> Tunings,
    Informer<NetworkTuningNodeState> NodeStates,
    Informer<V1Node> Nodes,
    Informer<V1Pod> Pods,
    Informer<V1DaemonSet> DaemonSets);

/// <summary>
/// Carries out the planner's decisions for one key: "tuning/NAME" (NodeStates, pods, status, finalizer of one
/// NetworkTuning) or "agent" (the shared agent DaemonSet and its ServiceAccount).
/// </summary>
public sealed class OperatorReconciler(IKubernetes client, OperatorCaches caches, OperatorOptions options, OperatorMetrics metrics, ILogger log)
    : IReconciler
{
    public const string AgentKey = "agent";
    public const string TuningPrefix = "tuning/";
    public const string NodePrefix = "node/";

    // Where each data-plane pod runs, by pod uid: the kubelet fixes a container's CPUs for its life, so one answer
    // per pod suffices.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DataPlanePlacement> _placements = new(StringComparer.Ordinal);

    // Nodes whose agent pod was refused or does not run, from the last look at the agent DaemonSet.
    private volatile IReadOnlyDictionary<string, AgentTrouble> _agentTroubles = new Dictionary<string, AgentTrouble>();

    /// <summary>Raised when the nodes without a working agent, or the reasons, changed: every tuning's status may change.</summary>
    public event Action? AgentTroublesChanged;

    private static string Group => ApiGroup.Name;
    private static string Version => ApiGroup.Version;

    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken ct)
    {
        try
        {
            if (key == AgentKey) return await ReconcileAgentAsync(ct).ConfigureAwait(false);
            if (key.StartsWith(TuningPrefix, StringComparison.Ordinal))
                return await ReconcileTuningAsync(key[TuningPrefix.Length..], ct).ConfigureAwait(false);
            if (key.StartsWith(NodePrefix, StringComparison.Ordinal))
                return await ReconcileNodeLabelsAsync(key[NodePrefix.Length..], ct).ConfigureAwait(false);
            return ReconcileResult.Failed($"unknown key {key}");
        }
        catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Conflict)
        {
            log.LogDebug("{Key}: write conflict, reading again: {Body}", key, e.Response.Content);
            return ReconcileResult.Conflict;
        }
        catch (HttpOperationException e)
        {
            return ReconcileResult.Failed($"{e.Response?.StatusCode}: {Short(e.Response?.Content)}");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            return ReconcileResult.Failed(e.Message);
        }
    }

    private async Task<ReconcileResult> ReconcileTuningAsync(string name, CancellationToken ct)
    {
        var tuning = caches.Tunings.Get(name);
        if (tuning is null) return ReconcileResult.Done;

        var uid = tuning.Metadata.Uid;
        var pods = caches.Pods.List().Where(p => p.Metadata.OwnerReferences?.Any(o => o.Uid == uid) == true).ToList();
        var states = new Dictionary<string, NetworkTuningNodeState>(StringComparer.Ordinal);
        foreach (var s in caches.NodeStates.List()) states[s.Metadata.Name] = s;
        var unplaced = await ProbePlacementsAsync(pods, ct).ConfigureAwait(false);
        var snapshot = new ClusterSnapshot(caches.Tunings.List(), caches.Nodes.List(), states, pods, _placements, _agentTroubles);
        var now = DateTime.UtcNow;
        now = new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc); // the API keeps whole seconds
        var settings = options.PlannerSettings;
        var plan = TuningPlanner.Plan(tuning, snapshot, settings, now);
        // Pods to be made are sized beside what the other pods of their node request: read for those nodes only, now
        // (a cluster-wide pod cache would cost every pod's changes), and planned again with it.
        if (plan.PodCreates.Count > 0 && tuning.Spec.DataPlane?.CpusPerSocket is null
            && await OtherPodsCpuAsync(plan.PodCreates.Select(DataPlanePodBuilder.NodeOf).Distinct(StringComparer.Ordinal).ToList(), uid, ct).ConfigureAwait(false) is { Count: > 0 } cpu)
            plan = TuningPlanner.Plan(tuning, snapshot with { OtherPodsCpu = cpu }, settings, now);

        if (plan.AddFinalizer)
        {
            tuning = await PatchFinalizersAsync(tuning, [.. tuning.Metadata.Finalizers ?? [], Names.Finalizer], ct).ConfigureAwait(false);
        }

        if (plan.NodeStateWrites.Count > 0)
        {
            var nodes = caches.Nodes.List().ToDictionary(n => n.Metadata.Name, StringComparer.Ordinal);
            await Parallel.ForEachAsync(plan.NodeStateWrites, new ParallelOptions { MaxDegreeOfParallelism = options.WriteParallelism, CancellationToken = ct },
                async (write, token) => await WriteNodeStateAsync(write, nodes.GetValueOrDefault(write.Node), token).ConfigureAwait(false)).ConfigureAwait(false);
        }
        foreach (var node in plan.NodeStateDeletes)
        {
            await IgnoreNotFound(client.CustomObjects.DeleteClusterCustomObjectAsync(Group, Version, NetworkTuningNodeState.Plural, node, cancellationToken: ct)).ConfigureAwait(false);
            caches.NodeStates.Forget(node);
        }
        // A refused pod write (admission 403, quota, 422) must not stop the reconcile before status and Events say so.
        var podErrors = new List<string>();
        foreach (var pod in plan.PodDeletes)
        {
            try
            {
                await IgnoreNotFound(client.CoreV1.DeleteNamespacedPodAsync(pod.Metadata.Name, pod.Metadata.NamespaceProperty,
                    gracePeriodSeconds: options.PodDeleteGraceSeconds, cancellationToken: ct)).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (IsRefusal(e))
            {
                podErrors.Add($"delete {pod.Metadata.Name}: {Refusal(e)}");
            }
        }
        foreach (var pod in plan.PodCreates)
        {
            try
            {
                caches.Pods.Remember(await client.CoreV1.CreateNamespacedPodAsync(pod, pod.Metadata.NamespaceProperty, cancellationToken: ct).ConfigureAwait(false));
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Conflict)
            {
                // Already there (the old pod of that name may still be terminating): the pod's events bring us back.
            }
            catch (HttpOperationException e) when (IsRefusal(e))
            {
                podErrors.Add($"create {pod.Metadata.Name}: {Refusal(e)}");
            }
        }
        var events = plan.Events;
        if (podErrors.Count > 0 && plan.Status is { } planned)
        {
            var (amended, errorEvents) = TuningPlanner.WithPodErrors(tuning, planned, podErrors, now);
            plan = plan with { Status = amended };
            events = [.. events, .. errorEvents];
        }

        if (plan.Status is { } status && (tuning.Status is null || KubernetesJson.Serialize(status) != KubernetesJson.Serialize(tuning.Status)))
        {
            var body = CloneWithStatus(tuning, status);
            var written = await client.CustomObjects.ReplaceClusterCustomObjectStatusAsync(body, Group, Version, NetworkTuning.Plural, name, cancellationToken: ct)
                .ConfigureAwait(false);
            tuning = Parse<NetworkTuning>(written);
            caches.Tunings.Remember(tuning);
        }

        // Events after the status that records them is stored: a retry after a lost race would repeat them otherwise.
        foreach (var e in events) await EmitAsync(tuning, e, ct).ConfigureAwait(false);

        if (plan.RemoveFinalizer)
        {
            await PatchFinalizersAsync(tuning, (tuning.Metadata.Finalizers ?? []).Where(f => f != Names.Finalizer).ToList(), ct).ConfigureAwait(false);
            log.LogInformation("{Tuning}: finalizer removed", name);
        }

        if (plan.Rollout is { } rollout)
        {
            metrics.NodesByPhase.WithLabels(name, "applied").Set(rollout.Applied);
            metrics.NodesByPhase.WithLabels(name, "failed").Set(rollout.Failed);
            metrics.NodesByPhase.WithLabels(name, "pending").Set(rollout.Pending);
            metrics.RolloutProgress.WithLabels(name).Set(rollout.Nodes.Count == 0 ? 1 : (double)rollout.Applied / rollout.Nodes.Count);
            if (rollout.Admit.Count > 0) metrics.RolloutBatches.WithLabels(name).Inc();
        }
        if (tuning.Metadata.DeletionTimestamp is not null && plan.RemoveFinalizer)
        {
            foreach (var phase in new[] { "applied", "failed", "pending" }) metrics.NodesByPhase.RemoveLabelled(name, phase);
            metrics.RolloutProgress.RemoveLabelled(name);
        }
        if (podErrors.Count > 0) return ReconcileResult.Failed(string.Join("; ", podErrors));
        var requeue = plan.RequeueAfter;
        if (unplaced && (requeue is null || requeue > options.ProbeRetry)) requeue = options.ProbeRetry;
        return requeue is { } after ? ReconcileResult.After(after) : ReconcileResult.Done;
    }

    /// <summary>
    /// What the pods bound to each node request, less the tuning's own, from a list of the node's pods. A node whose pods
    /// cannot be listed is left out.
    /// </summary>
    private async Task<Dictionary<string, NodeCpuUse>> OtherPodsCpuAsync(IReadOnlyList<string> nodes, string? tuningUid, CancellationToken ct)
    {
        var result = new System.Collections.Concurrent.ConcurrentDictionary<string, NodeCpuUse>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(nodes.Where(n => n.Length > 0), new ParallelOptions { MaxDegreeOfParallelism = options.WriteParallelism, CancellationToken = ct },
            async (node, token) =>
            {
                try
                {
                    // resourceVersion 0: from the API server's watch cache, as the kubelet lists its pods, not a quorum read of etcd.
                    var pods = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={node}", resourceVersion: "0", cancellationToken: token)
                        .ConfigureAwait(false);
                    result[node] = NodeCpuUse.Of(pods.Items, tuningUid);
                }
                catch (HttpOperationException e)
                {
                    log.LogWarning("cannot list the pods of node {Node} ({Status}): its data-plane pods are sized without the other pods' CPU requests", node, (int?)e.Response?.StatusCode);
                }
            }).ConfigureAwait(false);
        return new Dictionary<string, NodeCpuUse>(result, StringComparer.Ordinal);
    }

    /// <summary>4xx answers other than a conflict: the server's word on the pod, not a transient failure.</summary>
    private static bool IsRefusal(HttpOperationException e) =>
        e.Response?.StatusCode is { } code && (int)code >= 400 && (int)code < 500 && code != HttpStatusCode.Conflict && code != HttpStatusCode.TooManyRequests;

    private static string Refusal(HttpOperationException e)
    {
        var message = Short(e.Response?.Content);
        try
        {
            if (e.Response?.Content is { Length: > 0 } body && KubernetesJson.Deserialize<V1Status>(body) is { Message: { Length: > 0 } m }) message = m;
        }
        catch (JsonException) { }
        return $"{(int)e.Response!.StatusCode} {e.Response.StatusCode}: {message}";
    }

    /// <summary>
    /// Asks every ready data-plane pod not asked yet where it runs; forgets pods that are gone. True when a ready pod
    /// could not tell yet (so the tuning is looked at again soon).
    /// </summary>
    private async Task<bool> ProbePlacementsAsync(IReadOnlyList<V1Pod> pods, CancellationToken ct)
    {
        if (_placements.Count + _probeFailures.Count > 0)
        {
            var known = caches.Pods.List().Select(p => p.Metadata.Uid).Where(u => u is not null).ToHashSet(StringComparer.Ordinal);
            foreach (var uid in _placements.Keys) if (!known.Contains(uid)) _placements.TryRemove(uid, out _);
            foreach (var uid in _probeFailures.Keys) if (!known.Contains(uid)) _probeFailures.TryRemove(uid, out _);
        }
        // A pod that never tells (a data plane without placement in /readyz) is asked a few times, then left alone.
        var ask = pods.Where(p => p.Metadata.Uid is { } uid && !_placements.ContainsKey(uid) && _probeFailures.GetValueOrDefault(uid) < MaxProbeAttempts
                                  && p.Metadata.DeletionTimestamp is null
                                  && p.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true).ToList();
        var missing = 0;
        await Parallel.ForEachAsync(ask, new ParallelOptions { MaxDegreeOfParallelism = options.WriteParallelism, CancellationToken = ct }, async (pod, token) =>
        {
            if (await options.DataPlaneProbe.ReadAsync(pod, token).ConfigureAwait(false) is { } placement)
            {
                _placements[pod.Metadata.Uid] = placement;
                return;
            }
            if (_probeFailures.AddOrUpdate(pod.Metadata.Uid, 1, (_, n) => n + 1) < MaxProbeAttempts) Interlocked.Increment(ref missing);
            else log.LogWarning("data-plane pod {Pod} did not report where it runs after {Attempts} attempts; its CPUs stay unknown", pod.Metadata.Name, MaxProbeAttempts);
        }).ConfigureAwait(false);
        return missing > 0;
    }

    private const int MaxProbeAttempts = 5;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _probeFailures = new(StringComparer.Ordinal);

    /// <summary>
    /// The operator's two labels on one node, in one patch. The agent label goes on a node that needs an agent and off
    /// only when the node has nothing left to revert, so the DaemonSet controller never removes an agent while its node
    /// still holds a tuning. The tuned label follows the NodeState's status (<see cref="TunedLabel"/>): the agents
    /// cannot write Nodes.
    /// </summary>
    private async Task<ReconcileResult> ReconcileNodeLabelsAsync(string name, CancellationToken ct)
    {
        var node = caches.Nodes.Get(name);
        if (node is null || node.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done;
        var state = caches.NodeStates.Get(name);
        var served = AgentDaemonSetBuilder.ServedTunings(caches.Tunings.List());
        var changes = new Dictionary<string, string?>();
        var needsAgent = AgentPlacement.NeedsAgent(node, served, state);
        if (needsAgent != AgentPlacement.HasLabel(node)) changes[Names.AgentNodeLabel] = needsAgent ? AgentPlacement.LabelValue : null;
        var tuned = TunedLabel.HasLabel(node);
        var tunedNow = TunedLabel.Desired(node, state, tuned);
        if (tunedNow != tuned) changes[Names.NodeTunedLabel] = tunedNow ? NodeLabels.TunedValue : null;
        if (changes.Count > 0) await SetLabelsAsync(node, changes, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private Task SetAgentLabelAsync(V1Node node, bool on, CancellationToken ct) =>
        SetLabelsAsync(node, new Dictionary<string, string?> { [Names.AgentNodeLabel] = on ? AgentPlacement.LabelValue : null }, ct);

    /// <summary>Sets (or with null removes) the given labels with a merge patch that touches nothing else.</summary>
    private async Task SetLabelsAsync(V1Node node, Dictionary<string, string?> labels, CancellationToken ct)
    {
        var patch = JsonSerializer.Serialize(new { metadata = new { labels } });
        try
        {
            var written = await client.CoreV1.PatchNodeAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), node.Metadata.Name, cancellationToken: ct).ConfigureAwait(false);
            caches.Nodes.Remember(OperatorHost.Slim(written));
            log.LogInformation("node {Node}: {Labels}", node.Metadata.Name,
                string.Join(", ", labels.Select(kv => kv.Value is null ? $"label {kv.Key} removed" : $"label {kv.Key}={kv.Value} set")));
        }
        catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.NotFound) { }
    }

    private async Task WriteNodeStateAsync(NodeStateWrite write, V1Node? node, CancellationToken ct)
    {
        write = write with { Spec = await WithHugepagesBudgetAsync(write.Spec, node, ct).ConfigureAwait(false) };
        object written;
        if (write.Existing is null)
        {
            var body = new NetworkTuningNodeState
            {
                Metadata = new V1ObjectMeta
                {
                    Name = write.Node,
                    Labels = new Dictionary<string, string> { [Names.ManagedBy] = Names.ManagedByValue },
                    Annotations = write.RevertedFor is null ? null : new Dictionary<string, string> { [TuningPlanner.RevertedForAnnotation] = write.RevertedFor },
                    // The garbage collector removes the NodeState with its Node.
                    OwnerReferences = node?.Metadata.Uid is { } uid
                        ? [new V1OwnerReference { ApiVersion = "v1", Kind = "Node", Name = write.Node, Uid = uid }]
                        : null,
                },
                Spec = write.Spec,
            };
            try
            {
                written = await client.CustomObjects.CreateClusterCustomObjectAsync(body, Group, Version, NetworkTuningNodeState.Plural, cancellationToken: ct)
                    .ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Conflict)
            {
                // Created meanwhile by another reconcile: our cache is behind; the watch event brings us back.
                throw new HttpOperationException("NodeState exists already") { Response = e.Response, Request = e.Request };
            }
        }
        else
        {
            var existing = write.Existing;
            var annotations = new Dictionary<string, string>(existing.Metadata.Annotations ?? new Dictionary<string, string>());
            var names = (annotations.GetValueOrDefault(TuningPlanner.RevertedForAnnotation) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
            if (write.RevertedFor is { } tuning) names.Add(tuning);
            // A tuning the node gets (again: deleted and made anew under its name) is not being reverted there.
            names.ExceptWith((write.Spec.Sources ?? []).Where(source => source.Name != write.RevertedFor).Select(source => source.Name));
            if (names.Count > 0) annotations[TuningPlanner.RevertedForAnnotation] = string.Join(',', names.Order(StringComparer.Ordinal));
            else annotations.Remove(TuningPlanner.RevertedForAnnotation);
            if (write.RevertStarted is { } started)
                annotations[TuningPlanner.RevertStartedAnnotation] = started.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
            var body = new NetworkTuningNodeState
            {
                Metadata = new V1ObjectMeta
                {
                    Name = existing.Metadata.Name,
                    ResourceVersion = existing.Metadata.ResourceVersion, // optimistic concurrency: 409 if someone wrote first
                    Labels = existing.Metadata.Labels,
                    Annotations = annotations.Count == 0 ? null : annotations,
                    OwnerReferences = existing.Metadata.OwnerReferences,
                    Finalizers = existing.Metadata.Finalizers,
                },
                Spec = write.Spec,
            };
            written = await client.CustomObjects.ReplaceClusterCustomObjectAsync(body, Group, Version, NetworkTuningNodeState.Plural, write.Node, cancellationToken: ct)
                .ConfigureAwait(false);
        }
        caches.NodeStates.Remember(Parse<NetworkTuningNodeState>(written));
    }

    /// <summary>
    /// A spec whose hugepages changed (the merge carries the budget over otherwise) gets the node's budget, from its
    /// allocatable resources and the memory its pods request (a list of the node's pods, at this write only). Without
    /// the pods (the operator may not list them) it goes without one: the agent then caps by maxNodeMemoryPercent only.
    /// </summary>
    private async Task<NodeStateSpec> WithHugepagesBudgetAsync(NodeStateSpec spec, V1Node? node, CancellationToken ct)
    {
        if (spec.Revert || spec.Hugepages is not { Count: > 0 } || spec.HugepagesBudget is not null || node is null) return spec;
        try
        {
            var pods = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={node.Metadata.Name}", cancellationToken: ct).ConfigureAwait(false);
            spec.HugepagesBudget = HugepagesBudgets.Of(node, pods.Items);
        }
        catch (HttpOperationException e)
        {
            log.LogWarning("cannot list the pods of node {Node} ({Status}): its NodeState gets no hugepages budget", node.Metadata.Name, (int?)e.Response?.StatusCode);
        }
        return spec;
    }

    private async Task<NetworkTuning> PatchFinalizersAsync(NetworkTuning tuning, List<string> finalizers, CancellationToken ct)
    {
        var patch = JsonSerializer.Serialize(new { metadata = new { finalizers, resourceVersion = tuning.Metadata.ResourceVersion } });
        var written = await client.CustomObjects.PatchClusterCustomObjectAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch),
            Group, Version, NetworkTuning.Plural, tuning.Metadata.Name, cancellationToken: ct).ConfigureAwait(false);
        var updated = Parse<NetworkTuning>(written);
        caches.Tunings.Remember(updated);
        return updated;
    }

    private static NetworkTuning CloneWithStatus(NetworkTuning tuning, NetworkTuningStatus status) => new()
    {
        Metadata = tuning.Metadata,
        Spec = tuning.Spec,
        Status = status,
    };

    private async Task<ReconcileResult> ReconcileAgentAsync(CancellationToken ct)
    {
        var key = options.NodeComponentsNamespace + "/" + Names.AgentDaemonSet;
        var existing = caches.DaemonSets.Get(key);
        var tunings = AgentDaemonSetBuilder.ServedTunings(caches.Tunings.List());
        // A create trusts only the API server's word on which cached tunings still exist: the cache may still hold the
        // tuning whose finalizer just went, and the agents would come back for nothing.
        if (existing is null && tunings.Count > 0) tunings = await ConfirmServedTuningsAsync(tunings, ct).ConfigureAwait(false);
        // A node not reverted yet keeps its agent after its tunings are gone (one that timed out waiting for an agent
        // that was down): the agent comes back and reverts it.
        var needing = caches.Nodes.List().Where(n => AgentPlacement.NeedsAgent(n, tunings, caches.NodeStates.Get(n.Metadata.Name))).ToList();
        if (tunings.Count == 0 && needing.Count == 0)
        {
            // Nothing to serve and nothing to revert: no DaemonSet either, so no label has anything to place.
            await Parallel.ForEachAsync(caches.Nodes.List().Where(AgentPlacement.HasLabel).ToList(),
                new ParallelOptions { MaxDegreeOfParallelism = options.WriteParallelism, CancellationToken = ct },
                async (node, token) => await SetAgentLabelAsync(node, on: false, token).ConfigureAwait(false)).ConfigureAwait(false);
            SetAgentTroubles(new Dictionary<string, AgentTrouble>());
            if (existing is not null)
            {
                await IgnoreNotFound(client.AppsV1.DeleteNamespacedDaemonSetAsync(Names.AgentDaemonSet, options.NodeComponentsNamespace, cancellationToken: ct)).ConfigureAwait(false);
                await IgnoreNotFound(client.CoreV1.DeleteNamespacedServiceAccountAsync(Names.AgentServiceAccount, options.NodeComponentsNamespace, cancellationToken: ct)).ConfigureAwait(false);
                caches.DaemonSets.Forget(key);
                log.LogInformation("no tuning left and every node reverted: deleted DaemonSet {Namespace}/{Name}", options.NodeComponentsNamespace, Names.AgentDaemonSet);
            }
            return ReconcileResult.Done;
        }

        // Label first: the DaemonSet runs on the label, and a node that needs an agent must never be without one.
        var unlabelled = needing.Where(n => !AgentPlacement.HasLabel(n)).ToList();
        await Parallel.ForEachAsync(unlabelled, new ParallelOptions { MaxDegreeOfParallelism = options.WriteParallelism, CancellationToken = ct },
            async (node, token) => await SetAgentLabelAsync(node, on: true, token).ConfigureAwait(false)).ConfigureAwait(false);

        var agent = options.AgentOptions;
        var desired = AgentDaemonSetBuilder.Build(agent);
        if (existing is null || !_accountWritten) await WriteServiceAccountAsync(agent, ct).ConfigureAwait(false);

        if (existing is null)
        {
            try
            {
                caches.DaemonSets.Remember(await client.AppsV1.CreateNamespacedDaemonSetAsync(desired, options.NodeComponentsNamespace, cancellationToken: ct).ConfigureAwait(false));
                log.LogInformation("created DaemonSet {Namespace}/{Name}", options.NodeComponentsNamespace, desired.Metadata.Name);
            }
            catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Conflict)
            {
                return ReconcileResult.Conflict; // exists; the cache has not seen it yet
            }
            return ReconcileResult.Done;
        }
        var sameSpec = existing.Metadata.Annotations?.TryGetValue(Names.SpecHashAnnotation, out var hash) == true
                       && hash == desired.Metadata.Annotations[Names.SpecHashAnnotation];
        if (!sameSpec || !SameOwners(existing.Metadata.OwnerReferences, desired.Metadata.OwnerReferences))
        {
            desired.Metadata.ResourceVersion = existing.Metadata.ResourceVersion;
            caches.DaemonSets.Remember(await client.AppsV1.ReplaceNamespacedDaemonSetAsync(desired, desired.Metadata.Name, options.NodeComponentsNamespace, cancellationToken: ct)
                .ConfigureAwait(false));
            log.LogInformation("updated DaemonSet {Namespace}/{Name}", options.NodeComponentsNamespace, desired.Metadata.Name);
        }
        return await JudgeAgentsAsync(existing, ct).ConfigureAwait(false);
    }

    // The agents' ServiceAccount is written once per term and with every new DaemonSet, not on each agent reconcile (a
    // rollout runs one every few nodes: each was a create refused with 409 and a read). It goes missing only by hand;
    // the DaemonSet controller then fails to create agent pods, and a FailedCreate has it written again.
    private volatile bool _accountWritten;

    private async Task WriteServiceAccountAsync(AgentOptions agent, CancellationToken ct)
    {
        var account = AgentDaemonSetBuilder.BuildServiceAccount(agent);
        try
        {
            await client.CoreV1.CreateNamespacedServiceAccountAsync(account, options.NodeComponentsNamespace, cancellationToken: ct).ConfigureAwait(false);
            log.LogInformation("created ServiceAccount {Namespace}/{Name}", options.NodeComponentsNamespace, account.Metadata.Name);
        }
        catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.Conflict)
        {
            var current = await client.CoreV1.ReadNamespacedServiceAccountAsync(account.Metadata.Name, options.NodeComponentsNamespace, cancellationToken: ct).ConfigureAwait(false);
            if (!SameOwners(current.Metadata.OwnerReferences, account.Metadata.OwnerReferences))
            {
                current.Metadata.OwnerReferences = account.Metadata.OwnerReferences;
                await client.CoreV1.ReplaceNamespacedServiceAccountAsync(current, current.Metadata.Name, options.NodeComponentsNamespace, cancellationToken: ct).ConfigureAwait(false);
            }
        }
        _accountWritten = true;
    }

    /// <summary>
    /// Reads the agent pods and the DaemonSet's FailedCreate Events when its status says a node lacks a ready agent,
    /// and keeps the nodes without a working agent for the tunings' AgentsAvailable condition.
    /// </summary>
    private async Task<ReconcileResult> JudgeAgentsAsync(V1DaemonSet daemonSet, CancellationToken ct)
    {
        if (!AgentHealth.NeedsLook(daemonSet, caches.Nodes.List()))
        {
            SetAgentTroubles(new Dictionary<string, AgentTrouble>());
            return ReconcileResult.Done;
        }
        var ns = daemonSet.Metadata.NamespaceProperty ?? options.NodeComponentsNamespace;
        var pods = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: $"{Names.AppName}={Names.AgentApp}", cancellationToken: ct).ConfigureAwait(false);
        var events = await client.CoreV1.ListNamespacedEventAsync(ns,
            fieldSelector: $"involvedObject.kind=DaemonSet,involvedObject.name={daemonSet.Metadata.Name},reason={AgentHealth.FailedCreate}", cancellationToken: ct).ConfigureAwait(false);
        var troubles = AgentHealth.Judge(daemonSet, caches.Nodes.List(), pods.Items, events.Items);
        // A missing ServiceAccount is one reason the controller cannot create an agent pod: write it at the next look.
        if (troubles.Values.Any(t => t.Reason == ConditionReasons.AgentPodCreateFailed)) _accountWritten = false;
        SetAgentTroubles(troubles);
        return ReconcileResult.After(options.AgentHealthRecheck);
    }

    private void SetAgentTroubles(IReadOnlyDictionary<string, AgentTrouble> troubles)
    {
        var before = _agentTroubles;
        if (before.Count == troubles.Count && troubles.All(kv => before.TryGetValue(kv.Key, out var b) && b == kv.Value)) return;
        _agentTroubles = troubles;
        foreach (var (node, trouble) in troubles.Where(kv => !before.ContainsKey(kv.Key)).Take(5))
            log.LogWarning("node {Node} runs no agent: {Reason}: {Message}", node, trouble.Reason, trouble.Message);
        AgentTroublesChanged?.Invoke();
    }

    /// <summary>The cached tunings that the API server still has and that are still served, in their current version.</summary>
    private async Task<IReadOnlyList<NetworkTuning>> ConfirmServedTuningsAsync(IReadOnlyList<NetworkTuning> cached, CancellationToken ct)
    {
        var list = Parse<NetworkTuningList>(await client.CustomObjects.ListClusterCustomObjectAsync(Group, Version, NetworkTuning.Plural, cancellationToken: ct)
            .ConfigureAwait(false));
        var uids = cached.Select(t => t.Metadata.Uid).ToHashSet(StringComparer.Ordinal);
        var confirmed = AgentDaemonSetBuilder.ServedTunings(list.Items.Where(t => uids.Contains(t.Metadata.Uid)));
        if (confirmed.Count < cached.Count)
            log.LogDebug("agent DaemonSet: {Gone} cached tunings are gone or finalized on the API server", cached.Count - confirmed.Count);
        return confirmed;
    }

    private static bool SameOwners(IList<V1OwnerReference>? a, IList<V1OwnerReference>? b) =>
        (a ?? []).Select(o => o.Uid).Order().SequenceEqual((b ?? []).Select(o => o.Uid).Order());

    private async Task EmitAsync(NetworkTuning tuning, PlannedEvent e, CancellationToken ct)
    {
        var now = DateTime.UtcNow;
        var ev = new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = Names.ObjectName($"{tuning.Metadata.Name}.{now.Ticks:x}"), NamespaceProperty = options.EventNamespace },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = ApiGroup.GroupVersion,
                Kind = NetworkTuning.KindName,
                Name = tuning.Metadata.Name,
                Uid = tuning.Metadata.Uid,
                ResourceVersion = tuning.Metadata.ResourceVersion,
            },
            Type = e.Type,
            Reason = e.Reason,
            Message = e.Message,
            Source = new V1EventSource { Component = Names.ManagedByValue },
            ReportingComponent = Names.ManagedByValue,
            ReportingInstance = options.Identity,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        log.LogInformation("{Tuning}: {Type} {Reason}: {Message}", tuning.Metadata.Name, e.Type, e.Reason, e.Message);
        try
        {
            await client.CoreV1.CreateNamespacedEventAsync(ev, options.EventNamespace, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (HttpOperationException ex)
        {
            // Events are for people; losing one must not stop a reconcile.
            log.LogWarning("could not record event {Reason}: {Status}", e.Reason, ex.Response?.StatusCode);
        }
    }

    private static async Task IgnoreNotFound(Task task)
    {
        try { await task.ConfigureAwait(false); }
        catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.NotFound) { }
    }

    private static async Task IgnoreNotFound<T>(Task<T> task)
    {
        try { await task.ConfigureAwait(false); }
        catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.NotFound) { }
    }

    private static T Parse<T>(object body) => body switch
    {
        T typed => typed,
        JsonElement element => KubernetesJson.Deserialize<T>(element),
        _ => KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(body)),
    };

    private static string Short(string? text) => text is null ? "" : text.Length <= 300 ? text : text[..300];
}
