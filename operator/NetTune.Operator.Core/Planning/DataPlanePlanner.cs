using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Rollout;

namespace NetTune.Operator.Core.Planning;

/// <summary>Where a data-plane pod really runs, as it reported on its /readyz.</summary>
/// <param name="Cpus">The CPUs it runs on: its affinity when it reports one, else its workers' CPUs.</param>
/// <param name="NumaNode">The NUMA node of those CPUs; -1 when they span several or none is known.</param>
/// <param name="AffinityReported">Whether <paramref name="Cpus"/> is the whole affinity (not only the workers' CPUs).</param>
/// <param name="Engine">The I/O engine its workers run (iouring, epoll; comma-separated if they differ); null when not reported.</param>
public sealed record DataPlanePlacement(IReadOnlyList<int> Cpus, int NumaNode, bool AffinityReported, string? Engine = null);

/// <summary>The DataPlaneAvailable condition as planned.</summary>
public sealed record PlannedCondition(string Status, string Reason, string Message);

/// <summary>What the data-plane step decided besides pod writes: its status, condition, Events and when to look again.</summary>
public sealed record DataPlaneOutcome(DataPlaneStatus? Status, PlannedCondition Condition, IReadOnlyList<PlannedEvent> Events, TimeSpan? RequeueAfter);

/// <summary>
/// The data-plane pods of one NetworkTuning: which to create, delete and replace, and what to say about them. A pod
/// the kubelet rejected (OutOfcpu, TopologyAffinityError, SMTAlignmentError...), evicted, or that failed is deleted
/// and made again after a capped, doubling backoff counted in status; a Warning Event carries the kubelet's reason.
/// </summary>
public static class DataPlanePlanner
{
    public const string Failed = "Failed";
    public const string Waiting = "Waiting";
    public const string Missing = "Missing";

    /// <summary>The wait before the n-th recreation: base × 2^(n-1), at most max.</summary>
    public static TimeSpan Backoff(int recreations, TimeSpan first, TimeSpan max)
    {
        if (recreations <= 0) return TimeSpan.Zero;
        var factor = Math.Pow(2, Math.Min(recreations - 1, 20));
        var wait = TimeSpan.FromSeconds(first.TotalSeconds * factor);
        return wait > max ? max : wait;
    }

    public static DataPlaneOutcome Plan(NetworkTuning tuning, RolloutPlan rollout, HashSet<string> matched, ClusterSnapshot snapshot,
        PlannerSettings settings, DateTime now, List<V1Pod> creates, List<V1Pod> deletes)
    {
        var enabled = tuning.Spec.DataPlane?.Enabled == true && tuning.Spec.Rollout?.DryRun != true;
        var podsByNode = snapshot.Pods.GroupBy(DataPlanePodBuilder.NodeOf).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        foreach (var pod in snapshot.Pods)
        {
            if (pod.Metadata.DeletionTimestamp is not null) continue;
            if (!enabled || !matched.Contains(DataPlanePodBuilder.NodeOf(pod))) deletes.Add(pod);
        }
        if (!enabled)
            return new DataPlaneOutcome(null, new PlannedCondition(ConditionStatus.True, ConditionReasons.DataPlaneDisabled, "no data plane is asked for"), [], null);

        var nodesByName = snapshot.Nodes.ToDictionary(n => n.Metadata.Name, StringComparer.Ordinal);
        var previous = (tuning.Status?.DataPlane?.Pods ?? []).GroupBy(p => p.Name).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var entries = new List<DataPlanePodStatus>();
        var events = new List<PlannedEvent>();
        var waitReasons = new List<(string Reason, string Message)>();
        var shared = new List<string>();
        var placement = new List<string>();
        var spans = new Dictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);
        TimeSpan? requeue = null;
        var desiredCount = 0;

