using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Rollout;
using NetTune.Operator.Core.Selection;

namespace NetTune.Operator.Core.Builders;

/// <summary>
/// Which nodes need an agent: those a served tuning selects, and those whose NodeState still holds a tuning or a
/// revert the agent has not reported done. The operator labels them (<see cref="Names.AgentNodeLabel"/>) and the agent
/// DaemonSet runs on the label, so an agent leaves a node only after its revert.
/// </summary>
public static class AgentPlacement
{
    public const string LabelValue = "true";

    public static bool NeedsAgent(V1Node node, IEnumerable<NetworkTuning> servedTunings, NetworkTuningNodeState? state)
    {
        if (node.Metadata.DeletionTimestamp is not null) return false;
        if (servedTunings.Any(t => t.Metadata.DeletionTimestamp is null && LabelSelectorMatcher.Matches(t.Spec.NodeSelector, node.Metadata.Labels)))
            return true;
        return state is not null && !Settled(state);
    }

    /// <summary>
    /// A NodeState with nothing left for the agent: no tuning in its spec, and either a revert the agent reported for
    /// this generation or nothing ever applied (no status).
    /// </summary>
    public static bool Settled(NetworkTuningNodeState state)
    {
        if (state.Spec.Sources is { Count: > 0 }) return false;
        if (state.Status is null) return true;
        if (!state.Spec.Revert) return false;
        return AgentProgress.Of(state).State == AgentState.Reverted;
    }

    public static bool HasLabel(V1Node node) =>
        node.Metadata.Labels?.TryGetValue(Names.AgentNodeLabel, out var value) == true && value == LabelValue;
}
