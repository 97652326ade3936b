using NetTune.Api.V1Alpha1;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>Deleting a NetworkTuning reverts its nodes like a rollout: in batches of maxUnavailable, pausing on a failure.</summary>
[Collection("cluster")]
public sealed class PacedRevertTests(ClusterFixture fx, ITestOutputHelper output)
{
    /// <summary>Nodes asked to revert whose agent has not reported Reverted for that generation.</summary>
    private static List<string> Reverting(Dictionary<string, NetworkTuningNodeState> states) =>
        states.Values.Where(s => s.Spec.Revert && !(s.Status?.ObservedGeneration == s.Metadata.Generation
                                                    && s.Status!.Conditions?.Any(c => c.Type == "Reverted" && c.Status == "True") == true))
            .Select(s => s.Metadata.Name).Order().ToList();

    [Fact]
    public async Task ADeleteRevertsAtMostMaxUnavailableNodesAtATimeAndPausesOnAFailedRevert()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(5);
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("paced", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["vm.swappiness"] = "5" },
            Rollout = new RolloutSpec { MaxUnavailable = "2", PauseOnFailure = true },
        })).Metadata.Name;
        bed.StartAgents();
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 5, "5 applied");
        await bed.StopAgentsAsync();

        // The agents: each reverts a node 600 ms after it is asked to; node 2's first revert fails. A watcher samples
        // how many nodes are reverting at once.
        var asked = new Dictionary<string, DateTime>();
        var failedOnce = false;
        var most = 0;
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var agents = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var states = await bed.NodeStatesAsync();
                var reverting = Reverting(states);
                most = Math.Max(most, reverting.Count);
                foreach (var node in reverting)
                {
                    if (!asked.TryGetValue(node, out var since))
                    {
                        asked[node] = DateTime.UtcNow;
                        order.Enqueue(node);
                        continue;
                    }
                    if (DateTime.UtcNow - since < TimeSpan.FromMilliseconds(600)) continue;
                    if (node == nodes[1] && !failedOnce)
                    {
                        if (states[node].Status?.ObservedGeneration == states[node].Metadata.Generation) continue; // failed already
                        failedOnce = true;
                        await bed.ReportAsync(node, "Failed", "revert: device busy");
                        continue;
                    }
                    if (node == nodes[1]) continue; // held failed until the test lets it revert
                    await bed.ReportAsync(node);
                }
                await Task.Delay(50);
            }
        });
        try
        {
            await bed.DeleteTuningAsync(name);
            var paused = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Progressing")?.Reason == "RevertPaused", "the revert paused by the failed node");
            Assert.Contains(nodes[1], TestBed.Condition(paused, "Progressing")!.Message);
            // Paused: nobody else is asked while the failure stands (a node asked before the failure was known goes on).
            static async Task<List<string>> AskedAsync(TestBed bed) => (await bed.NodeStatesAsync()).Values.Where(s => s.Spec.Revert).Select(s => s.Metadata.Name).Order().ToList();
            var before = await AskedAsync(bed);
            Assert.True(before.Count < nodes.Count, $"every node was asked before the pause: {string.Join(", ", before)}");
            for (var look = 0; look < 20; look++)
            {
                Assert.Equal(before, await AskedAsync(bed));
                await Task.Delay(100);
            }

            // Node 1 reverts on its own retry: the revert goes on, two at a time, until the finalizer goes.
            await bed.ReportAsync(nodes[1]);
            await TestBed.EventuallyAsync(async () => await bed.GetTuningAsync(name) is null, "the tuning gone after every node reverted", TimeSpan.FromSeconds(60));
        }
        finally
        {
            stop.Cancel();
            await agents;
        }
        Assert.Equal(nodes, order.Order());
        Assert.True(most <= 2, $"{most} nodes reverted at once with maxUnavailable 2");
        Assert.Equal(2, most);
        Assert.All((await bed.NodeStatesAsync()).Values, s => Assert.True(s.Spec.Revert));
    }
}
