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
        if (servedTunings.Any(t => t.Metadata.DeletionTimestamp is null && NodeSelection.Selects(t.Spec, node)))
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

/// <summary>
/// Whether a node carries <see cref="Names.NodeTunedLabel"/>, decided by the operator from the node's NodeState (the
/// agents have no write access to Nodes): on once the agent reports the current generation applied in the node's
/// current boot; off on a failure, a revert, a dry run, a change of boot, and when the NodeState is gone. While the
/// agent works on a newer generation the label stays as it was, as it did when the agent set it after each run.
/// </summary>
public static class TunedLabel
{
    public static bool Desired(V1Node node, NetworkTuningNodeState? state, bool labelled)
    {
        if (state is null || state.Spec.Revert || state.Spec.Sources is not { Count: > 0 }) return false;
        if (!SameBoot(node, state)) return false;
        var generation = state.Metadata.Generation ?? 0;
        return AgentProgress.Of(state).State switch
        {
            AgentState.Applied => true,
            AgentState.Waiting => labelled && (state.Status?.ObservedGeneration != generation || Applying(state)),
            _ => false,
        };
    }

    /// <summary>The status describes the node's current boot, as far as both sides tell (simulated nodes and old agents do not).</summary>
    public static bool SameBoot(V1Node node, NetworkTuningNodeState state) =>
        node.Status?.NodeInfo?.BootID is not { Length: > 0 } nodeBoot || state.Status?.BootId is not { Length: > 0 } stateBoot || nodeBoot == stateBoot;

    private static bool Applying(NetworkTuningNodeState state) =>
        state.Status?.Conditions?.FirstOrDefault(c => c.Type == ConditionTypes.Applied)?.Reason == ConditionReasons.Applying;

    public static bool HasLabel(V1Node node) =>
        node.Metadata.Labels?.TryGetValue(Names.NodeTunedLabel, out var value) == true && value == NodeLabels.TunedValue;
}
