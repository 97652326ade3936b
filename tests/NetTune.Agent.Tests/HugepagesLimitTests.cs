using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// What the planner refuses of hugepages beyond maxNodeMemoryPercent: pools beyond the node's budget (memory the
/// kubelet has given pods), and any run-time change under the kubelet's Static Memory Manager.
/// </summary>
public sealed class HugepagesLimitTests
{
    private const string Node0 = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
    private const string Node1 = "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages";

    // TwoSocket holds 256 × 2Mi on node 0 and 2 × 1Gi on node 1 (2.5 GiB); 512 × 2Mi on each node makes it 4 GiB.
    private static NodeStateSpec Pages512(HugepagesBudget? budget = null) =>
        new() { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512 }], HugepagesBudget = budget };

    [Fact]
    public void ABudget_RefusesPoolsThatWouldTakeMemoryThePodsWereGiven_WithTheNumbers()
    {
        using var host = FixtureHost.TwoSocket();
        var refused = TuningPlanner.Plan(host.Discover(), Pages512(new HugepagesBudget { MaxBytes = 3L << 30, Basis = "allocatable memory 7Gi less 4Gi requested by 9 pods, plus 0 of hugepages the kubelet counts already" }));
        Assert.DoesNotContain(refused.Desired, d => d.Kind == KnobKind.Hugepages);
        var notes = refused.Notes.Where(n => n.Knob.StartsWith("hugepages/", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["hugepages/node0/2Mi", "hugepages/node1/2Mi"], notes.Select(n => n.Knob));
        Assert.All(notes, n => Assert.Equal(KnobOutcome.Failed, n.Outcome));
        Assert.Equal("refused for the node's hugepages budget: hugepages would hold 4 GiB on this node, more than its budget of 3 GiB " +
            "(allocatable memory 7Gi less 4Gi requested by 9 pods, plus 0 of hugepages the kubelet counts already): the rest is memory the kubelet has given pods; left at 256 of 512",
            notes[0].Message);

        // Exactly the budget is fine; so is no budget (maxNodeMemoryPercent alone).
        Assert.Equal(2, TuningPlanner.Plan(host.Discover(), Pages512(new HugepagesBudget { MaxBytes = 4L << 30 })).Changes.Count);
        Assert.Equal(2, TuningPlanner.Plan(host.Discover(), Pages512()).Changes.Count);
    }

    [Fact]
    public void ABudgetBelowWhatThePoolsHoldAlready_NeverRefusesKeepingOrLoweringThem()
    {
        using var host = FixtureHost.TwoSocket();
        var lower = TuningPlanner.Plan(host.Discover(), new NodeStateSpec
        {
            NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 0 }], HugepagesBudget = new HugepagesBudget { MaxBytes = 0 },
        });
        Assert.Equal(("hugepages/node0/2Mi", "0"), (Assert.Single(lower.Changes).Knob, lower.Changes[0].Target));
        Assert.DoesNotContain(lower.Notes, n => n.Outcome == KnobOutcome.Failed);
    }

    [Fact]
    public void OnAFixtureHost_TheRefusedPoolsStayAsTheyAre_AndTheConditionSaysWhy()
    {
        using var host = FixtureHost.TwoSocket();
        var report = host.Engine().Apply(Pages512(new HugepagesBudget { MaxBytes = 3L << 30, Basis = "allocatable memory 3Gi less 2.5Gi requested by 4 pods, plus 2.5Gi of hugepages the kubelet counts already" }));
        Assert.Equal(RunKind.Failed, report.Kind);
        Assert.Equal(("256", "0"), (host.Read(Node0), host.Read(Node1)));
        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 3, DateTime.UtcNow);
        var applied = conditions.Single(c => c.Type == ConditionTypes.Applied);
        Assert.Equal((ConditionStatus.False, ConditionReasons.HugepagesOverBudget), (applied.Status, applied.Reason));
        Assert.Contains("more than its budget of 3 GiB", applied.Message);
    }

    private static void StaticMemoryManager(FixtureHost host, string file = "memory_manager_state", string? text = null)
    {
        Directory.CreateDirectory(Path.Join(host.Root, "var/lib/kubelet"));
        host.Write($"var/lib/kubelet/{file}", text ?? """{"policyName":"Static","machineState":{},"entries":{},"checksum":1234}""");
    }

    [Fact]
    public void UnderTheStaticMemoryManager_NoPoolChangesAtRunTime_AndTheMessageGivesTheKernelCommandLine()
    {
        using var host = FixtureHost.TwoSocket();
        StaticMemoryManager(host);
        var snapshot = host.Discover();
        Assert.True(snapshot.KubeletMemoryManager.Static);
        Assert.Equal("/var/lib/kubelet/memory_manager_state", snapshot.KubeletMemoryManager.Source);
        // Node 0 keeps its 256 (no change: still planned), node 1 would change: refused.
        var plan = TuningPlanner.Plan(snapshot, new NodeStateSpec
        {
            NodeName = "n",
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512, PerNumaNode = [new NumaNodePages { NumaNode = 0, Pages = 256 }] }],
        });
        Assert.Empty(plan.Changes);
        Assert.Equal("256", Assert.Single(plan.Desired, d => d.Kind == KnobKind.Hugepages).Target);
        var note = Assert.Single(plan.Notes);
        Assert.Equal(("hugepages/node1/2Mi", KnobOutcome.Failed), (note.Knob, note.Outcome));
        Assert.StartsWith("not changed at run time: the kubelet's Memory Manager runs the Static policy (/var/lib/kubelet/memory_manager_state)", note.Message);
        Assert.Contains("hugepagesz=2M hugepages=0:256,1:512", note.Message);

        var report = host.Engine().Apply(Pages512());
        Assert.Equal(("256", "0"), (host.Read(Node0), host.Read(Node1)));
        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 1, DateTime.UtcNow);
        Assert.Equal(ConditionReasons.HugepagesNeedBootReservation, conditions.Single(c => c.Type == ConditionTypes.Applied).Reason);
    }

    [Fact]
    public void ThePolicyIsAlsoReadFromTheKubeletConfigInItsRootDir_AndNoneChangesNothing()
    {
        using var host = FixtureHost.TwoSocket();
        StaticMemoryManager(host, "config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmemoryManagerPolicy: \"Static\"\n");
        Assert.Equal(("Static", "/var/lib/kubelet/config.yaml"), (host.Discover().KubeletMemoryManager.Policy, host.Discover().KubeletMemoryManager.Source));
        Assert.Empty(TuningPlanner.Plan(host.Discover(), Pages512()).Changes);

        // The checkpoint, when there, is what the running kubelet uses.
        StaticMemoryManager(host, text: """{"policyName":"None","machineState":{},"entries":{},"checksum":1}""");
        Assert.False(host.Discover().KubeletMemoryManager.Static);
        Assert.Equal(2, TuningPlanner.Plan(host.Discover(), Pages512()).Changes.Count);
    }
}
