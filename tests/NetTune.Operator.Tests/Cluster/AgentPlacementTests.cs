using k8s;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// An agent stays on its node until the node reported Reverted: the DaemonSet follows a node label the operator
/// manages, not the tunings' selectors (the cluster's DaemonSet controller creates and removes the agent pods).
/// </summary>
[Collection("cluster")]
public sealed class AgentPlacementTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static async Task<bool> LabelledAsync(TestBed bed, string node) =>
        (await bed.Client.CoreV1.ReadNodeAsync(node)).Metadata.Labels?.TryGetValue(Names.AgentNodeLabel, out var v) == true && v == "true";

    /// <summary>The nodes the DaemonSet controller made agent pods for.</summary>
    private static async Task<HashSet<string>> AgentPodNodesAsync(TestBed bed) =>
        (await bed.Client.CoreV1.ListNamespacedPodAsync(bed.Namespace, labelSelector: $"{Names.AppName}={Names.AgentApp}")).Items
            .Where(p => p.Metadata.DeletionTimestamp is null).Select(DataPlanePodBuilder.NodeOf).ToHashSet();

    [Fact]
    public async Task ANodeRelabelledOutKeepsItsAgentUntilItReportedReverted()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2, ("nettune.io/role", "web"));
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("leave", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(("nettune.io/role", "web")),
            Sysctls = new() { ["vm.swappiness"] = "5" },
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        })).Metadata.Name;
        bed.StartAgents();
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 2, "2 applied");
        await TestBed.EventuallyAsync(async () => await LabelledAsync(bed, nodes[0]) && await LabelledAsync(bed, nodes[1]), "both nodes labelled for an agent");
        await TestBed.EventuallyAsync(async () => (await AgentPodNodesAsync(bed)).SetEquals(nodes), "an agent pod on each node");
        await bed.StopAgentsAsync();

        // Out of the selector: the node is asked to revert, and its agent must stay to do it.
        await bed.SetNodeLabelAsync(nodes[1], "nettune.io/role", "db");
        await TestBed.EventuallyAsync(async () => (await bed.GetNodeStateAsync(nodes[1]))!.Spec.Revert, "the node asked to revert");
        await bed.WaitForTuningAsync(name, t => t.Status?.MatchedNodes == 1, "one node matched");
        // The DaemonSet controller acts on node updates within moments; the agent must still be there after many looks.
        for (var look = 0; look < 20; look++)
        {
            Assert.True(await LabelledAsync(bed, nodes[1]));
            Assert.Contains(nodes[1], await AgentPodNodesAsync(bed));
            await Task.Delay(100);
        }

        // Reverted: now the label goes, and with it the agent pod.
        await bed.ReportAsync(nodes[1]);
        await TestBed.EventuallyAsync(async () => !await LabelledAsync(bed, nodes[1]), "the label removed after the revert");
        await TestBed.EventuallyAsync(async () => !(await AgentPodNodesAsync(bed)).Contains(nodes[1]), "the agent pod gone from the reverted node");
        Assert.True(await LabelledAsync(bed, nodes[0]));
        Assert.Contains(nodes[0], await AgentPodNodesAsync(bed));
    }

    /// <summary>
    /// The last tuning deleted while a node's agent is down: the deletion gives up on that node after the revert
    /// timeout, but the node keeps its agent label and the DaemonSet (owned by nothing) stays, so the agent, once back,
    /// reverts the node; only then do the label, the DaemonSet and its ServiceAccount go.
    /// </summary>
    [Fact]
    public async Task ANodeWhoseAgentWasDownWhenTheLastTuningWentKeepsItsAgentUntilItReverted()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        await bed.StartOperatorAsync(bed.FastOptions() with { RevertTimeout = TimeSpan.FromSeconds(3) });
        var name = (await bed.CreateTuningAsync("down", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["vm.swappiness"] = "5" },
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        })).Metadata.Name;
        bed.StartAgents();
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 2, "2 applied");
        await TestBed.EventuallyAsync(async () => (await AgentPodNodesAsync(bed)).SetEquals(nodes), "an agent pod on each node");
        await bed.StopAgentsAsync();
        bed.StartAgents(silent: nodes[1]);

        await bed.DeleteTuningAsync(name);
        await TestBed.EventuallyAsync(async () => await bed.GetTuningAsync(name) is null, "the tuning gone after the revert timeout");
        await TestBed.EventuallyAsync(async () => !await LabelledAsync(bed, nodes[0]), "the reverted node's agent label removed");
        // The garbage collector and the DaemonSet controller act within moments; the agent must still be there after many looks.
        for (var look = 0; look < 30; look++)
        {
            Assert.True(await LabelledAsync(bed, nodes[1]));
            Assert.Contains(nodes[1], await AgentPodNodesAsync(bed));
            await Task.Delay(100);
        }
        var state = (await bed.GetNodeStateAsync(nodes[1]))!;
        Assert.True(state.Spec.Revert);
        Assert.Null(state.Spec.Sources);

        // The agent is back and reverts: then, with nothing left to revert anywhere, everything of the agents goes.
        await bed.StopAgentsAsync();
        bed.StartAgents();
        await TestBed.EventuallyAsync(async () => !await LabelledAsync(bed, nodes[1]), "the label removed after the late revert");
        await TestBed.EventuallyAsync(async () => (await bed.Client.AppsV1.ListNamespacedDaemonSetAsync(bed.Namespace)).Items.Count == 0
                                                  && (await bed.Client.CoreV1.ListNamespacedServiceAccountAsync(bed.Namespace)).Items.All(a => a.Metadata.Name != Names.AgentServiceAccount),
            "the agent DaemonSet and ServiceAccount deleted");
    }
}
