using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;
using NetTune.Operator.Core.Selection;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class PlannerTests
{
    private static readonly DateTime Now = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
    private static readonly PlannerSettings Settings = new(new DataPlaneOptions("ns"), TimeSpan.FromMinutes(2));
    private static readonly V1Node[] Nodes = [Node("n1", ("tune", "yes")), Node("n2", ("tune", "yes")), Node("n3")];

    private static ClusterSnapshot Snapshot(NetworkTuning[] tunings, NetworkTuningNodeState[]? states = null, V1Pod[]? pods = null) =>
        new(tunings, Nodes, (states ?? []).ToDictionary(s => s.Metadata.Name), pods ?? []);

    private static Dictionary<string, string> Somaxconn(string value) => new() { ["net.core.somaxconn"] = value };

    [Fact]
    public void ANewTuningGetsItsFinalizerAndItsFirstBatch()
    {
        var t = Tuning("t", selector: Labels(("tune", "yes")), sysctls: Somaxconn("4096"));
        t.Metadata.Finalizers = null;
        var plan = TuningPlanner.Plan(t, Snapshot([t]), Settings, Now);

        Assert.True(plan.AddFinalizer);
        var write = Assert.Single(plan.NodeStateWrites);
        Assert.Equal("n1", write.Node);
        Assert.Null(write.Existing);
        Assert.Equal("4096", write.Spec.Sysctls!["net.core.somaxconn"]);
        Assert.Equal(2, plan.Status!.MatchedNodes);
        Assert.Equal(2, plan.Status.PendingNodes);
        Assert.Equal("RolloutInProgress", plan.Status.Conditions!.Single(c => c.Type == "Progressing").Reason);
        Assert.Contains(plan.Events, e => e.Reason == OperatorReasons.RolloutStarted);
        Assert.Contains(plan.Events, e => e.Reason == OperatorReasons.BatchStarted && e.Message.Contains("n1"));
    }

    [Fact]
    public void AnInvalidSpecIsDegradedAndTouchesNoNode()
    {
        var t = Tuning("t", sysctls: new Dictionary<string, string> { ["kernel.panic"] = "1" });
        var plan = TuningPlanner.Plan(t, Snapshot([t]), Settings, Now);
        Assert.Empty(plan.NodeStateWrites);
        var degraded = plan.Status!.Conditions!.Single(c => c.Type == "Degraded");
        Assert.Equal(("True", "InvalidSpec"), (degraded.Status, degraded.Reason));
        Assert.Contains("kernel.panic", degraded.Message);
        Assert.Contains(plan.Events, e => e.Type == "Warning" && e.Reason == "InvalidSpec");
    }

    [Fact]
    public void APausedRolloutNamesTheFailedNode()
    {
        var t = Tuning("t", selector: Labels(("tune", "yes")), sysctls: Somaxconn("1024"));
        var plan = TuningPlanner.Plan(t, Snapshot([t], [State("n1", 1, Having("t", 1, Somaxconn("1024")), "Failed", "write failed: EINVAL")]), Settings, Now);
        Assert.Empty(plan.NodeStateWrites);
        var degraded = plan.Status!.Conditions!.Single(c => c.Type == "Degraded");
        Assert.Equal(("True", "RolloutPaused"), (degraded.Status, degraded.Reason));
        Assert.Contains("n1", degraded.Message);
        Assert.Contains("EINVAL", degraded.Message);
        Assert.Equal(1, plan.Status.FailedNodes);
    }

    [Fact]
    public void ANodeThatLeavesTheSelectorIsReverted()
    {
        var t = Tuning("t", selector: Labels(("tune", "yes")), sysctls: Somaxconn("1024"));
        var plan = TuningPlanner.Plan(t, Snapshot([t], [State("n3", 1, Having("t", 1, Somaxconn("1024")), "Applied")]), Settings, Now);
        var write = plan.NodeStateWrites.Single(w => w.Node == "n3");
        Assert.True(write.Spec.Revert);
        Assert.Null(write.Spec.Sources);
    }

    [Fact]
    public void EqualPrioritiesReportAConflictNamingTheOther()
    {
        var a = Tuning("a", sysctls: Somaxconn("1024"));
        var b = Tuning("b", sysctls: Somaxconn("2048"));
        var planA = TuningPlanner.Plan(a, Snapshot([a, b]), Settings, Now);
        var conflict = planA.Status!.Conditions!.Single(c => c.Type == "Conflict");
        Assert.Equal(("True", "KnobConflict"), (conflict.Status, conflict.Reason));
        Assert.Contains("NetworkTuning b", conflict.Message);
        Assert.Contains("NetworkTuning a", TuningPlanner.Plan(b, Snapshot([a, b]), Settings, Now).Status!.Conditions!.Single(c => c.Type == "Conflict").Message);
    }

    [Fact]
    public void DataPlanePodsComeWhenTheNodeApplied()
    {
        var t = Tuning("t", selector: Labels(("tune", "yes")));
        t.Spec.DataPlane = new DataPlaneSpec { Enabled = true, Image = "img", StaticFiles = new StaticFilesSpec { HostPath = "/srv" } };
        var applied = State("n1", 1, Having("t", 1), "Applied");
        applied.Status!.Topology = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] };
        var pending = State("n2", 1, Having("t", 1));
        pending.Status = new NodeStateStatus { Topology = applied.Status.Topology };
        var plan = TuningPlanner.Plan(t, Snapshot([t], [applied, pending]), Settings, Now);
        Assert.Equal(["t-dp-n1-numa0"], plan.PodCreates.Select(p => p.Metadata.Name));
    }

    [Fact]
    public void ControlPlaneNodesAreLeftOutUnlessTheTuningOptsIn()
    {
        V1Node[] nodes = [Node("cp", ("tune", "yes"), (NodeSelection.ControlPlaneLabel, "")), Node("old", ("tune", "yes"), (NodeSelection.LegacyMasterLabel, "")), Node("w", ("tune", "yes"))];
        var t = Tuning("t", selector: Labels(("tune", "yes")), sysctls: Somaxconn("1024"), maxUnavailable: "100%");
        var plan = TuningPlanner.Plan(t, new ClusterSnapshot([t], nodes, new Dictionary<string, NetworkTuningNodeState>(), []), Settings, Now);
        Assert.Equal(["w"], plan.NodeStateWrites.Select(w => w.Node));
        Assert.Equal((1, 2), (plan.Status!.MatchedNodes, plan.Status.SkippedControlPlaneNodes));

        t.Spec.IncludeControlPlane = true;
        plan = TuningPlanner.Plan(t, new ClusterSnapshot([t], nodes, new Dictionary<string, NetworkTuningNodeState>(), []), Settings, Now);
        Assert.Equal(["cp", "old", "w"], plan.NodeStateWrites.Select(w => w.Node).Order());
        Assert.Null(plan.Status!.SkippedControlPlaneNodes);

        // Only control-plane nodes match: nothing is tuned, and Ready says why.
        var onlyCp = Tuning("c", selector: Labels((NodeSelection.ControlPlaneLabel, "")), sysctls: Somaxconn("1024"));
        var ready = TuningPlanner.Plan(onlyCp, new ClusterSnapshot([onlyCp], nodes, new Dictionary<string, NetworkTuningNodeState>(), []), Settings, Now).Status!.Conditions!.Single(c => c.Type == "Ready");
        Assert.Contains("only control-plane nodes (1)", ready.Message);
    }

    [Fact]
    public void ATuningWithoutSelectorOrAllNodesSelectsNothingAndIsInvalid()
    {
        var t = Tuning("t", sysctls: Somaxconn("1024"));
        t.Spec.AllNodes = null;
        var plan = TuningPlanner.Plan(t, Snapshot([t]), Settings, Now);
        Assert.Empty(plan.NodeStateWrites);
        Assert.Contains("nodeSelector", plan.Status!.Conditions!.Single(c => c.Type == "Degraded").Message);
        Assert.False(NodeSelection.Selects(t.Spec, Nodes[0]));
        t.Spec.NodeSelector = new V1LabelSelector();
        Assert.False(NodeSelection.Selects(t.Spec, Nodes[0]));
        Assert.True(AgentPlacement.NeedsAgent(Nodes[0], [Tuning("all")], null));
        Assert.False(AgentPlacement.NeedsAgent(Nodes[0], [t], null));
    }

    [Fact]
    public void TwoTuningsWhoseDataPlanesShareAPortOnANode_OnlyTheOlderServesThere()
    {
        NetworkTuning Serving(string name, int port, int adminPort, DateTime created)
        {
            var t = Tuning(name, selector: Labels(("tune", "yes")));
            t.Metadata.CreationTimestamp = created;
            t.Spec.DataPlane = new DataPlaneSpec { Enabled = true, Image = "img", Port = port, AdminPort = adminPort, StaticFiles = new StaticFilesSpec { HostPath = "/srv" } };
            return t;
        }
        var topology = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }, new NumaNodeInfo { Id = 1, Cpus = "2-3" }] };
        NetworkTuningNodeState Applied(NetworkTuning t)
        {
            var state = State("n1", 1, Having(t.Metadata.Name, 1), "Applied");
            state.Status!.Topology = topology;
            return state;
        }
        var older = Serving("a", 8080, 9180, Now.AddHours(-1));
        // Its own ports are fine, but 9181 is the older one's admin port on NUMA node 1.
        var newer = Serving("b", 9181, 9300, Now);
        var plan = TuningPlanner.Plan(newer, Snapshot([older, newer], [Applied(newer)]), Settings, Now);
        Assert.Empty(plan.PodCreates);
        var available = plan.Status!.Conditions!.Single(c => c.Type == "DataPlaneAvailable");
        Assert.Equal(("False", ConditionReasons.PortConflict), (available.Status, available.Reason));
        Assert.Contains("port 9181 is NetworkTuning a's", available.Message);
        Assert.Contains(plan.Events, e => e.Reason == ConditionReasons.PortConflict);
        Assert.Equal(2, TuningPlanner.Plan(older, Snapshot([older, newer], [Applied(older)]), Settings, Now).PodCreates.Count);

        // Apart again: both serve.
        newer.Spec.DataPlane!.Port = 8443;
        Assert.Equal(2, TuningPlanner.Plan(newer, Snapshot([older, newer], [Applied(newer)]), Settings, Now).PodCreates.Count);
    }

    private static NetworkTuning Deleting(string name, DateTime since)
    {
        var t = Tuning(name, sysctls: Somaxconn("1024"));
        t.Metadata.DeletionTimestamp = since;
        return t;
    }

    [Fact]
    public void DeleteRemovesPodsFirstThenRevertsThenDropsTheFinalizer()
    {
        var t = Deleting("t", Now.AddSeconds(-5));
        var pod = new V1Pod { Metadata = new V1ObjectMeta { Name = "t-dp-n1-numa0" }, Spec = new V1PodSpec { NodeName = "n1" } };
        var state = State("n1", 1, Having("t", 1, Somaxconn("1024")), "Applied");

        // The node's turn: it is marked as reverting (spec unchanged) and its pods go; the revert waits for them.
        var withPod = TuningPlanner.Plan(t, Snapshot([t], [state], [pod]), Settings, Now);
        Assert.Equal([pod], withPod.PodDeletes);
        var mark = Assert.Single(withPod.NodeStateWrites);
        Assert.Same(state.Spec, mark.Spec);
        Assert.Equal(("t", Now), (mark.RevertedFor, mark.RevertStarted));
        Assert.False(withPod.RemoveFinalizer);
        var marked = State("n1", 1, state.Spec, "Applied");
        marked.Metadata.Annotations = new Dictionary<string, string> { [TuningPlanner.RevertedForAnnotation] = "t" };
        var terminating = new V1Pod { Metadata = new V1ObjectMeta { Name = pod.Metadata.Name, DeletionTimestamp = Now }, Spec = pod.Spec };
        var stillGoing = TuningPlanner.Plan(t, Snapshot([t], [marked], [terminating]), Settings, Now);
        Assert.Empty(stillGoing.NodeStateWrites);
        Assert.Empty(stillGoing.PodDeletes);
        Assert.Equal(["n1"], stillGoing.Status!.RevertingNodes);
        Assert.True(Assert.Single(TuningPlanner.Plan(t, Snapshot([t], [marked]), Settings, Now).NodeStateWrites).Spec.Revert);
        // Pods that do not go within the revert timeout (the node's kubelet is down) no longer hold the revert back.
        marked.Metadata.Annotations[TuningPlanner.RevertStartedAnnotation] = Now.AddMinutes(-3).ToString("yyyy-MM-ddTHH:mm:ssZ");
        Assert.True(Assert.Single(TuningPlanner.Plan(t, Snapshot([t], [marked], [terminating]), Settings, Now).NodeStateWrites).Spec.Revert);

        var revert = TuningPlanner.Plan(t, Snapshot([t], [state]), Settings, Now);
        var write = Assert.Single(revert.NodeStateWrites);
        Assert.True(write.Spec.Revert);
        Assert.Equal("t", write.RevertedFor);
        Assert.Equal(["n1"], revert.Status!.RevertingNodes);
        Assert.False(revert.RemoveFinalizer);
        Assert.NotNull(revert.RequeueAfter);

        var reverting = State("n1", 2, new NodeStateSpec { Revert = true });
        reverting.Metadata.Annotations = new Dictionary<string, string> { [TuningPlanner.RevertedForAnnotation] = "t" };
        Assert.False(TuningPlanner.Plan(t, Snapshot([t], [reverting]), Settings, Now).RemoveFinalizer);

        var reverted = State("n1", 2, new NodeStateSpec { Revert = true }, "Reverted");
        reverted.Metadata.Annotations = reverting.Metadata.Annotations;
        var done = TuningPlanner.Plan(t, Snapshot([t], [reverted]), Settings, Now);
        Assert.True(done.RemoveFinalizer);
    }

    [Fact]
    public void ANodeThatNeverAnswersIsReportedAfterTheTimeoutAndTheFinalizerGoes()
    {
        var t = Deleting("t", Now.AddMinutes(-3));
        var silent = State("n2", 2, new NodeStateSpec { Revert = true });
        silent.Metadata.Annotations = new Dictionary<string, string> { [TuningPlanner.RevertedForAnnotation] = "t" };
        var plan = TuningPlanner.Plan(t, Snapshot([t], [silent]), Settings, Now);
        Assert.True(plan.RemoveFinalizer);
        Assert.Equal(["n2"], plan.Status!.RevertingNodes);
        Assert.Equal(OperatorReasons.RevertTimedOut, plan.Status.Conditions!.Single(c => c.Type == "Degraded").Reason);
        Assert.Contains(plan.Events, e => e.Type == "Warning" && e.Message.Contains("n2"));
    }

    [Fact]
    public void ANodeThatIsGoneNeedsNoRevert()
    {
        var t = Deleting("t", Now);
        var orphan = State("gone", 1, Having("t", 1, Somaxconn("1024")), "Applied");
        var plan = TuningPlanner.Plan(t, Snapshot([t], [orphan]), Settings, Now);
        Assert.Equal(["gone"], plan.NodeStateDeletes);
        Assert.True(plan.RemoveFinalizer);
    }
}

