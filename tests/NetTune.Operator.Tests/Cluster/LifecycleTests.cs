using k8s;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

[Collection("cluster")]
public sealed class LifecycleTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static NodeTopology TwoSockets() => new()
    {
        NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-3" }, new NumaNodeInfo { Id = 1, Cpus = "4-7" }],
        OnlineCpus = "0-7",
    };

    [Fact]
    public async Task DataPlanePodsRunPerSocketOnAppliedNodes()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        foreach (var node in nodes) await bed.SetAllocatableAsync(node, ("cpu", "8"), ("hugepages-2Mi", "256Mi"), ("memory", "16Gi"), ("pods", "110"));
        await bed.StartOperatorAsync();
        bed.StartAgents(_ => TwoSockets());
        var name = (await bed.CreateTuningAsync("dp", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth*"] }, IrqAffinity = new IrqAffinitySpec { ReservedCpus = "0" } },
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64 }],
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = "nettune/dataplane:test", Port = 8080, AdminPort = 9180,
                StaticFiles = new StaticFilesSpec { HostPath = "/srv/www" },
            },
        })).Metadata.Name;

        var pods = await TestBed.EventuallyAsync(async () => (await bed.Client.CoreV1.ListNamespacedPodAsync(bed.Namespace, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}")).Items,
            p => p!.Count == 4, "4 data-plane pods");
        foreach (var node in nodes)
        {
            var socket0 = pods.Single(p => p.Metadata.Name == $"{name}-dp-{node}-numa0");
            var socket1 = pods.Single(p => p.Metadata.Name == $"{name}-dp-{node}-numa1");
            Assert.Equal(node, DataPlanePodBuilder.NodeOf(socket0));
            Assert.True(socket0.Spec.HostNetwork);
            var c0 = socket0.Spec.Containers.Single();
            var c1 = socket1.Spec.Containers.Single();
            // CPU 0 is reserved; 8 allocatable less the agent's 20m is 7 whole CPUs, 3 per socket.
            Assert.Equal("3", c0.Resources.Limits["cpu"].ToString());
            Assert.Equal("3", c1.Resources.Requests["cpu"].ToString());
            Assert.Equal("128Mi", c1.Resources.Requests["hugepages-2Mi"].ToString());
            Assert.DoesNotContain("--cpus", c1.Args);
            Assert.Equal("/readyz", c1.ReadinessProbe.HttpGet.Path);
            Assert.Equal(name, socket1.Metadata.OwnerReferences.Single().Name);
            // The API server computes the QoS class from the resources.
            Assert.Equal("Guaranteed", socket1.Status.QosClass);
        }

        // Switching the data plane off removes them.
        await bed.UpdateTuningAsync(name, s => s.DataPlane!.Enabled = false);
        await TestBed.EventuallyAsync(async () => (await bed.Client.CoreV1.ListNamespacedPodAsync(bed.Namespace, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}")).Items,
            p => p!.Count == 0, "no data-plane pods");
    }

    [Fact]
    public async Task DeleteRevertsEveryNodeThenDropsTheFinalizer()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(3);
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("del", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["vm.swappiness"] = "5" },
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        })).Metadata.Name;
        bed.StartAgents();
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 3, "3 applied");
        await bed.StopAgentsAsync();

        await bed.DeleteTuningAsync(name);
        var states = await TestBed.EventuallyAsync(bed.NodeStatesAsync, s => s!.Values.All(n => n.Spec.Revert), "every node asked to revert");
        Assert.All(states.Values, s => Assert.Null(s.Spec.Sources));
        var waiting = await bed.WaitForTuningAsync(name, t => t.Status?.RevertingNodes?.Count == 3, "3 reverting");
        Assert.NotNull(waiting.Metadata.DeletionTimestamp); // held by the finalizer

        await bed.ReportAsync(nodes[0]);
        await bed.ReportAsync(nodes[1]);
        await bed.WaitForTuningAsync(name, t => t.Status?.RevertingNodes?.SequenceEqual([nodes[2]]) == true, "one node left");
        await bed.ReportAsync(nodes[2]);
        await TestBed.EventuallyAsync(async () => await bed.GetTuningAsync(name) is null, "the tuning is gone");
        Assert.Contains(await bed.EventsAsync(name), e => e.Reason == "Reverted");
    }

    [Fact]
    public async Task ANodeThatNeverAnswersTheRevertIsReportedAndKeepsItsAgentUntilItReverts()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        await bed.StartOperatorAsync(bed.FastOptions() with { RevertTimeout = TimeSpan.FromSeconds(4) });
        var name = (await bed.CreateTuningAsync("silent", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["vm.swappiness"] = "5" },
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        })).Metadata.Name;
        bed.StartAgents();
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 2, "2 applied");
        await bed.StopAgentsAsync();
        bed.StartAgents(silent: nodes[1]);

        await bed.DeleteTuningAsync(name);
        await TestBed.EventuallyAsync(async () => await bed.GetTuningAsync(name) is null, "the tuning is gone after the timeout");
        var warning = Assert.Single(await bed.EventsAsync(name), e => e.Reason == "RevertTimedOut");
        Assert.Equal("Warning", warning.Type);
        Assert.Contains(nodes[1], warning.Message);
        Assert.DoesNotContain(nodes[0], warning.Message);

        // The last tuning is gone but the silent node is not reverted: it keeps its agent label, and the agent DaemonSet
        // (owned by nothing) stays. The garbage collector and the DaemonSet controller act within moments; the agent
        // must still be there after many looks.
        await TestBed.EventuallyAsync(async () => !await AgentPlacementTests.LabelledAsync(bed, nodes[0]), "the reverted node's agent label removed");
        await TestBed.EventuallyAsync(async () => (await AgentPlacementTests.AgentPodNodesAsync(bed)).Contains(nodes[1]), "an agent pod on the silent node");
        for (var look = 0; look < 30; look++)
        {
            Assert.True(await AgentPlacementTests.LabelledAsync(bed, nodes[1]));
            Assert.Contains(nodes[1], await AgentPlacementTests.AgentPodNodesAsync(bed));
            await Task.Delay(100);
        }
        var state = (await bed.GetNodeStateAsync(nodes[1]))!;
        Assert.True(state.Spec.Revert);
        Assert.Null(state.Spec.Sources);

        // The agent is back and reverts: then, with nothing left to revert anywhere, everything of the agents goes.
        await bed.StopAgentsAsync();
        bed.StartAgents();
        await TestBed.EventuallyAsync(async () => !await AgentPlacementTests.LabelledAsync(bed, nodes[1]), "the label removed after the late revert");
        await TestBed.EventuallyAsync(async () => (await bed.Client.AppsV1.ListNamespacedDaemonSetAsync(bed.Namespace)).Items.Count == 0
                                                  && (await bed.Client.CoreV1.ListNamespacedServiceAccountAsync(bed.Namespace)).Items.All(a => a.Metadata.Name != Names.AgentServiceAccount),
            "the agent DaemonSet and ServiceAccount deleted");
    }
}
