using k8s.Models;
using NetTune.Api.Validation;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Merge;
using NetTune.Operator.Core.Rollout;
using NetTune.Operator.Core.Selection;
using NetTune.Operator.Core.Status;

namespace NetTune.Operator.Core.Planning;

/// <param name="RevertTimeout">How long a deleted NetworkTuning waits for its nodes to report Reverted.</param>
public sealed record PlannerSettings(DataPlaneOptions DataPlane, TimeSpan RevertTimeout)
{
    /// <summary>The wait before a failed data-plane pod is made again the first time; it doubles with each failure.</summary>
    public TimeSpan PodBackoff { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait before a failed data-plane pod is made again.</summary>
    public TimeSpan PodBackoffMax { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How soon a tuning whose pod found no CPU left beside the node's other pods is looked at again: those pods going
    /// away changes nothing the operator watches.
    /// </summary>
    public TimeSpan CpuRecheck { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>What the reconciler reads from its caches for one NetworkTuning.</summary>
/// <param name="Tunings">Every NetworkTuning, the reconciled one included.</param>
/// <param name="NodeStates">NodeStates by node name.</param>
/// <param name="Pods">The data-plane pods of the reconciled tuning.</param>
/// <param name="Placements">Where those pods run, by pod uid, as they reported it (pods not asked yet are absent).</param>
/// <param name="AgentTroubles">Nodes whose agent pod was refused or does not run, by node name (<see cref="AgentHealth"/>).</param>
/// <param name="OtherPodsCpu">
/// What the other pods of a node request, by node name, for the nodes where the tuning's pods are to be made (read
/// then, not cached); a node absent here counts the agent's request only.
/// </param>
public sealed record ClusterSnapshot(
    IReadOnlyList<NetworkTuning> Tunings,
    IReadOnlyList<V1Node> Nodes,
    IReadOnlyDictionary<string, NetworkTuningNodeState> NodeStates,
    IReadOnlyList<V1Pod> Pods,
    IReadOnlyDictionary<string, DataPlanePlacement>? PodPlacements = null,
    IReadOnlyDictionary<string, AgentTrouble>? AgentTroubles = null,
    IReadOnlyDictionary<string, NodeCpuUse>? OtherPodsCpu = null)
{
    private static readonly Dictionary<string, DataPlanePlacement> None = [];
    private static readonly Dictionary<string, AgentTrouble> NoTrouble = [];
    private static readonly Dictionary<string, NodeCpuUse> NoCpu = [];

    public IReadOnlyDictionary<string, NodeCpuUse> CpuOfOtherPods => OtherPodsCpu ?? NoCpu;

    public IReadOnlyDictionary<string, DataPlanePlacement> Placements => PodPlacements ?? None;

    public IReadOnlyDictionary<string, AgentTrouble> Agents => AgentTroubles ?? NoTrouble;
}

/// <param name="Existing">The NodeState as read, for its resourceVersion; null to create one.</param>
/// <param name="RevertedFor">The deleted NetworkTuning this write takes off the node, recorded on the NodeState so the delete can wait for the node's answer.</param>
/// <param name="RevertStarted">When set, recorded as <see cref="TuningPlanner.RevertStartedAnnotation"/>.</param>
public sealed record NodeStateWrite(string Node, NodeStateSpec Spec, NetworkTuningNodeState? Existing, string? RevertedFor = null, DateTime? RevertStarted = null);

public sealed record PlannedEvent(string Type, string Reason, string Message)
{
    public static PlannedEvent Normal(string reason, string message) => new("Normal", reason, message);
    public static PlannedEvent Warning(string reason, string message) => new("Warning", reason, message);
}

/// <summary>Everything the reconciler should do for one NetworkTuning, in order: finalizer, NodeStates, pods, status.</summary>
public sealed record TuningPlan
{
    public bool AddFinalizer { get; init; }
    public bool RemoveFinalizer { get; init; }
    public IReadOnlyList<NodeStateWrite> NodeStateWrites { get; init; } = [];
    public IReadOnlyList<string> NodeStateDeletes { get; init; } = [];
    public IReadOnlyList<V1Pod> PodCreates { get; init; } = [];
    public IReadOnlyList<V1Pod> PodDeletes { get; init; } = [];
    public NetworkTuningStatus? Status { get; init; }
    public IReadOnlyList<PlannedEvent> Events { get; init; } = [];
    public RolloutPlan? Rollout { get; init; }
    public TimeSpan? RequeueAfter { get; init; }
}

/// <summary>
/// The reconcile decision for one NetworkTuning, as a pure function of what the caches hold and the time: no I/O.
/// </summary>
public static class TuningPlanner
{
    public static TuningPlan Plan(NetworkTuning tuning, ClusterSnapshot snapshot, PlannerSettings settings, DateTime now)
    {
        if (tuning.Metadata.DeletionTimestamp is not null)
            return PlanDeletion(tuning, snapshot, now, settings);

        var name = tuning.Metadata.Name;
        var generation = tuning.Metadata.Generation ?? 0;
        var previous = tuning.Status;
        var addFinalizer = !(tuning.Metadata.Finalizers?.Contains(Names.Finalizer) ?? false);
        var nodesByName = snapshot.Nodes.ToDictionary(n => n.Metadata.Name, StringComparer.Ordinal);

        var errors = Validate(tuning);
        if (errors.Count > 0)
        {
            // The nodes keep what they had: an invalid spec is never rolled out, nor is the old one taken away.
            var message = string.Join("; ", errors);
            var invalid = new ConditionList(previous?.Conditions, generation, now)
                .Set(ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.InvalidSpec, message)
                .Set(ConditionTypes.Progressing, ConditionStatus.False, ConditionReasons.InvalidSpec, "the spec is invalid; nothing is rolled out")
                .Set(ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.InvalidSpec, message)
                .Set(ConditionTypes.Conflict, ConditionStatus.False, ConditionReasons.NoConflict, "no equal-priority NetworkTuning sets a knob differently");
            var events = ConditionBecame(previous, ConditionTypes.Degraded, ConditionReasons.InvalidSpec)
                ? new[] { PlannedEvent.Warning(ConditionReasons.InvalidSpec, message) } : [];
            return new TuningPlan
            {
                AddFinalizer = addFinalizer,
                Status = new NetworkTuningStatus
                {
                    ObservedGeneration = generation,
                    Conditions = invalid.ToList(),
                    MatchedNodes = previous?.MatchedNodes ?? 0,
                    AppliedNodes = previous?.AppliedNodes ?? 0,
                    FailedNodes = previous?.FailedNodes ?? 0,
                    PendingNodes = previous?.PendingNodes ?? 0,
                    DataPlane = previous?.DataPlane,
                },
                Events = events,
            };
        }

        var live = snapshot.Tunings.Where(t => t.Metadata.DeletionTimestamp is null).ToList();
        var matched = snapshot.Nodes.Where(n => NodeSelection.Selects(tuning.Spec, n))
            .Select(n => n.Metadata.Name).Order(StringComparer.Ordinal).ToList();
        var matchedSet = matched.ToHashSet(StringComparer.Ordinal);
        var rollout = RolloutPlanner.Plan(name, generation, tuning.Spec.Rollout, matched, snapshot.NodeStates);

        var writes = new List<NodeStateWrite>();
        var deletes = new List<string>();
        var podDeletes = new List<V1Pod>();
        var podCreates = new List<V1Pod>();

        foreach (var node in rollout.Admit)
        {
            snapshot.NodeStates.TryGetValue(node, out var existing);
            var merged = NodeSpecMerger.Merge(node, Contributions(nodesByName[node], existing, live, admitted: name), existing?.Spec);
            if (!NodeSpecMerger.SameSpec(merged.Spec, existing?.Spec)) writes.Add(new NodeStateWrite(node, merged.Spec, existing));
        }

        // Nodes that left the selector (or whose Node is gone) lose this tuning; its pods go first.
        var podsByNode = snapshot.Pods.GroupBy(DataPlanePodBuilder.NodeOf).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var leaving = new List<string>();
        foreach (var (node, state) in snapshot.NodeStates.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (matchedSet.Contains(node) || state.Spec.Sources?.Any(s => s.Name == name) != true) continue;
            if (!nodesByName.TryGetValue(node, out var nodeObject))
            {
                deletes.Add(node);
                continue;
            }
            leaving.Add(node);
            if (podsByNode.TryGetValue(node, out var pods) && pods.Count > 0) continue; // write once the pods are gone
            var merged = NodeSpecMerger.Merge(node, Contributions(nodeObject, state, live, admitted: null), state.Spec);
            if (!NodeSpecMerger.SameSpec(merged.Spec, state.Spec)) writes.Add(new NodeStateWrite(node, merged.Spec, state));
        }

        // A node where an older tuning's data plane holds one of our ports gets no pod of ours (and loses any it has).
        var portConflicts = new List<string>();
        foreach (var node in matched)
        {
            snapshot.NodeStates.TryGetValue(node, out var state);
            if (DataPlanePorts.Conflict(tuning, nodesByName[node], state?.Status?.Topology, snapshot.Tunings) is { } clash)
                portConflicts.Add($"node {node}: port {clash.Port} is NetworkTuning {clash.Other}'s (older)");
        }
        var serving = portConflicts.Count == 0 ? rollout
            : rollout with { Nodes = rollout.Nodes.Where(n => !portConflicts.Any(c => c.StartsWith($"node {n.Node}:", StringComparison.Ordinal))).ToList() };
        var servingSet = serving.Nodes.Select(n => n.Node).ToHashSet(StringComparer.Ordinal);
        var dataPlane = DataPlanePlanner.Plan(tuning, serving, servingSet, snapshot, settings, now, podCreates, podDeletes);
        if (portConflicts.Count > 0)
        {
            var message = $"{portConflicts.Count} nodes run no data plane of this tuning: {string.Join("; ", portConflicts.Take(5))}{(portConflicts.Count > 5 ? "; ..." : "")}";
            dataPlane = dataPlane with
            {
                Condition = new PlannedCondition(ConditionStatus.False, ConditionReasons.PortConflict, message),
                Events = ConditionList.Find(previous?.Conditions, ConditionTypes.DataPlaneAvailable) is { Reason: ConditionReasons.PortConflict } before && before.Message == message
                    ? dataPlane.Events : [.. dataPlane.Events, PlannedEvent.Warning(ConditionReasons.PortConflict, message)],
            };
        }

        var conflicts = ConflictDetector.Find(tuning, live, snapshot.Nodes);
        var status = BuildStatus(tuning, rollout, conflicts, leaving, snapshot, dataPlane, now);
        var plannedEvents = Events(tuning, previous, status, rollout);
        plannedEvents.AddRange(dataPlane.Events);
        return new TuningPlan
        {
            AddFinalizer = addFinalizer,
            NodeStateWrites = writes,
            NodeStateDeletes = deletes,
            PodCreates = podCreates,
            PodDeletes = podDeletes,
            Status = status,
            Events = plannedEvents,
            Rollout = rollout,
            RequeueAfter = dataPlane.RequeueAfter,
        };
    }

    /// <summary>
    /// The planned status amended by the API server's refusals of pod writes (admission 403, quota, 422): they go into
    /// DataPlaneAvailable and Ready with the server's message, and a Warning Event when they are new.
    /// </summary>
    public static (NetworkTuningStatus Status, IReadOnlyList<PlannedEvent> Events) WithPodErrors(NetworkTuning tuning, NetworkTuningStatus status,
        IReadOnlyList<string> errors, DateTime now)
    {
        if (errors.Count == 0) return (status, []);
        var message = "the API server refused data-plane pod writes: " + string.Join("; ", errors.Distinct().Take(5))
                      + (errors.Distinct().Count() > 5 ? $"; and {errors.Distinct().Count() - 5} more" : "");
        var conditions = new ConditionList(tuning.Status?.Conditions, tuning.Metadata.Generation ?? 0, now);
        foreach (var c in status.Conditions ?? [])
        {
            if (c.Type is ConditionTypes.DataPlaneAvailable or ConditionTypes.Ready) continue;
            conditions.Set(c.Type, c.Status, c.Reason, c.Message);
        }
        conditions.Set(ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.PodApiError, message)
            .Set(ConditionTypes.DataPlaneAvailable, ConditionStatus.False, ConditionReasons.PodApiError, message);
        var amended = new NetworkTuningStatus
        {
            ObservedGeneration = status.ObservedGeneration,
            Conditions = conditions.ToList(),
            MatchedNodes = status.MatchedNodes,
            SkippedControlPlaneNodes = status.SkippedControlPlaneNodes,
            AppliedNodes = status.AppliedNodes,
            FailedNodes = status.FailedNodes,
            PendingNodes = status.PendingNodes,
            RevertingNodes = status.RevertingNodes,
            DataPlane = status.DataPlane,
        };
        var before = ConditionList.Find(tuning.Status?.Conditions, ConditionTypes.DataPlaneAvailable);
        var events = before?.Reason == ConditionReasons.PodApiError && before.Message == message
            ? [] : new[] { PlannedEvent.Warning(ConditionReasons.PodApiError, message) };
        return (amended, events);
    }

    public static IReadOnlyList<string> Validate(NetworkTuning tuning)
    {
        var errors = NetworkTuningValidator.Validate(tuning.Spec).Select(e => e.ToString()).ToList();
        errors.AddRange(LabelSelectorMatcher.Validate(tuning.Spec.NodeSelector, "spec.nodeSelector"));
        return errors;
    }

    /// <summary>
    /// The contributions to one node: the admitted tuning with its current spec, every other live tuning that selects
    /// the node with what the node already has from it.
    /// </summary>
    public static List<Contribution> Contributions(V1Node node, NetworkTuningNodeState? existing, IEnumerable<NetworkTuning> live, string? admitted)
    {
        var list = new List<Contribution>();
        foreach (var t in live)
        {
            if (!NodeSelection.Selects(t.Spec, node)) continue;
            if (t.Metadata.Name == admitted) list.Add(Contribution.Current(t));
            else if (Contribution.Frozen(existing?.Spec, t.Metadata.Name, t.Spec.Rollout?.DryRun == true) is { } frozen) list.Add(frozen);
        }
        return list;
    }

    private static NetworkTuningStatus BuildStatus(NetworkTuning tuning, RolloutPlan rollout, IReadOnlyList<TuningConflict> conflicts,
        IReadOnlyList<string> leaving, ClusterSnapshot snapshot, DataPlaneOutcome dataPlane, DateTime now)
    {
        var generation = tuning.Metadata.Generation ?? 0;
        var conditions = new ConditionList(tuning.Status?.Conditions, generation, now);
        var total = rollout.Nodes.Count;
        var progress = $"{rollout.Applied} of {total} nodes applied generation {generation}";
        var skipped = snapshot.Nodes.Count(n => NodeSelection.LeftOutControlPlane(tuning.Spec, n));
        var agents = AgentsCondition(rollout, snapshot.Agents);
        if (total == 0)
        {
            conditions.Set(ConditionTypes.Ready, ConditionStatus.True, ConditionReasons.NoMatchingNodes, skipped == 0
                    ? "the node selector matches no node"
                    : $"the node selector matches only control-plane nodes ({skipped}), left out unless spec.includeControlPlane is true")
                .Set(ConditionTypes.Progressing, ConditionStatus.False, ConditionReasons.NoMatchingNodes, "nothing to roll out");
        }
        else if (rollout.Complete)
        {
            // Ready means serving too: an enabled data plane that does not serve keeps it False, with its own reason.
            if (dataPlane.Condition.Status == ConditionStatus.True)
                conditions.Set(ConditionTypes.Ready, ConditionStatus.True, ConditionReasons.RolloutComplete, progress);
            else
                conditions.Set(ConditionTypes.Ready, ConditionStatus.False, dataPlane.Condition.Reason, $"{progress}; {dataPlane.Condition.Message}");
            conditions.Set(ConditionTypes.Progressing, ConditionStatus.False, ConditionReasons.RolloutComplete, progress);
        }
        else if (rollout.Paused)
        {
            var message = $"rollout paused: node {rollout.FailedNode!.Node} failed: {rollout.FailedNode.Message}; {progress}";
            conditions.Set(ConditionTypes.Ready, ConditionStatus.False, ConditionReasons.RolloutPaused, message)
                .Set(ConditionTypes.Progressing, ConditionStatus.False, ConditionReasons.RolloutPaused, message);
        }
        else
        {
            var message = $"{progress}; at most {rollout.MaxUnavailable} at a time";
            conditions.Set(ConditionTypes.Ready, ConditionStatus.False, agents.Status == ConditionStatus.False ? agents.Reason : ConditionReasons.RolloutInProgress,
                    agents.Status == ConditionStatus.False ? $"{progress}; {agents.Message}" : message)
                .Set(ConditionTypes.Progressing, ConditionStatus.True, ConditionReasons.RolloutInProgress, message);
        }

        if (rollout.FailedNode is { } failed)
        {
            var failedNodes = rollout.Nodes.Where(n => n.Progress == NodeProgress.Failed).Select(n => n.Node).ToList();
            conditions.Set(ConditionTypes.Degraded, ConditionStatus.True, rollout.Paused ? ConditionReasons.RolloutPaused : ConditionReasons.NodeFailed,
                $"node {failed.Node} failed: {failed.Message}" + (failedNodes.Count > 1 ? $" (failed nodes: {string.Join(", ", failedNodes)})" : ""));
        }
        else
        {
            conditions.Set(ConditionTypes.Degraded, ConditionStatus.False, ConditionReasons.AsExpected, "no node failed");
        }

        if (conflicts.Count > 0)
        {
            var text = string.Join("; ", conflicts.GroupBy(c => c.Other)
                .Select(g => $"NetworkTuning {g.Key} (same priority {tuning.Spec.Priority}) sets {string.Join(", ", g.Select(c => c.Knob))} differently"));
            conditions.Set(ConditionTypes.Conflict, ConditionStatus.True, ConditionReasons.KnobConflict,
                text + "; the nodes keep the values they had for those knobs");
        }
        else
        {
            conditions.Set(ConditionTypes.Conflict, ConditionStatus.False, ConditionReasons.NoConflict, "no equal-priority NetworkTuning sets a knob differently");
        }
        conditions.Set(ConditionTypes.DataPlaneAvailable, dataPlane.Condition.Status, dataPlane.Condition.Reason, dataPlane.Condition.Message);
        conditions.Set(ConditionTypes.AgentsAvailable, agents.Status, agents.Reason, agents.Message);

        var reverting = leaving.Where(n => snapshot.NodeStates.TryGetValue(n, out var s) && s.Spec.Revert && AgentProgress.Of(s).State != AgentState.Reverted)
            .ToList();
        return new NetworkTuningStatus
        {
            ObservedGeneration = generation,
            Conditions = conditions.ToList(),
            MatchedNodes = total,
            SkippedControlPlaneNodes = skipped == 0 ? null : skipped,
            AppliedNodes = rollout.Applied,
            FailedNodes = rollout.Failed,
            PendingNodes = rollout.Pending,
            RevertingNodes = reverting.Count == 0 ? null : reverting,
            DataPlane = dataPlane.Status,
        };
    }

    /// <summary>
    /// AgentsAvailable: False when a selected node has no working agent, with the cluster's words, the same message
    /// grouped over the nodes it holds for (a refused DaemonSet pod is refused alike on every node).
    /// </summary>
    private static PlannedCondition AgentsCondition(RolloutPlan rollout, IReadOnlyDictionary<string, AgentTrouble> troubles)
    {
        var troubled = rollout.Nodes.Where(n => troubles.ContainsKey(n.Node)).Select(n => (n.Node, Trouble: troubles[n.Node])).ToList();
        if (troubled.Count == 0)
            return new PlannedCondition(ConditionStatus.True, ConditionReasons.AgentsRunning, "no selected node has a refused or failing agent pod");
        var reason = troubled.Any(t => t.Trouble.Reason == ConditionReasons.AgentPodCreateFailed) ? ConditionReasons.AgentPodCreateFailed : ConditionReasons.AgentPodNotRunning;
        var groups = troubled.GroupBy(t => t.Trouble).Select(g => $"{Describe(g.Key.Reason)} on {Abbreviate(g.Select(t => t.Node).ToList())}: {g.Key.Message}");
        return new PlannedCondition(ConditionStatus.False, reason, $"{troubled.Count} of {rollout.Nodes.Count} selected nodes run no agent: {string.Join("; ", groups.Take(3))}");

        static string Describe(string reason) => reason == ConditionReasons.AgentPodCreateFailed ? "the agent pod was refused" : "the agent pod does not run";
    }

    private static List<PlannedEvent> Events(NetworkTuning tuning, NetworkTuningStatus? previous, NetworkTuningStatus status, RolloutPlan rollout)
    {
        var generation = tuning.Metadata.Generation ?? 0;
        var events = new List<PlannedEvent>();
        if (previous?.ObservedGeneration != generation && rollout.Nodes.Count > 0 && !rollout.Complete)
            events.Add(PlannedEvent.Normal(OperatorReasons.RolloutStarted,
                $"rolling out generation {generation} to {rollout.Nodes.Count} nodes, at most {rollout.MaxUnavailable} at a time"));
        var batch = rollout.Admit;
        if (batch.Count > 0 && rollout.Applied > 0 && tuning.Spec.Rollout?.DryRun != true)
            events.Add(PlannedEvent.Normal(OperatorReasons.BatchApplied,
                $"the previous batch applied generation {generation} ({rollout.Applied} of {rollout.Nodes.Count} nodes)"));
        if (batch.Count > 0)
            events.Add(PlannedEvent.Normal(OperatorReasons.BatchStarted,
                $"generation {generation} goes to {batch.Count} nodes: {Abbreviate(batch)} ({rollout.Applied} of {rollout.Nodes.Count} applied)"));
        if (ConditionBecame(previous, ConditionTypes.Progressing, ConditionReasons.RolloutPaused, status))
            events.Add(PlannedEvent.Warning(ConditionReasons.RolloutPaused, ConditionList.Find(status.Conditions, ConditionTypes.Progressing)!.Message));
        if (ConditionBecame(previous, ConditionTypes.Ready, ConditionReasons.RolloutComplete, status))
            events.Add(PlannedEvent.Normal(ConditionReasons.RolloutComplete, $"all {rollout.Nodes.Count} nodes applied generation {generation}"));
        if (ConditionBecame(previous, ConditionTypes.Conflict, ConditionReasons.KnobConflict, status))
            events.Add(PlannedEvent.Warning(ConditionReasons.KnobConflict, ConditionList.Find(status.Conditions, ConditionTypes.Conflict)!.Message));
        foreach (var reason in new[] { ConditionReasons.AgentPodCreateFailed, ConditionReasons.AgentPodNotRunning })
            if (ConditionBecame(previous, ConditionTypes.AgentsAvailable, reason, status))
                events.Add(PlannedEvent.Warning(reason, ConditionList.Find(status.Conditions, ConditionTypes.AgentsAvailable)!.Message));
        return events;
    }

    /// <summary>True when the condition has the reason now (in <paramref name="now"/>, or when null, in any new status) and did not before.</summary>
    private static bool ConditionBecame(NetworkTuningStatus? previous, string type, string reason, NetworkTuningStatus? now = null)
    {
        var before = ConditionList.Find(previous?.Conditions, type);
        if (before?.Reason == reason) return false;
        return now is null || ConditionList.Find(now.Conditions, type)?.Reason == reason;
    }

    private static string Abbreviate(IReadOnlyList<string> nodes) =>
        nodes.Count <= 10 ? string.Join(", ", nodes) : string.Join(", ", nodes.Take(10)) + $" and {nodes.Count - 10} more";

    /// <summary>
    /// The deletion, paced like a rollout: at most maxUnavailable nodes revert at a time; a node's data-plane pods go
    /// just before its revert is written (the NodeState is first marked with <see cref="RevertedForAnnotation"/> and
    /// <see cref="RevertStartedAnnotation"/>, then the pods are deleted, then the revert is written once they are
    /// gone); the next node starts when one reported Reverted. With pauseOnFailure a failed revert holds the rest until
    /// that node reverts or the spec drops pauseOnFailure. A node whose agent does not answer within the revert timeout
    /// (from its own start) is named and no longer waited on; its agent stays (see <see cref="AgentPlacement"/>) and
    /// reverts it when it runs again. The finalizer goes once every node was written and answered or was given up on.
    /// </summary>
    private static TuningPlan PlanDeletion(NetworkTuning tuning, ClusterSnapshot snapshot, DateTime now, PlannerSettings settings)
    {
        if (!(tuning.Metadata.Finalizers?.Contains(Names.Finalizer) ?? false)) return new TuningPlan();
        var name = tuning.Metadata.Name;
        var generation = tuning.Metadata.Generation ?? 0;
        var live = snapshot.Tunings.Where(t => t.Metadata.DeletionTimestamp is null && t.Metadata.Name != name).ToList();
        var nodesByName = snapshot.Nodes.ToDictionary(n => n.Metadata.Name, StringComparer.Ordinal);
        var podsByNode = snapshot.Pods.GroupBy(DataPlanePodBuilder.NodeOf).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var pauseOnFailure = tuning.Spec.Rollout?.PauseOnFailure ?? true;
        var dryRun = tuning.Spec.Rollout?.DryRun == true;

        var writes = new List<NodeStateWrite>();
        var deletes = new List<string>();
        var podDeletes = new List<V1Pod>();
        var notStarted = new List<(string Node, NodeStateWrite Revert)>();
        var inFlight = new List<string>();
        var failed = new List<(string Node, string? Message)>();
        var givenUp = new List<string>();
        var handled = new HashSet<string>(StringComparer.Ordinal);
        TimeSpan? requeue = null;
        void Wait(DateTime deadline)
        {
            var after = deadline - now;
            if (requeue is null || after < requeue) requeue = after;
        }
        IEnumerable<V1Pod> LivePods(string node) =>
            podsByNode.TryGetValue(node, out var pods) ? pods.Where(p => p.Metadata.DeletionTimestamp is null) : [];

        foreach (var (node, state) in snapshot.NodeStates.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var hasTuning = state.Spec.Sources?.Any(s => s.Name == name) == true;
            if (!nodesByName.TryGetValue(node, out var nodeObject))
            {
                if (hasTuning) deletes.Add(node); // the node is gone: nothing to revert there
                continue;
            }
            if (hasTuning)
            {
                handled.Add(node);
                var merged = NodeSpecMerger.Merge(node, Contributions(nodeObject, state, live, admitted: null), state.Spec);
                var revert = new NodeStateWrite(node, merged.Spec, state, RevertedFor: name);
                if (!WasOurs(state, name))
                {
                    notStarted.Add((node, revert));
                    continue;
                }
                // Started: its pods go first, then the revert; pods that do not go within the revert timeout (a node
                // whose kubelet is down) do not hold the revert back any longer.
                inFlight.Add(node);
                var started = RevertStarted(state, tuning) + settings.RevertTimeout;
                if (podsByNode.TryGetValue(node, out var pods) && pods.Count > 0 && now < started)
                {
                    podDeletes.AddRange(LivePods(node));
                    Wait(started);
                }
                else writes.Add(revert);
                continue;
            }
            // Written without this tuning: done once the agent confirms (Reverted, or Applied for the tunings that remain).
            if (!WasOurs(state, name)) continue;
            handled.Add(node);
            var report = AgentProgress.Of(state);
            if (report.State is AgentState.Reverted or AgentState.Applied or AgentState.Planned) continue;
            if (report.State == AgentState.Failed && pauseOnFailure)
            {
                failed.Add((node, report.Message));
                inFlight.Add(node);
                continue;
            }
            var deadline = RevertStarted(state, tuning) + settings.RevertTimeout;
            if (now >= deadline)
            {
                givenUp.Add(node);
                continue;
            }
            inFlight.Add(node);
            Wait(deadline);
        }
        // Pods on nodes with nothing of this tuning to revert go at once.
        foreach (var (node, pods) in podsByNode.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            if (!handled.Contains(node)) podDeletes.AddRange(pods.Where(p => p.Metadata.DeletionTimestamp is null));

        // A percentage counts every node the deletion concerns, done ones included, as a rollout counts every selected node.
        var max = MaxUnavailable.Resolve(tuning.Spec.Rollout?.MaxUnavailable, Math.Max(handled.Count, 1));
        var paused = failed.Count > 0;
        // A dry-run tuning changed nothing on the nodes: nothing to pace.
        var slots = dryRun ? notStarted.Count : paused ? 0 : Math.Max(0, max - inFlight.Count);
        foreach (var (node, revert) in notStarted.Take(slots))
        {
            var pods = LivePods(node).ToList();
            // Marked as started before its pods go, so the next reconcile counts it even when they are gone by then.
            writes.Add(pods.Count > 0 ? revert with { Spec = revert.Existing!.Spec, RevertStarted = now } : revert with { RevertStarted = now });
            podDeletes.AddRange(pods);
            inFlight.Add(node);
            Wait(now + settings.RevertTimeout);
        }
        var waiting = inFlight.Concat(notStarted.Skip(slots).Select(n => n.Node)).Order(StringComparer.Ordinal).ToList();

        var conditions = new ConditionList(tuning.Status?.Conditions, generation, now);
        var events = new List<PlannedEvent>();
        if (givenUp.Count > 0)
        {
            var message = $"no Reverted report within {settings.RevertTimeout.TotalSeconds:0}s from: {Abbreviate(givenUp)}; not waited on any longer (their agents stay and revert them when they run again)";
            conditions.Set(ConditionTypes.Degraded, ConditionStatus.True, OperatorReasons.RevertTimedOut, message);
            if (ConditionList.Find(tuning.Status?.Conditions, ConditionTypes.Degraded) is not { Reason: OperatorReasons.RevertTimedOut } before || before.Message != message)
                events.Add(PlannedEvent.Warning(OperatorReasons.RevertTimedOut, message));
        }

        if (waiting.Count == 0 && writes.Count == 0 && podDeletes.Count == 0)
        {
            events.Add(PlannedEvent.Normal(ConditionReasons.Reverted, givenUp.Count == 0
                ? "every node reverted or is gone; the finalizer is removed"
                : $"every node reverted, is gone or was given up on ({Abbreviate(givenUp)}); the finalizer is removed"));
            if (givenUp.Count > 0)
            {
                var message = ConditionList.Find(conditions.ToList(), ConditionTypes.Degraded)!.Message;
                conditions.Set(ConditionTypes.Ready, ConditionStatus.False, OperatorReasons.RevertTimedOut, message)
                    .Set(ConditionTypes.Progressing, ConditionStatus.False, OperatorReasons.RevertTimedOut, message);
            }
            return new TuningPlan
            {
                RemoveFinalizer = true,
                NodeStateDeletes = deletes,
                Status = givenUp.Count > 0 ? DeletionStatus(tuning, conditions, givenUp) : null,
                Events = events,
            };
        }

        if (paused)
        {
            var (node, why) = failed[0];
            var message = $"revert paused: node {node} failed to revert: {why}; {waiting.Count} nodes left (set spec.rollout.pauseOnFailure to false to go on)";
            conditions.Set(ConditionTypes.Ready, ConditionStatus.False, OperatorReasons.RevertPaused, message)
                .Set(ConditionTypes.Progressing, ConditionStatus.False, OperatorReasons.RevertPaused, message)
                .Set(ConditionTypes.Degraded, ConditionStatus.True, OperatorReasons.RevertPaused, message);
            if (ConditionList.Find(tuning.Status?.Conditions, ConditionTypes.Progressing)?.Reason != OperatorReasons.RevertPaused)
                events.Add(PlannedEvent.Warning(OperatorReasons.RevertPaused, message));
        }
        else
        {
            var progress = $"reverting {waiting.Count} nodes, at most {max} at a time: {Abbreviate(waiting)}";
            conditions.Set(ConditionTypes.Ready, ConditionStatus.False, OperatorReasons.Reverting, progress)
                .Set(ConditionTypes.Progressing, ConditionStatus.True, OperatorReasons.Reverting, progress);
            if (givenUp.Count == 0) conditions.Set(ConditionTypes.Degraded, ConditionStatus.False, ConditionReasons.AsExpected, "no node failed");
            if (ConditionList.Find(tuning.Status?.Conditions, ConditionTypes.Progressing)?.Reason != OperatorReasons.Reverting)
                events.Add(PlannedEvent.Normal(OperatorReasons.Reverting, progress));
        }
        return new TuningPlan
        {
            NodeStateWrites = writes,
            NodeStateDeletes = deletes,
            PodDeletes = podDeletes,
            Status = DeletionStatus(tuning, conditions, [.. waiting, .. givenUp]),
            Events = events,
            RequeueAfter = requeue,
        };
    }

    /// <summary>When this node's revert started (the deletion's time for NodeStates written before the annotation existed).</summary>
    private static DateTime RevertStarted(NetworkTuningNodeState state, NetworkTuning tuning) =>
        DateTime.TryParse(Names.Annotation(state.Metadata, RevertStartedAnnotation), System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal, out var started)
            ? started
            : tuning.Metadata.DeletionTimestamp!.Value;

    /// <summary>Set when a deletion starts reverting the node (before its data-plane pods go): the node's own revert timeout counts from it.</summary>
    public const string RevertStartedAnnotation = "nettune.io/revert-started";

    /// <summary>Whether the delete of this tuning rewrote the NodeState (see <see cref="RevertedForAnnotation"/>).</summary>
    private static bool WasOurs(NetworkTuningNodeState state, string name) =>
        (Names.Annotation(state.Metadata, RevertedForAnnotation) ?? "").Split(',').Contains(name);

    /// <summary>Set on a NodeState the delete of a NetworkTuning rewrote, naming those tunings (comma-separated), so the wait can find it.</summary>
    public const string RevertedForAnnotation = "nettune.io/reverted-for";

    private static NetworkTuningStatus DeletionStatus(NetworkTuning tuning, ConditionList conditions, List<string> waiting) => new()
    {
        ObservedGeneration = tuning.Metadata.Generation,
        Conditions = conditions.ToList(),
        MatchedNodes = tuning.Status?.MatchedNodes ?? 0,
        AppliedNodes = tuning.Status?.AppliedNodes ?? 0,
        FailedNodes = tuning.Status?.FailedNodes ?? 0,
        PendingNodes = tuning.Status?.PendingNodes ?? 0,
        RevertingNodes = waiting.Count == 0 ? null : waiting,
    };
}