        var replacements = new List<List<V1Pod>>();
        var unavailable = 0;
        foreach (var node in rollout.Nodes)
        {
            var existing = podsByNode.TryGetValue(node.Node, out var onNode) ? onNode : [];
            snapshot.NodeStates.TryGetValue(node.Node, out var state);
            nodesByName.TryGetValue(node.Node, out var nodeObject);
            IReadOnlyList<SocketPod> PlanSockets() => DataPlanePodBuilder.Plan(tuning, node.Node, nodeObject, state?.Status?.Topology, settings.DataPlane,
                snapshot.CpuOfOtherPods.GetValueOrDefault(node.Node), existing);
            if (state?.Status?.Topology is { } topology && DataPlanePodBuilder.PodNumaNodes(tuning, node.Node, topology).Note is { } note)
                placement.Add(note);
            if (node.Progress != NodeProgress.Applied)
            {
                // Nodes still applying keep their pods as they are until they report Applied. A node without its pods
                // yet still owes them: the data plane is not available while its node is being tuned.
                foreach (var have in existing)
                {
                    desiredCount++;
                    entries.Add(Observe(have, SocketOf(have), 0, previous.GetValueOrDefault(have.Metadata.Name), snapshot));
                }
                if (existing.Count == 0)
                {
                    var planned = PlanSockets();
                    var message = $"node {node.Node} is not tuned yet ({node.Progress}{(node.Message is { Length: > 0 } why ? ": " + why : "")}); its data-plane pods start once its agent reports Applied";
                    var owed = planned.Count > 0 ? planned.Select(s => Carry(s, node.Node, previous.GetValueOrDefault(s.Name))).ToList()
                        : [new DataPlanePodStatus { Name = DataPlanePodBuilder.PodName(tuning.Metadata.Name, node.Node, 0), Node = node.Node }];
                    foreach (var entry in owed)
                    {
                        desiredCount++;
                        entry.Phase = Waiting;
                        entry.Message = message;
                        entries.Add(entry);
                    }
                    waitReasons.Add((ConditionReasons.NodeNotTuned, message));
                }
                continue;
            }
            var sockets = PlanSockets();
            foreach (var socket in sockets) spans[socket.Name] = socket.NumaNodes ?? [socket.Socket];
            if (sockets.Any(s => s.WaitReason == ConditionReasons.NoAllocatableCpu) && snapshot.CpuOfOtherPods.ContainsKey(node.Node))
                requeue = requeue is null || settings.CpuRecheck < requeue ? settings.CpuRecheck : requeue;
            var names = sockets.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            deletes.AddRange(existing.Where(p => p.Metadata.DeletionTimestamp is null && !names.Contains(p.Metadata.Name)));
            var cordoned = nodeObject?.Spec?.Unschedulable == true;
            var outdated = new List<V1Pod>();
            var busy = false;
            var numaOfReady = new List<(string Pod, int Numa)>();
            foreach (var socket in sockets)
            {
                var have = existing.FirstOrDefault(p => p.Metadata.Name == socket.Name);
                var prev = previous.GetValueOrDefault(socket.Name);
                if (have is not null && have.Metadata.DeletionTimestamp is null && have.Status?.Phase == "Failed")
                {
                    desiredCount++;
                    busy = true;
                    var entry = Carry(socket, node.Node, prev);
                    entry.Phase = Failed;
                    var why = FailureText(have);
                    entry.Message = why;
                    if (prev?.LastFailedUid != have.Metadata.Uid)
                    {
                        entry.Recreations++;
                        entry.LastFailedUid = have.Metadata.Uid;
                        entry.LastFailureTime = now;
                        var wait = Backoff(entry.Recreations, settings.PodBackoff, settings.PodBackoffMax);
                        events.Add(PlannedEvent.Warning(ConditionReasons.PodFailed,
                            $"pod {socket.Name} on node {node.Node} failed: {why}; deleted, made again in {wait.TotalSeconds:0}s (recreation {entry.Recreations})"));
                    }
                    deletes.Add(have);
                    entries.Add(entry);
                    continue;
                }
                if (have is null || have.Metadata.DeletionTimestamp is not null)
                {
                    var entry = Carry(socket, node.Node, prev);
                    if (socket.Pod is null)
                    {
                        desiredCount++;
                        entry.Phase = Waiting;
                        entry.Message = socket.WaitMessage;
                        waitReasons.Add((socket.WaitReason!, socket.WaitMessage!));
                    }
                    else if (cordoned)
                    {
                        // A cordoned node gets no new pod (the scheduler would refuse it, and a drain must stick).
                        entry.Phase = Waiting;
                        entry.Message = $"node {node.Node} is cordoned (unschedulable): no new pod until it is uncordoned";
                    }
                    else
                    {
                        desiredCount++;
                        busy = true;
                        var until = entry.LastFailureTime is { } failedAt && entry.Recreations > 0
                            ? failedAt + Backoff(entry.Recreations, settings.PodBackoff, settings.PodBackoffMax)
                            : now;
                        if (have is not null)
                        {
                            entry.Phase = Missing;
                            entry.Message = "the previous pod is terminating";
                        }
                        else if (until > now)
                        {
                            entry.Phase = Waiting;
                            entry.Message = $"{prev?.Message}; made again at {until:yyyy-MM-ddTHH:mm:ssZ} (backoff after {entry.Recreations} failures)";
                            var after = until - now;
                            requeue = requeue is null || after < requeue ? after : requeue;
                        }
                        else
                        {
                            creates.Add(socket.Pod);
                            entry.Phase = Missing;
                            entry.Message = entry.Recreations > 0 ? prev?.Message : null;
                        }
                    }
                    entries.Add(entry);
                    continue;
                }

                desiredCount++;
                var observed = Observe(have, socket.Socket, socket.Cpus, prev, snapshot);
                entries.Add(observed);
                if (observed.Ready && observed.NumaNode is >= 0 and var numa) numaOfReady.Add((socket.Name, numa));
                if (NotReady(have)) busy = true;
                else if (socket.Pod is not null && Names.Annotation(have.Metadata, Names.SpecHashAnnotation) != socket.Pod.Metadata.Annotations![Names.SpecHashAnnotation])
                    outdated.Add(have);
            }
            foreach (var group in numaOfReady.GroupBy(p => p.Numa).Where(g => g.Count() > 1))
                shared.Add($"{string.Join(" and ", group.Select(p => p.Pod))} on node {node.Node} all run on NUMA node {group.Key}");
            if (busy) unavailable++;
            else if (outdated.Count > 0) replacements.Add(outdated);
        }
        // A changed pod spec replaces pods node by node, at most maxUnavailable nodes at a time. The new pod has the
        // same name, so it is created once the old one is gone.
        foreach (var outdated in replacements.Take(Math.Max(0, rollout.MaxUnavailable - unavailable)))
            deletes.AddRange(outdated);

