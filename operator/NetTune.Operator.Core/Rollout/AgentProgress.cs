using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Rollout;

public enum AgentState
{
    /// <summary>The agent has not reported on the NodeState's current generation yet.</summary>
    Waiting,
    Applied,
    /// <summary>Dry run: the agent published its plan for the current generation.</summary>
    Planned,
    Failed,
    Reverted,
}

public sealed record AgentReport(AgentState State, string? Message);

/// <summary>Reads where a node's agent is with the NodeState's current generation from the status it writes.</summary>
public static class AgentProgress
{
    public static AgentReport Of(NetworkTuningNodeState state)
    {
        var generation = state.Metadata.Generation ?? 0;
        var status = state.Status;
        if (status is null || status.ObservedGeneration != generation) return new(AgentState.Waiting, null);
        var applied = Find(status, ConditionTypes.Applied);
        var degraded = Find(status, ConditionTypes.Degraded);
        if (state.Spec.Revert)
        {
            var reverted = Find(status, ConditionTypes.Reverted);
            if (reverted?.Status == ConditionStatus.True) return new(AgentState.Reverted, reverted.Message);
            if (reverted?.Reason == ConditionReasons.RevertFailed || degraded?.Status == ConditionStatus.True)
                return new(AgentState.Failed, reverted?.Message ?? degraded?.Message);
            return new(AgentState.Waiting, null);
        }
        if (degraded?.Status == ConditionStatus.True)
            return new(AgentState.Failed, degraded.Message ?? degraded.Reason);
        if (applied is { Status: ConditionStatus.False, Reason: ConditionReasons.ApplyFailed or ConditionReasons.JournalCorrupt })
            return new(AgentState.Failed, applied.Message ?? applied.Reason);
        if (state.Spec.DryRun && applied?.Reason == ConditionReasons.DryRun) return new(AgentState.Planned, null);
        if (applied?.Status == ConditionStatus.True && status.LastAppliedGeneration == generation) return new(AgentState.Applied, null);
        return new(AgentState.Waiting, null);
    }

    private static k8s.Models.V1Condition? Find(NodeStateStatus status, string type) =>
        status.Conditions?.FirstOrDefault(c => c.Type == type);
}
