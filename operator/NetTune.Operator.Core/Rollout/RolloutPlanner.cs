using k8s.Models;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Rollout;

public enum NodeProgress
{
    /// <summary>The node does not have the tuning's current generation yet.</summary>
    Outdated,
    /// <summary>The node has it; its agent has not reported Applied yet.</summary>
    Pending,
    Applied,
    Failed,
}

public sealed record NodeRollout(string Node, NodeProgress Progress, string? Message);

/// <param name="Nodes">Every selected node, sorted by name.</param>
/// <param name="Admit">Nodes that get the current generation now.</param>
/// <param name="Paused">A node failed the current generation and pauseOnFailure holds the rest back.</param>
/// <param name="FailedNode">The first failed node (when Paused, the one that paused the rollout).</param>
public sealed record RolloutPlan(
    IReadOnlyList<NodeRollout> Nodes, IReadOnlyList<string> Admit, int MaxUnavailable, bool Paused, NodeRollout? FailedNode)
{
    public int Applied => Nodes.Count(n => n.Progress == NodeProgress.Applied);
    public int Failed => Nodes.Count(n => n.Progress == NodeProgress.Failed);
    public int Pending => Nodes.Count(n => n.Progress is NodeProgress.Pending or NodeProgress.Outdated);
    public bool Complete => Nodes.All(n => n.Progress == NodeProgress.Applied);
}

/// <summary>
/// Decides which selected nodes get a NetworkTuning's current generation now. Batches of at most maxUnavailable
/// nodes; the next batch starts only when no node is still applying; with pauseOnFailure a node that failed the
/// current generation stops the rollout until the spec changes. Nodes already unavailable (applying an older
/// generation, or failed on one) get the new generation at once: that costs no extra availability and is how a
/// spec change resumes a paused rollout.
/// </summary>
public static class RolloutPlanner
{
    public static RolloutPlan Plan(string tuning, long generation, RolloutSpec? rollout, IReadOnlyList<string> selectedNodes,
        IReadOnlyDictionary<string, NetworkTuningNodeState> states)
    {
        var nodes = new List<NodeRollout>();
        var alreadyUnavailable = new List<string>();
        foreach (var node in selectedNodes.Order(StringComparer.Ordinal))
        {
            states.TryGetValue(node, out var state);
            var source = state?.Spec.Sources?.FirstOrDefault(s => s.Name == tuning);
            var report = state is null ? new AgentReport(AgentState.Waiting, null) : AgentProgress.Of(state);
            if (source is null || source.Generation != generation)
            {
                nodes.Add(new(node, NodeProgress.Outdated, null));
                if (source is not null && report.State is AgentState.Waiting or AgentState.Failed) alreadyUnavailable.Add(node);
                continue;
            }
            nodes.Add(report.State switch
            {
                AgentState.Applied or AgentState.Planned => new NodeRollout(node, NodeProgress.Applied, null),
                AgentState.Failed => new NodeRollout(node, NodeProgress.Failed, report.Message),
                _ => new NodeRollout(node, NodeProgress.Pending, null),
            });
        }

        var max = MaxUnavailable.Resolve(rollout?.MaxUnavailable, nodes.Count);
        var failed = nodes.FirstOrDefault(n => n.Progress == NodeProgress.Failed);
        var paused = failed is not null && (rollout?.PauseOnFailure ?? true);
        var admit = new List<string>(alreadyUnavailable);
        var applying = nodes.Count(n => n.Progress == NodeProgress.Pending) + alreadyUnavailable.Count;
        var unavailableSet = alreadyUnavailable.ToHashSet(StringComparer.Ordinal);
        var outdated = nodes.Where(n => n.Progress == NodeProgress.Outdated && !unavailableSet.Contains(n.Node)).Select(n => n.Node);
        if (rollout?.DryRun == true)
            admit.AddRange(outdated); // plans change nothing on the node: no pacing needed
        else if (!paused && applying == 0)
            admit.AddRange(outdated.Take(max));
        return new RolloutPlan(nodes, admit, max, paused, failed);
    }
}

public static class MaxUnavailable
{
    /// <summary>A count, or a percentage of <paramref name="total"/> rounded down; at least 1. Default 1.</summary>
    public static int Resolve(IntOrString? value, int total)
    {
        var text = value?.Value;
        if (string.IsNullOrEmpty(text)) return 1;
        if (text.EndsWith('%') && int.TryParse(text[..^1], out var percent))
            return Math.Max(1, (int)((long)total * percent / 100));
        return int.TryParse(text, out var count) ? Math.Max(1, count) : 1;
    }
}