        var ready = entries.Count(e => e.Ready);
        var condition = Condition(tuning.Spec.DataPlane!, entries, ready, desiredCount, waitReasons, shared, spans);
        var previousCondition = PreviousAvailable(tuning.Status?.Conditions);
        if (condition.Reason == ConditionReasons.SocketShared && previousCondition?.Reason != ConditionReasons.SocketShared)
            events.Add(PlannedEvent.Warning(ConditionReasons.SocketShared, condition.Message));
        if (condition.Reason == ConditionReasons.NumaNodeMismatch && previousCondition?.Reason != ConditionReasons.NumaNodeMismatch)
            events.Add(PlannedEvent.Warning(ConditionReasons.NumaNodeMismatch, condition.Message));
        if (condition.Reason == ConditionReasons.HugepagesNotAllocatable && previousCondition?.Reason != ConditionReasons.HugepagesNotAllocatable)
            events.Add(PlannedEvent.Warning(ConditionReasons.HugepagesNotAllocatable, condition.Message));
        if (condition.Reason == ConditionReasons.IoUringUnavailable && previousCondition?.Reason != ConditionReasons.IoUringUnavailable)
            events.Add(PlannedEvent.Warning(ConditionReasons.IoUringUnavailable, condition.Message));

        // Problems first, so a capped list still shows them.
        var ordered = entries.OrderBy(e => e.Ready && e.ExclusiveCpus != false ? 1 : 0).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
        var status = new DataPlaneStatus
        {
            DesiredPods = desiredCount,
            ReadyPods = ready,
            Pods = ordered.Count == 0 ? null : ordered.Take(DataPlaneStatus.MaxPods).ToList(),
            PodsOmitted = ordered.Count > DataPlaneStatus.MaxPods ? ordered.Count - DataPlaneStatus.MaxPods : null,
            Placement = placement.Count == 0 ? null : placement.Take(DataPlaneStatus.MaxPlacementNotes).ToList(),
        };
        return new DataPlaneOutcome(status, condition, events, requeue);
    }

    private static V1Condition? PreviousAvailable(IEnumerable<V1Condition>? conditions) =>
        conditions?.FirstOrDefault(c => c.Type == ConditionTypes.DataPlaneAvailable);

    private static PlannedCondition Condition(DataPlaneSpec dp, List<DataPlanePodStatus> entries, int ready, int desired, List<(string Reason, string Message)> waits,
        List<string> shared, IReadOnlyDictionary<string, IReadOnlyList<int>> spans)
    {
        var counts = $"{ready} of {desired} data-plane pods ready";
        var failed = entries.Where(e => e.Phase == Failed || (e.Phase == Waiting && e.Recreations > 0 && e.LastFailureTime is not null)).ToList();
        if (failed.Count > 0)
            return new(ConditionStatus.False, ConditionReasons.PodFailed, $"{counts}; {Listed(failed, e => $"{e.Name}: {e.Message}")}");
        foreach (var reason in new[] { ConditionReasons.HugepagesNotAllocatable, ConditionReasons.NoAllocatableCpu, ConditionReasons.NumaResourceNotAllocatable, ConditionReasons.NodeNotTuned })
        {
            var these = waits.Where(w => w.Reason == reason).Select(w => w.Message).Distinct().ToList();
            if (these.Count > 0) return new(ConditionStatus.False, reason, $"{counts}; {Listed(these, m => m)}");
        }
        if (ready < desired)
        {
            var notReady = entries.Where(e => !e.Ready && !(e.Phase == Waiting && e.Message?.Contains("cordoned", StringComparison.Ordinal) == true)).ToList();
            return new(ConditionStatus.False, ConditionReasons.PodsNotReady,
                notReady.Count == 0 ? counts : $"{counts}; {Listed(notReady, e => $"{e.Name}: {e.Phase}{(e.Message is null ? "" : ": " + e.Message)}")}");
        }
        // Auto falls back to epoll without a word when io_uring_setup is refused: the status is where it shows.
        var fellBack = dp.IoEngine == IoEngine.Epoll ? [] : entries.Where(e => e.Ready && e.Engine?.Split(',').Any(name => name.StartsWith("epoll", StringComparison.Ordinal)) == true).ToList();
        if (fellBack.Count > 0)
            return new(ConditionStatus.True, ConditionReasons.IoUringUnavailable,
                $"{counts}; io_uring was asked for (ioEngine {dp.IoEngine}) but {Listed(fellBack, e => e.Name)} run{(fellBack.Count == 1 ? "s" : "")} epoll: " +
                $"io_uring_setup is refused under seccomp profile {Describe(DataPlanePodBuilder.SeccompProfile(dp))} or by the kernel (kernel.io_uring_disabled); " +
                "containerd 2.0 and Docker 25 dropped io_uring from RuntimeDefault, NetTune's profile (dataPlane.seccompProfile.type NetTune) allows it");
        var unpinned = entries.Where(e => e.ExclusiveCpus == false).ToList();
        if (unpinned.Count > 0)
            return new(ConditionStatus.True, ConditionReasons.NotExclusivelyPinned,
                $"{counts}; not exclusively pinned (the kubelet's CPU manager policy is not static, or the pod is not Guaranteed): {Listed(unpinned, e => $"{e.Name} runs on CPUs {e.Cpus} for {e.RequestedCpus} requested")}");
        if (shared.Count > 0)
            return new(ConditionStatus.True, ConditionReasons.SocketShared,
                $"{counts}; two pods of one node share a NUMA node: {string.Join("; ", shared)}; the kubelet's Topology Manager did not align them with their NUMA devices (topologyManagerPolicy none?)");
        // Each pod asks for a device of its NUMA node; the Topology Manager takes its CPUs from that node unless its
        // policy is none, which aligns nothing. The pod's own report is what tells.
        var misplaced = entries.Where(e => e.Ready && e.NumaNode is >= 0 and var numa && numa != e.Socket
                                           && !(spans.TryGetValue(e.Name, out var span) && span.Contains(numa))).ToList();
        if (misplaced.Count > 0)
            return new(ConditionStatus.True, ConditionReasons.NumaNodeMismatch,
                $"{counts}; {Listed(misplaced, e => $"{e.Name} asked for NUMA node {e.Socket} ({NumaResources.ResourceName(e.Socket)}) and runs on NUMA node {e.NumaNode}")}: " +
                "the kubelet's Topology Manager did not align the pods' CPUs with their NUMA device, as with topologyManagerPolicy none; set it to single-numa-node (or restricted)");
        return new(ConditionStatus.True, ConditionReasons.PodsReady, counts);
    }

    private static string Describe(V1SeccompProfile profile) => profile.LocalhostProfile is { } path ? $"{profile.Type} {path}" : profile.Type;

    private static string Listed<T>(IReadOnlyList<T> items, Func<T, string> text) =>
        items.Count <= 5 ? string.Join("; ", items.Select(text)) : string.Join("; ", items.Take(5).Select(text)) + $"; and {items.Count - 5} more";

    private static DataPlanePodStatus Carry(SocketPod socket, string node, DataPlanePodStatus? prev) => new()
    {
        Name = socket.Name,
        Node = node,
        Socket = socket.Socket,
        RequestedCpus = socket.Cpus,
        Recreations = prev?.Recreations ?? 0,
        LastFailedUid = prev?.LastFailedUid,
        LastFailureTime = prev?.LastFailureTime,
    };

    /// <summary>What an existing, live pod shows: phase, readiness, the scheduler's word while Pending, and where it runs.</summary>
    private static DataPlanePodStatus Observe(V1Pod pod, int socket, int requested, DataPlanePodStatus? prev, ClusterSnapshot snapshot)
    {
        var container = pod.Spec?.Containers?.FirstOrDefault();
        if (requested == 0 && container?.Resources?.Requests?.TryGetValue("cpu", out var cpu) == true) requested = (int)cpu.ToDecimal();
        var ready = !NotReady(pod) && pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;
        var entry = new DataPlanePodStatus
        {
            Name = pod.Metadata.Name,
            Node = DataPlanePodBuilder.NodeOf(pod),
            Socket = socket,
            Phase = pod.Status?.Phase ?? "Pending",
            Ready = ready,
            RequestedCpus = requested,
            // A pod that serves has overcome whatever failed before: the backoff starts afresh.
            Recreations = ready ? 0 : prev?.Recreations ?? 0,
            LastFailedUid = prev?.LastFailedUid,
            LastFailureTime = ready ? null : prev?.LastFailureTime,
        };
        if (pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled" && c.Status == "False") is { } unscheduled)
            entry.Message = $"{unscheduled.Reason}: {unscheduled.Message}";
        else if (!ready && pod.Status?.ContainerStatuses?.FirstOrDefault()?.State?.Waiting is { } waiting)
            entry.Message = $"{waiting.Reason}: {waiting.Message}";
        if (pod.Metadata.Uid is { } uid && snapshot.Placements.TryGetValue(uid, out var placement))
        {
            entry.Cpus = CpuList.Format(placement.Cpus);
            entry.NumaNode = placement.NumaNode;
            entry.Engine = placement.Engine;
            if (placement.AffinityReported || placement.Cpus.Count > requested || container?.Args?.Contains("--workers") != true)
                entry.ExclusiveCpus = placement.Cpus.Count == requested;
        }
        return entry;
    }

    private static int SocketOf(V1Pod pod) =>
        pod.Metadata.Labels?.TryGetValue(Names.NumaLabel, out var text) == true && int.TryParse(text, out var id) ? id : 0;

    /// <summary>The kubelet's reason and message for a Failed pod (OutOfcpu, TopologyAffinityError, Evicted...).</summary>
    public static string FailureText(V1Pod pod)
    {
        var reason = pod.Status?.Reason;
        var message = pod.Status?.Message;
        if (reason is null && pod.Status?.ContainerStatuses?.FirstOrDefault()?.State?.Terminated is { } terminated)
        {
            reason = terminated.Reason ?? "Terminated";
            message ??= terminated.Message ?? $"exit code {terminated.ExitCode}";
        }
        reason ??= "Failed";
        return message is null ? reason : $"{reason}: {message}";
    }

    /// <summary>True when a kubelet reported the pod not ready. A pod no kubelet has reported on does not hold a rollout.</summary>
    public static bool NotReady(V1Pod pod) =>
        pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready") is { } ready && ready.Status != "True";
}
