using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>The operator works out each node's hugepages budget from the real apiserver's Node and the pods bound to it.</summary>
[Collection("cluster")]
public sealed class HugepagesBudgetClusterTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task ANodesBudgetIsItsAllocatableMemoryLessWhatItsPodsRequest_WorkedOutWhenItsHugepagesChange()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var node = (await bed.CreateNodesAsync(1))[0];
        await bed.SetAllocatableAsync(node, ("cpu", "4"), ("memory", "8Gi"), ("hugepages-2Mi", "128Mi"), ("pods", "110"));
        // A pod the scheduler bound to the node (any namespace) and one that finished there.
        await bed.BindPodAsync(node, "busy", ("memory", "3Gi"));
        await bed.BindPodAsync(node, "done", ("memory", "2Gi"));
        await bed.Client.CoreV1.PatchNamespacedPodStatusAsync(new V1Patch("{\"status\":{\"phase\":\"Succeeded\"}}", V1Patch.PatchType.MergePatch), "done", bed.Namespace);
        await bed.StartOperatorAsync();
        bed.StartAgents();

        var tuning = await bed.CreateTuningAsync("pages", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64 }],
        });
        NetworkTuningNodeState state = null!;
        await TestBed.EventuallyAsync(async () => (state = (await bed.GetNodeStateAsync(node))!)?.Spec.HugepagesBudget is not null, "a NodeState with a hugepages budget");
        Assert.Equal((128L << 20) + (8L << 30) - (3L << 30), state.Spec.HugepagesBudget!.MaxBytes);
        Assert.Equal("allocatable memory 8Gi less 3Gi requested by 1 pods, plus 128Mi of hugepages the kubelet counts already", state.Spec.HugepagesBudget.Basis);

        // More pods come: the budget stays (a new one would be a new generation) until the hugepages asked change.
        await bed.BindPodAsync(node, "later", ("memory", "1Gi"));
        await bed.UpdateTuningAsync(tuning.Metadata.Name, s => s.Sysctls = new() { ["vm.swappiness"] = "10" });
        await TestBed.EventuallyAsync(async () => (state = (await bed.GetNodeStateAsync(node))!).Spec.Sysctls?.ContainsKey("vm.swappiness") == true, "the sysctl on the node");
        Assert.Equal((128L << 20) + (5L << 30), state.Spec.HugepagesBudget!.MaxBytes);

        await bed.UpdateTuningAsync(tuning.Metadata.Name, s => s.Hugepages![0].PagesPerNumaNode = 96);
        await TestBed.EventuallyAsync(async () => (state = (await bed.GetNodeStateAsync(node))!).Spec.Hugepages![0].PagesPerNumaNode == 96, "the new pages on the node");
        Assert.Equal((128L << 20) + (4L << 30), state.Spec.HugepagesBudget!.MaxBytes);
    }
}
