using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Rollout;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class RolloutTests
{
    private static readonly string[] FiveNodes = ["n1", "n2", "n3", "n4", "n5"];

    [Theory]
    [InlineData(null, 5, 1)]
    [InlineData("1", 5, 1)]
    [InlineData("3", 5, 3)]
    [InlineData("40%", 5, 2)]
    [InlineData("10%", 5, 1)]
    [InlineData("100%", 7, 7)]
    [InlineData("50%", 1000, 500)]
    public void MaxUnavailableResolvesCountsAndPercentages(string? value, int total, int expected) =>
        Assert.Equal(expected, MaxUnavailable.Resolve(value is null ? null : (k8s.Models.IntOrString)value, total));

    private static RolloutPlan Plan(RolloutSpec rollout, long generation, params NetworkTuningNodeState[] states) =>
        RolloutPlanner.Plan("t", generation, rollout, FiveNodes, states.ToDictionary(s => s.Metadata.Name));

    private static RolloutSpec Max(string value, bool pause = true) => new() { MaxUnavailable = (k8s.Models.IntOrString)value, PauseOnFailure = pause };

    [Fact]
    public void BatchesWaitForThePreviousBatchToApply()
    {
        var first = Plan(Max("40%"), 1);
        Assert.Equal(["n1", "n2"], first.Admit);
        Assert.Equal(2, first.MaxUnavailable);

        // n1 applied, n2 still applying: no new batch.
        var waiting = Plan(Max("40%"), 1, State("n1", 1, Having("t", 1), "Applied"), State("n2", 1, Having("t", 1)));
        Assert.Empty(waiting.Admit);
        Assert.Equal(NodeProgress.Pending, waiting.Nodes.Single(n => n.Node == "n2").Progress);

        var next = Plan(Max("40%"), 1, State("n1", 1, Having("t", 1), "Applied"), State("n2", 1, Having("t", 1), "Applied"));
        Assert.Equal(["n3", "n4"], next.Admit);
        Assert.Equal(2, next.Applied);
        Assert.Equal(3, next.Pending);
    }

    [Fact]
    public void AnAgentReportForAnOlderNodeStateGenerationDoesNotCount()
    {
        // The operator wrote generation 2 of the NodeState; the agent's Applied is for generation 1.
        var state = State("n1", 1, Having("t", 3), "Applied");
        state.Metadata.Generation = 2;
        var plan = Plan(Max("1"), 3, state);
        Assert.Equal(NodeProgress.Pending, plan.Nodes[0].Progress);
        Assert.Empty(plan.Admit);
    }

    [Fact]
    public void AFailureWithPauseOnFailureStopsTheRollout()
    {
        var plan = Plan(Max("1"), 1, State("n1", 1, Having("t", 1), "Failed", "eth0 channels: EINVAL"));
        Assert.True(plan.Paused);
        Assert.Empty(plan.Admit);
        Assert.Equal("n1", plan.FailedNode!.Node);
        Assert.Equal("eth0 channels: EINVAL", plan.FailedNode.Message);
    }

    [Fact]
    public void AFailureWithoutPauseOnFailureLetsTheRolloutGoOn()
    {
        var plan = Plan(Max("1", pause: false), 1, State("n1", 1, Having("t", 1), "Failed", "boom"));
        Assert.False(plan.Paused);
        Assert.Equal(["n2"], plan.Admit);
        Assert.Equal(1, plan.Failed);
    }

    [Fact]
    public void ASpecChangeResumesAPausedRolloutStartingWithTheFailedNode()
    {
        // Generation 2 of the tuning: n1 failed generation 1, n2 applied generation 1.
        var plan = Plan(Max("1"), 2, State("n1", 1, Having("t", 1), "Failed", "boom"), State("n2", 1, Having("t", 1), "Applied"));
        Assert.False(plan.Paused);
        Assert.Equal(["n1"], plan.Admit);
    }

    [Fact]
    public void DryRunAdmitsEveryNodeAtOnceAndAPlanCountsAsDone()
    {
        var rollout = new RolloutSpec { MaxUnavailable = (k8s.Models.IntOrString)"1", DryRun = true };
        Assert.Equal(FiveNodes, Plan(rollout, 1).Admit);
        var spec = Having("t", 1);
        spec.DryRun = true;
        var planned = Plan(rollout, 1, State("n1", 1, spec, "DryRun"));
        Assert.Equal(NodeProgress.Applied, planned.Nodes[0].Progress);
    }
}
