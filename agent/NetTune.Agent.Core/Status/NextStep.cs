using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

public enum AgentStep { Nothing, Apply, Revert, CheckDrift }

/// <summary>What the agent does next with its NodeState, decided from the object and what this process last did.</summary>
public static class NextStep
{
    /// <param name="appliedGeneration">The generation this process last applied (or dry-ran), null after start or a revert.</param>
    /// <param name="revertedGeneration">The generation this process last reverted successfully.</param>
    /// <param name="driftTick">True when the drift interval elapsed, false when the object changed.</param>
    /// <param name="lastApplyFailed">The last apply left knobs failed or short: the interval retries the whole apply.</param>
    public static AgentStep Decide(NetworkTuningNodeState? state, long? appliedGeneration, long? revertedGeneration, bool driftTick, bool lastApplyFailed = false)
    {
        if (state is null) return AgentStep.Nothing;
        var generation = state.Metadata.Generation ?? 0;
        if (state.Spec.Revert)
            // After a revert the agent owns no knob, so there is no drift to look for.
            return revertedGeneration == generation ? AgentStep.Nothing : AgentStep.Revert;
        // A new generation, or a status someone else rewrote, is applied again (apply is idempotent).
        if (appliedGeneration != generation || state.Status?.ObservedGeneration != generation) return AgentStep.Apply;
        if (!driftTick || state.Spec.DryRun) return AgentStep.Nothing;
        // Memory for hugepages frees up, a NIC comes back: a failed apply is worth another try at each interval.
        return lastApplyFailed ? AgentStep.Apply : AgentStep.CheckDrift;
    }
}

public static class DriftDetector
{
    /// <summary>
    /// The planned changes that are drift: knobs the last run left at their targets. A knob that failed, fell short or
    /// that the kernel manages shows up in every plan, but nobody changed it behind the agent's back.
    /// </summary>
    public static IReadOnlyList<Planning.DesiredKnob> Drifted(IEnumerable<Planning.DesiredKnob> changes, IEnumerable<KnobResult> lastResults)
    {
        var applied = lastResults.Where(k => k.Result == KnobOutcome.Applied).Select(k => k.Knob).ToHashSet(StringComparer.Ordinal);
        return changes.Where(c => applied.Contains(c.Knob)).ToArray();
    }
}
