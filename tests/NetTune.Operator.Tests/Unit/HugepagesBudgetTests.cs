using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Merge;
using NetTune.Operator.Core.Planning;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class HugepagesBudgetTests
{
    private static V1Node Node(params (string Resource, string Quantity)[] allocatable) => new()
    {
        Metadata = new V1ObjectMeta { Name = "n1" },
        Status = new V1NodeStatus { Allocatable = allocatable.ToDictionary(a => a.Resource, a => new ResourceQuantity(a.Quantity)) },
    };

    private static V1Pod Pod(string phase, string[] containers, string[]? init = null, string? overhead = null) => new()
    {
        Spec = new V1PodSpec
        {
            Containers = containers.Select(m => new V1Container { Name = "c", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["memory"] = new(m) } } }).ToList(),
            InitContainers = init?.Select(m => new V1Container { Name = "i", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["memory"] = new(m) } } }).ToList(),
            Overhead = overhead is null ? null : new Dictionary<string, ResourceQuantity> { ["memory"] = new(overhead) },
        },
        Status = new V1PodStatus { Phase = phase },
    };

    [Fact]
    public void TheBudgetIsTheHugepagesTheKubeletCountsPlusAllocatableMemoryThePodsDidNotRequest()
    {
        var node = Node(("memory", "8Gi"), ("hugepages-2Mi", "512Mi"), ("hugepages-1Gi", "0"), ("cpu", "4"));
        var budget = HugepagesBudgets.Of(node, [
            Pod("Running", ["1Gi", "512Mi"]),
            Pod("Pending", ["256Mi"], init: ["2Gi"], overhead: "128Mi"), // the init container is the larger: 2Gi + 128Mi
            Pod("Succeeded", ["4Gi"]), // finished: its memory is free again
        ])!;
        Assert.Equal((512L << 20) + (8L << 30) - ((1L << 30) + (512L << 20) + (2L << 30) + (128L << 20)), budget.MaxBytes);
        Assert.Equal("allocatable memory 8Gi less 3712Mi requested by 2 pods, plus 512Mi of hugepages the kubelet counts already", budget.Basis);

        // Pods asking more than there is leave hugepages only what the kubelet counts; no allocatable memory, no budget.
        Assert.Equal(512L << 20, HugepagesBudgets.Of(node, [Pod("Running", ["9Gi"])])!.MaxBytes);
        Assert.Null(HugepagesBudgets.Of(Node(("cpu", "4")), []));
    }

    [Fact]
    public void TheMergeKeepsTheBudgetWhileTheHugepagesStayTheSame_AndDropsItWhenTheyChange()
    {
        NetworkTuning WithPages(int pages)
        {
            var t = Tuning("t", sysctls: new() { ["vm.swappiness"] = "10" });
            t.Spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = pages }];
            return t;
        }
        var first = NodeSpecMerger.Merge("n1", [Contribution.Current(WithPages(64))], previous: null).Spec;
        Assert.Null(first.HugepagesBudget); // the writer works it out
        first.HugepagesBudget = new HugepagesBudget { MaxBytes = 1L << 30, Basis = "b" };

        var same = NodeSpecMerger.Merge("n1", [Contribution.Current(WithPages(64))], first).Spec;
        Assert.Equal(1L << 30, same.HugepagesBudget!.MaxBytes);
        Assert.True(NodeSpecMerger.SameSpec(same, first)); // no write, no new generation, no new round of retries

        Assert.Null(NodeSpecMerger.Merge("n1", [Contribution.Current(WithPages(128))], first).Spec.HugepagesBudget);
    }
}
