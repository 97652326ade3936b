using k8s.Models;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

public sealed class StatusTests
{
    private static readonly DateTime T0 = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static RunReport Report(RunKind kind, string message = "m") => new(kind, null, null, [], message);

    private static V1Condition C(List<V1Condition> cs, string type) => cs.Single(c => c.Type == type);

    [Fact]
    public void Applied_ThenFailed_ThenReverted_MoveTheConditions()
    {
        var cs = new List<V1Condition>();
        StatusBuilder.ApplyConditions(cs, Report(RunKind.Applied), 3, T0);
        Assert.Equal(("True", "Applied"), (C(cs, "Applied").Status, C(cs, "Applied").Reason));
        Assert.Equal(("False", "AsExpected"), (C(cs, "Degraded").Status, C(cs, "Degraded").Reason));
        Assert.All(cs, c => Assert.Equal(3, c.ObservedGeneration));
        Assert.All(cs, c => Assert.False(string.IsNullOrEmpty(c.Message)));

        StatusBuilder.ApplyConditions(cs, Report(RunKind.Failed, "1 knobs failed: irq/35/affinity: EIO"), 4, T0.AddMinutes(1));
        Assert.Equal(("False", "ApplyFailed"), (C(cs, "Applied").Status, C(cs, "Applied").Reason));
        Assert.Equal(("True", "ApplyFailed"), (C(cs, "Degraded").Status, C(cs, "Degraded").Reason));
        Assert.Contains("EIO", C(cs, "Degraded").Message);

        StatusBuilder.ApplyConditions(cs, Report(RunKind.Reverted), 5, T0.AddMinutes(2));
        Assert.Equal(("True", "Reverted"), (C(cs, "Reverted").Status, C(cs, "Reverted").Reason));
        Assert.Equal("Reverted", C(cs, "Applied").Reason);
        Assert.Equal(["Applied", "Degraded", "Reverted"], cs.Select(c => c.Type));
    }

    [Fact]
    public void TransitionTime_ChangesOnlyWhenTheStatusDoes()
    {
        var cs = new List<V1Condition>();
        StatusBuilder.ApplyConditions(cs, Report(RunKind.Applied), 1, T0);
        StatusBuilder.ApplyConditions(cs, Report(RunKind.Applied), 2, T0.AddHours(1));
        Assert.Equal(T0, C(cs, "Applied").LastTransitionTime);
        StatusBuilder.ApplyConditions(cs, Report(RunKind.JournalCorrupt, "journal /var/lib/nettune/journal.json is corrupt"), 3, T0.AddHours(2));
        Assert.Equal(T0.AddHours(2), C(cs, "Applied").LastTransitionTime);
        Assert.Equal(("True", "JournalCorrupt"), (C(cs, "Degraded").Status, C(cs, "Degraded").Reason));
    }

    private static NetworkTuningNodeState State(long generation, bool revert = false, bool dryRun = false, long? observed = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "n", Generation = generation },
        Spec = new NodeStateSpec { NodeName = "n", Revert = revert, DryRun = dryRun },
        Status = new NodeStateStatus { ObservedGeneration = observed },
    };

    [Fact]
    public void NextStep_FollowsGenerationsRevertAndDrift()
    {
        Assert.Equal(AgentStep.Nothing, NextStep.Decide(null, null, null, false));
        Assert.Equal(AgentStep.Apply, NextStep.Decide(State(1), null, null, false));
        Assert.Equal(AgentStep.Apply, NextStep.Decide(State(2, observed: 1), 1, null, false));
        Assert.Equal(AgentStep.Nothing, NextStep.Decide(State(2, observed: 2), 2, null, false));
        Assert.Equal(AgentStep.CheckDrift, NextStep.Decide(State(2, observed: 2), 2, null, true));
        Assert.Equal(AgentStep.Nothing, NextStep.Decide(State(2, dryRun: true, observed: 2), 2, null, true));
        // A restarted agent applies again even when the status says the generation was applied.
        Assert.Equal(AgentStep.Apply, NextStep.Decide(State(2, observed: 2), null, null, true));
        Assert.Equal(AgentStep.Revert, NextStep.Decide(State(3, revert: true, observed: 2), 2, null, false));
        Assert.Equal(AgentStep.Nothing, NextStep.Decide(State(3, revert: true, observed: 3), null, 3, true));
        // A failed apply is retried at the interval, not on every status write.
        Assert.Equal(AgentStep.Apply, NextStep.Decide(State(2, observed: 2), 2, null, true, lastApplyFailed: true));
        Assert.Equal(AgentStep.Nothing, NextStep.Decide(State(2, observed: 2), 2, null, false, lastApplyFailed: true));
    }
}

public sealed class DriftDetectorTests
{
    [Fact]
    public void OnlyKnobsLeftAtTheirTargetsCountAsDrift()
    {
        using var host = FixtureHost.TwoSocket();
        var spec = Specs.Full();
        spec.Nic!.Channels = new ChannelsSpec { Combined = 64 }; // eth1 refuses: EINVAL, a failed knob
        var engine = host.Engine();
        var run = engine.Apply(spec);
        Assert.Equal(RunKind.Failed, run.Kind);
        host.Write("proc/sys/net/core/somaxconn", "4096");

        var changes = engine.PlanNow(spec).Plan.Changes;
        Assert.Contains(changes, c => c.Knob == "nic/eth1/channels");
        Assert.Equal(["sysctl/net.core.somaxconn"], DriftDetector.Drifted(changes, run.Knobs).Select(c => c.Knob));
    }
}
