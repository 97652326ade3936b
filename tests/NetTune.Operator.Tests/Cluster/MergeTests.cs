using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

[Collection("cluster")]
public sealed class MergeTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static NetworkTuningSpec Spec(TestBed bed, int priority, Dictionary<string, string> sysctls) => new()
    {
        NodeSelector = bed.Selector(),
        Priority = priority,
        Sysctls = sysctls,
        Rollout = new RolloutSpec { MaxUnavailable = "100%" },
    };

    [Fact]
    public async Task HigherPriorityWinsPerKnobAndEqualPrioritiesConflict()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        await bed.StartOperatorAsync();
        bed.StartAgents();

        var high = (await bed.CreateTuningAsync("high", Spec(bed, 10, new() { ["net.core.somaxconn"] = "4096" }))).Metadata.Name;
        var low = (await bed.CreateTuningAsync("low", Spec(bed, 1, new() { ["net.core.somaxconn"] = "1024", ["vm.swappiness"] = "10" }))).Metadata.Name;

        await TestBed.EventuallyAsync(bed.NodeStatesAsync, s => s!.Count == 2 && s.Values.All(n => TestBed.Has(n, high, 1) && TestBed.Has(n, low, 1)),
            "both tunings on both nodes");
        foreach (var state in (await bed.NodeStatesAsync()).Values)
        {
            Assert.Equal("4096", state.Spec.Sysctls!["net.core.somaxconn"]);
            Assert.Equal("10", state.Spec.Sysctls["vm.swappiness"]);
            Assert.Equal(["sysctl/net.core.somaxconn"], state.Spec.Sources!.Single(s => s.Name == high).Knobs);
            Assert.Equal(["sysctl/vm.swappiness"], state.Spec.Sources!.Single(s => s.Name == low).Knobs);
        }
        await bed.WaitForTuningAsync(high, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready");
        Assert.Equal("False", TestBed.Condition((await bed.GetTuningAsync(high))!, "Conflict")!.Status);

        // An equal-priority tuning that wants another value: both report the conflict; the nodes keep 4096.
        var rival = (await bed.CreateTuningAsync("rival", Spec(bed, 10, new() { ["net.core.somaxconn"] = "8192" }))).Metadata.Name;
        var rivalState = await bed.WaitForTuningAsync(rival, t => TestBed.Condition(t, "Conflict")?.Status == "True", "Conflict on the rival");
        Assert.Contains(high, TestBed.Condition(rivalState, "Conflict")!.Message);
        var highState = await bed.WaitForTuningAsync(high, t => TestBed.Condition(t, "Conflict")?.Status == "True", "Conflict on high");
        Assert.Equal("KnobConflict", TestBed.Condition(highState, "Conflict")!.Reason);
        Assert.Contains(rival, TestBed.Condition(highState, "Conflict")!.Message);

        await TestBed.EventuallyAsync(bed.NodeStatesAsync, s => s!.Values.All(n => TestBed.Has(n, rival, 1)), "the rival reaches the nodes");
        Assert.All((await bed.NodeStatesAsync()).Values, s => Assert.Equal("4096", s.Spec.Sysctls!["net.core.somaxconn"]));

        // The conflict ends when the rival steps down a priority.
        await bed.UpdateTuningAsync(rival, s => s.Priority = 5);
        await bed.WaitForTuningAsync(high, t => TestBed.Condition(t, "Conflict")?.Status == "False", "conflict cleared");
        Assert.Equal(nodes.Count, (await bed.NodeStatesAsync()).Count);
    }

    [Fact]
    public async Task ANodeLabelChangeMovesTheNodeInAndOut()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var tuned = await bed.CreateNodesAsync(2, ("tier", "fast"));
        var outside = (await bed.CreateNodesAsync(1, ("tier", "slow")))[0];
        await bed.StartOperatorAsync();
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("labels", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(("tier", "fast")),
            Sysctls = new() { ["net.core.somaxconn"] = "4096" },
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        })).Metadata.Name;
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 2, "2 applied");
        Assert.Null(await bed.GetNodeStateAsync(outside));

        await bed.SetNodeLabelAsync(outside, "tier", "fast");
        await bed.WaitForTuningAsync(name, t => t.Status?.MatchedNodes == 3 && t.Status.AppliedNodes == 3, "the relabelled node joins");
        Assert.Equal("4096", (await bed.GetNodeStateAsync(outside))!.Spec.Sysctls!["net.core.somaxconn"]);

        await bed.SetNodeLabelAsync(tuned[0], "tier", null);
        var left = await TestBed.EventuallyAsync(() => bed.GetNodeStateAsync(tuned[0]), s => s?.Spec.Revert == true, "the node that left reverts");
        Assert.Null(left!.Spec.Sources);
        Assert.Null(left.Spec.Sysctls);
        await bed.WaitForTuningAsync(name, t => t.Status?.MatchedNodes == 2, "2 matched");
    }
}