public sealed class DataPlaneReplacementTests
{
    private static readonly DateTime Now = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
    private static readonly PlannerSettings Settings = new(new DataPlaneOptions("ns"), TimeSpan.FromMinutes(2));
    private static readonly string[] Nodes = ["n1", "n2", "n3"];

    private static NetworkTuning Tuning(string image)
    {
        var t = Fixtures.Tuning("t", maxUnavailable: "1");
        t.Spec.DataPlane = new DataPlaneSpec { Enabled = true, Image = image, StaticFiles = new StaticFilesSpec { HostPath = "/srv" } };
        return t;
    }

    private static ClusterSnapshot Snapshot(NetworkTuning t, IEnumerable<V1Pod> pods)
    {
        var states = Nodes.Select(n =>
        {
            var s = State(n, 1, Having("t", 1), "Applied");
            s.Status!.Topology = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] };
            return s;
        });
        return new ClusterSnapshot([t], Nodes.Select(n => Node(n)).ToList(), states.ToDictionary(s => s.Metadata.Name), pods.ToList());
    }

    private static V1Pod Running(NetworkTuning t, string node, bool ready = true)
    {
        var pod = DataPlanePodBuilder.Build(t, node, Fixtures.NumaNode(node), new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] }, Settings.DataPlane)[0];
        pod.Status = new V1PodStatus { Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }] };
        return pod;
    }

    [Fact]
    public void AChangedPodSpecReplacesPodsOneNodeAtATime()
    {
        var old = Tuning("dp:1");
        var changed = Tuning("dp:2");
        var plan = TuningPlanner.Plan(changed, Snapshot(changed, Nodes.Select(n => Running(old, n))), Settings, Now);
        Assert.Equal(["t-dp-n1-numa0"], plan.PodDeletes.Select(p => p.Metadata.Name));
        Assert.Empty(plan.PodCreates); // the same name comes back once the old pod is gone

        // n1's new pod is there but not ready yet: the next node waits.
        var pods = new[] { Running(changed, "n1", ready: false), Running(old, "n2"), Running(old, "n3") };
        Assert.Empty(TuningPlanner.Plan(changed, Snapshot(changed, pods), Settings, Now).PodDeletes);

        pods[0] = Running(changed, "n1");
        Assert.Equal(["t-dp-n2-numa0"], TuningPlanner.Plan(changed, Snapshot(changed, pods), Settings, Now).PodDeletes.Select(p => p.Metadata.Name));
    }

    [Fact]
    public void APodWhoseOldSelfIsGoneIsCreatedAgain()
    {
        var t = Tuning("dp:2");
        var plan = TuningPlanner.Plan(t, Snapshot(t, [Running(t, "n2"), Running(t, "n3")]), Settings, Now);
        Assert.Equal(["t-dp-n1-numa0"], plan.PodCreates.Select(p => p.Metadata.Name));
        Assert.Empty(plan.PodDeletes);
    }
}
