using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

[Collection("cluster")]
public sealed class RolloutTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static NetworkTuningSpec Spec(TestBed bed, string maxUnavailable, string somaxconn = "4096") => new()
    {
        NodeSelector = bed.Selector(),
        Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = somaxconn },
        Rollout = new RolloutSpec { MaxUnavailable = maxUnavailable, PauseOnFailure = true },
    };

    /// <summary>Nodes whose NodeState carries the tuning's generation.</summary>
    private static List<string> Admitted(Dictionary<string, NetworkTuningNodeState> states, string tuning, long generation) =>
        states.Values.Where(s => TestBed.Has(s, tuning, generation)).Select(s => s.Metadata.Name).Order().ToList();

    /// <summary>
    /// Plays the agents batch by batch: waits for the operator to admit a batch, checks its size, then (after the
    /// operator has seen the status, so it could have admitted more) that no other node got the generation early.
    /// </summary>
    private static async Task<List<int>> RollOutAsync(TestBed bed, string tuning, long generation, int nodes)
    {
        var batches = new List<int>();
        var done = new HashSet<string>();
        while (done.Count < nodes)
        {
            // The operator announces a batch once all of its NodeStates are written.
            var announced = batches.Count + 1;
            await TestBed.EventuallyAsync(async () => (await bed.EventsAsync(tuning)).Count(e =>
                    e.Reason == "BatchStarted" && e.Message.StartsWith($"generation {generation} goes", StringComparison.Ordinal)) >= announced,
                $"batch {announced} of generation {generation}");
            var batch = Admitted(await bed.NodeStatesAsync(), tuning, generation).Except(done).ToList();
            batches.Add(batch.Count);
            // Apply all but the last of the batch: the operator must not move on while one is still applying.
            foreach (var node in batch.SkipLast(1)) await bed.ReportAsync(node);
            var applied = done.Count + batch.Count - 1;
            await bed.WaitForTuningAsync(tuning, t => t.Status?.AppliedNodes == applied && t.Status.ObservedGeneration == generation, $"{applied} applied");
            Assert.Equal(batch.Count + done.Count, Admitted(await bed.NodeStatesAsync(), tuning, generation).Count);
            await bed.ReportAsync(batch[^1]);
            done.UnionWith(batch);
        }
        return batches;
    }

    [Theory]
    [InlineData("1", new[] { 1, 1, 1, 1, 1 })]
    [InlineData("40%", new[] { 2, 2, 1 })]
    public async Task ANewGenerationGoesOutInBatchesOfMaxUnavailable(string maxUnavailable, int[] expected)
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(5);
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("pace", Spec(bed, maxUnavailable))).Metadata.Name;

        Assert.Equal(expected, await RollOutAsync(bed, name, 1, 5));
        var ready = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready");
        Assert.Equal(5, ready.Status!.AppliedNodes);

        // A spec change rolls out the same way.
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "8192");
        Assert.Equal(expected, await RollOutAsync(bed, name, 2, 5));
        Assert.All((await bed.NodeStatesAsync()).Values, s => Assert.Equal("8192", s.Spec.Sysctls!["net.core.somaxconn"]));
        var events = await bed.EventsAsync(name);
        Assert.Equal(expected.Length * 2, events.Count(e => e.Reason == "BatchStarted"));
        Assert.Equal((expected.Length - 1) * 2, events.Count(e => e.Reason == "BatchApplied"));
    }

    [Fact]
    public async Task AFailedNodePausesTheRolloutUntilTheSpecChanges()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(3);
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("pause", Spec(bed, "1"))).Metadata.Name;

        var first = (await TestBed.EventuallyAsync(bed.NodeStatesAsync, s => Admitted(s!, name, 1).Count == 1, "first node"))
            .Values.Single(s => TestBed.Has(s, name, 1)).Metadata.Name;
        await bed.ReportAsync(first, "Failed", "net.core.somaxconn: write failed: EINVAL");

        var paused = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Degraded")?.Status == "True", "Degraded");
        var degraded = TestBed.Condition(paused, "Degraded")!;
        Assert.Equal("RolloutPaused", degraded.Reason);
        Assert.Contains(first, degraded.Message);
        Assert.Contains("EINVAL", degraded.Message);
        Assert.Equal("False", TestBed.Condition(paused, "Progressing")!.Status);
        Assert.Equal(1, paused.Status!.FailedNodes);
        Assert.Single(Admitted(await bed.NodeStatesAsync(), name, 1)); // nothing else went out
        // The event is recorded after the status write that the wait above saw.
        await TestBed.EventuallyAsync(() => bed.EventsAsync(name), events => events.Any(e => e.Reason == "RolloutPaused" && e.Type == "Warning"), "the RolloutPaused event");

        // A new spec resumes, starting with the failed node.
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "2048");
        await TestBed.EventuallyAsync(bed.NodeStatesAsync, s => Admitted(s!, name, 2).SequenceEqual([first]), "the failed node gets generation 2");
        bed.StartAgents();
        var ready = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready after resume");
        Assert.Equal(("False", 3), (TestBed.Condition(ready, "Degraded")!.Status, ready.Status!.AppliedNodes));
    }
}

[Collection("cluster")]
public sealed class DryRunTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task DryRunSendsPlansToEveryNodeAtOnce()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(4);
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("plan", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["net.core.somaxconn"] = "4096" },
            Rollout = new RolloutSpec { MaxUnavailable = "1", DryRun = true },
        })).Metadata.Name;

        // No pacing for plans: all four get the generation before any agent answered.
        var states = await TestBed.EventuallyAsync(bed.NodeStatesAsync, s => s.Count == 4 && s.Values.All(n => TestBed.Has(n, name, 1)), "4 NodeStates");
        Assert.All(states.Values, s => Assert.True(s.Spec.DryRun));
        bed.StartAgents();
        var ready = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready with plans");
        Assert.Equal(4, ready.Status!.AppliedNodes);

        // Leaving dry run rolls the same settings out for real, one node at a time again.
        await bed.UpdateTuningAsync(name, s => s.Rollout!.DryRun = false);
        await Specs.ConvergedAsync(bed, name, 2, 4);
        Assert.All((await bed.NodeStatesAsync()).Values, s => Assert.False(s.Spec.DryRun));
        Assert.Equal(4, (await bed.EventsAsync(name)).Count(e => e.Reason == "BatchStarted" && e.Message.StartsWith("generation 2", StringComparison.Ordinal)));
    }
}
