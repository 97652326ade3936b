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
    internal static async Task<bool> LabelledAsync(TestBed bed, string node) =>
        (await bed.Client.CoreV1.ReadNodeAsync(node)).Metadata.Labels?.TryGetValue(Names.AgentNodeLabel, out var v) == true && v == "true";

    /// <summary>The nodes the DaemonSet controller made agent pods for.</summary>
    internal static async Task<HashSet<string>> AgentPodNodesAsync(TestBed bed) =>
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
}
