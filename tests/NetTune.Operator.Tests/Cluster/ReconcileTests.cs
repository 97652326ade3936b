using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

[Collection("cluster")]
public sealed class ReconcileTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static Dictionary<string, string> Sysctl(string key, string value) => new() { [key] = value };

    [Fact]
    public async Task CreateMakesTheAgentDaemonSetAndANodeStatePerSelectedNode()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(5, ("role", "edge"));
        var other = (await bed.CreateNodesAsync(1, ("role", "core")))[0];
        await bed.StartOperatorAsync();
        bed.StartAgents();

        var tuning = await bed.CreateTuningAsync("basic", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(("role", "edge")),
            Sysctls = Sysctl("net.core.somaxconn", "4096"),
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        });
        var name = tuning.Metadata.Name;

        var ready = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready");
        Assert.Equal(5, ready.Status!.MatchedNodes);
        Assert.Equal(5, ready.Status.AppliedNodes);
        Assert.Equal(ready.Metadata.Generation, ready.Status.ObservedGeneration);
        Assert.Equal("RolloutComplete", TestBed.Condition(ready, "Ready")!.Reason);
        Assert.Equal("False", TestBed.Condition(ready, "Degraded")!.Status);
        Assert.Contains(Names.Finalizer, ready.Metadata.Finalizers);

        var states = await bed.NodeStatesAsync();
        Assert.Equal(nodes.Order(), states.Keys.Order());
        foreach (var node in nodes)
        {
            var state = states[node];
            Assert.Equal(node, state.Spec.NodeName);
            Assert.Equal("4096", state.Spec.Sysctls!["net.core.somaxconn"]);
            Assert.True(TestBed.Has(state, name, 1));
            Assert.Equal("Node", Assert.Single(state.Metadata.OwnerReferences).Kind);
        }
        Assert.False(states.ContainsKey(other));

        var ds = await bed.Client.AppsV1.ReadNamespacedDaemonSetAsync(Names.AgentDaemonSet, bed.Namespace);
        Assert.Null(ds.Metadata.OwnerReferences); // the operator deletes it once every node reverted
        // The agents go where the operator's label is: on the selected nodes, not on the other one.
        Assert.Equal("true", ds.Spec.Template.Spec.NodeSelector[Names.AgentNodeLabel]);
        foreach (var node in nodes)
            Assert.Equal("true", (await bed.Client.CoreV1.ReadNodeAsync(node)).Metadata.Labels[Names.AgentNodeLabel]);
        Assert.False((await bed.Client.CoreV1.ReadNodeAsync(other)).Metadata.Labels.ContainsKey(Names.AgentNodeLabel));
        Assert.NotNull(await bed.Client.CoreV1.ReadNamespacedServiceAccountAsync(Names.AgentServiceAccount, bed.Namespace));

        var events = await bed.EventsAsync(name);
        Assert.Contains(events, e => e.Reason == "RolloutStarted");
        Assert.Contains(events, e => e.Reason == "RolloutComplete");
    }
}

[Collection("cluster")]
public sealed class ValidationTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task ASpecTheServerAcceptsButTheCelRulesRefuseIsDegradedAndTouchesNoNode()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        await bed.StartOperatorAsync();
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("valid", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["net.core.somaxconn"] = "4096" },
            Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        })).Metadata.Name;
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 2, "2 applied");

        // kernel.panic is outside the sysctl allow-list: a CEL rule a v1.20 server does not run.
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["kernel.panic"] = "1");
        var invalid = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Degraded")?.Reason == "InvalidSpec", "InvalidSpec");
        Assert.Equal("True", TestBed.Condition(invalid, "Degraded")!.Status);
        Assert.Contains("kernel.panic", TestBed.Condition(invalid, "Degraded")!.Message);
        Assert.Equal(2, invalid.Status!.ObservedGeneration);
        foreach (var node in nodes)
        {
            var state = (await bed.GetNodeStateAsync(node))!;
            Assert.True(TestBed.Has(state, name, 1)); // still generation 1, without the refused key
            Assert.False(state.Spec.Sysctls!.ContainsKey("kernel.panic"));
        }
        Assert.Contains(await bed.EventsAsync(name), e => e.Reason == "InvalidSpec" && e.Type == "Warning");
    }
}
