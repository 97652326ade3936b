using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;

namespace NetTune.Operator.Core.Rollout;

/// <summary>Why one node has no working agent.</summary>
/// <param name="Reason"><see cref="ConditionReasons.AgentPodCreateFailed"/> or <see cref="ConditionReasons.AgentPodNotRunning"/>.</param>
/// <param name="Message">The DaemonSet controller's or the kubelet's own words.</param>
public sealed record AgentTrouble(string Reason, string Message);

/// <summary>
/// Nodes that should run an agent and do not, with the cluster's reason: a refused pod (PodSecurity admission, a
/// ResourceQuota, a webhook) shows only as a FailedCreate Event on the DaemonSet and in its status counts, a pod that
/// does not start only in the pod's status. Without this the nodes count as Waiting and the tunings stay Progressing
/// with no word of why. Pure: the caller reads the DaemonSet, its pods and its Events.
/// </summary>
public static class AgentHealth
{
    public const string FailedCreate = "FailedCreate";

    /// <summary>Waiting reasons of a container on its normal way to running.</summary>
    private static readonly HashSet<string> Starting = new(StringComparer.Ordinal) { "ContainerCreating", "PodInitializing" };

    /// <summary>
    /// True when some node that should run an agent may have none ready, so the pods and Events are worth reading: the
    /// status says so, or it is not to be trusted. The DaemonSet controller writes the status only after a sync whose
    /// pod creates all succeeded, so a DaemonSet whose pods are refused keeps the status of its last good sync (all
    /// zero for a new one): an old observedGeneration, or fewer desired pods than placed nodes, tell that.
    /// </summary>
    public static bool NeedsLook(V1DaemonSet daemonSet, IEnumerable<V1Node> nodes) => daemonSet.Status is not { } s
        || s.ObservedGeneration != daemonSet.Metadata.Generation || Placed(daemonSet, nodes).Count() > s.DesiredNumberScheduled
        || s.DesiredNumberScheduled != s.CurrentNumberScheduled || s.NumberReady < s.DesiredNumberScheduled || (s.NumberUnavailable ?? 0) > 0;

    /// <summary>The nodes the DaemonSet places an agent on: the operator's agent label and any extra node selector.</summary>
    public static IEnumerable<V1Node> Placed(V1DaemonSet daemonSet, IEnumerable<V1Node> nodes)
    {
        var selector = daemonSet.Spec?.Template?.Spec?.NodeSelector ?? new Dictionary<string, string>();
        return nodes.Where(n => n.Metadata.DeletionTimestamp is null && AgentPlacement.HasLabel(n)
            && selector.All(kv => n.Metadata.Labels?.TryGetValue(kv.Key, out var v) == true && v == kv.Value));
    }

    /// <summary>
    /// The nodes with the agent label (the DaemonSet's placement) that have no agent pod, when the controller reported
    /// a failed create of this DaemonSet, and those whose agent pod does not run, each with its reason and message.
    /// </summary>
    public static IReadOnlyDictionary<string, AgentTrouble> Judge(V1DaemonSet daemonSet, IEnumerable<V1Node> nodes, IEnumerable<V1Pod> agentPods,
        IEnumerable<Corev1Event> events)
    {
        var troubles = new SortedDictionary<string, AgentTrouble>(StringComparer.Ordinal);
        var podsByNode = agentPods.Where(p => p.Metadata.DeletionTimestamp is null)
            .GroupBy(DataPlanePodBuilder.NodeOf).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var failedCreate = events
            .Where(e => e.Reason == FailedCreate && e.InvolvedObject?.Uid == daemonSet.Metadata.Uid)
            .MaxBy(e => e.LastTimestamp ?? e.EventTime ?? e.FirstTimestamp ?? e.Metadata.CreationTimestamp);
        foreach (var node in Placed(daemonSet, nodes))
        {
            var name = node.Metadata.Name;
            if (!podsByNode.TryGetValue(name, out var pods) || pods.Count == 0)
            {
                if (failedCreate is not null) troubles[name] = new AgentTrouble(ConditionReasons.AgentPodCreateFailed, failedCreate.Message ?? FailedCreate);
                continue;
            }
            if (pods.Select(NotRunning).FirstOrDefault(m => m is not null) is { } message && !pods.Any(Ready))
                troubles[name] = new AgentTrouble(ConditionReasons.AgentPodNotRunning, message);
        }
        return troubles;
    }

    private static bool Ready(V1Pod pod) => pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    /// <summary>Why a pod does not run, in the cluster's words; null while it is running or on its way there.</summary>
    public static string? NotRunning(V1Pod pod)
    {
        var name = pod.Metadata.Name;
        if (pod.Status?.Phase == "Failed") return $"pod {name} failed: {pod.Status.Reason} {pod.Status.Message}".TrimEnd();
        if (pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled" && c.Status == "False") is { } unscheduled)
            return $"pod {name} is not scheduled: {unscheduled.Reason}: {unscheduled.Message}";
        foreach (var container in pod.Status?.ContainerStatuses ?? [])
        {
            if (container.State?.Waiting is { Reason: { Length: > 0 } reason } waiting && !Starting.Contains(reason))
                return $"pod {name} container {container.Name}: {reason}{(string.IsNullOrEmpty(waiting.Message) ? "" : ": " + waiting.Message)}";
        }
        return null;
    }
}
