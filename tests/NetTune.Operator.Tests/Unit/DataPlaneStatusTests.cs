using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class DataPlaneStatusTests
{
    private static readonly DateTime Now = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
    private static readonly PlannerSettings Settings = new(new DataPlaneOptions("ns"), TimeSpan.FromMinutes(2));

    [Fact]
    public void TheProbeReadsTheDataPlanesReadyzBody()
    {
        var placed = NetTune.Operator.HttpDataPlaneProbe.Parse(
            "{\"status\":\"ready\",\"workers\":[{\"worker\":0,\"cpu\":3,\"numaNode\":1,\"memoryBound\":true},{\"worker\":1,\"cpu\":2,\"numaNode\":1,\"memoryBound\":true}]}\n");
        Assert.Equal([2, 3], placed!.Cpus);
        Assert.Equal((1, false), (placed.NumaNode, placed.AffinityReported));
        // Workers on two NUMA nodes: none; an affinity reported wins over the workers' CPUs.
        var spread = NetTune.Operator.HttpDataPlaneProbe.Parse("{\"cpus\":\"0-3\",\"workers\":[{\"cpu\":0,\"numaNode\":0},{\"cpu\":2,\"numaNode\":1}]}");
        Assert.Equal([0, 1, 2, 3], spread!.Cpus);
        Assert.Equal((-1, true), (spread.NumaNode, spread.AffinityReported));
        // The engine each worker runs; differing workers are listed.
        Assert.Equal("epoll", NetTune.Operator.HttpDataPlaneProbe.Parse("{\"workers\":[{\"cpu\":0,\"numaNode\":0,\"engine\":\"epoll\"}]}")!.Engine);
        Assert.Equal("epoll,iouring", NetTune.Operator.HttpDataPlaneProbe.Parse(
            "{\"workers\":[{\"cpu\":0,\"engine\":\"iouring\"},{\"cpu\":1,\"engine\":\"epoll\"},{\"cpu\":2,\"engine\":\"iouring\"}]}")!.Engine);
        Assert.Null(placed.Engine);
        // The old plain-text body, or anything else, tells nothing.
        Assert.Null(NetTune.Operator.HttpDataPlaneProbe.Parse("ready\n"));
        Assert.Null(NetTune.Operator.HttpDataPlaneProbe.Parse("{\"status\":\"ready\"}"));
        Assert.Null(NetTune.Operator.HttpDataPlaneProbe.Parse("[1,2]"));
    }

    [Fact]
    public void TheBackoffDoublesAndIsCapped()
    {
        var first = TimeSpan.FromSeconds(10);
        var max = TimeSpan.FromMinutes(5);
        Assert.Equal([0, 10, 20, 40, 80, 160, 300, 300], Enumerable.Range(0, 8).Select(n => DataPlanePlanner.Backoff(n, first, max).TotalSeconds));
        Assert.Equal(max, DataPlanePlanner.Backoff(1000, first, max));
    }

    private static (NetworkTuning Tuning, ClusterSnapshot Snapshot) OneNode(V1Pod? pod, NetworkTuningStatus? previous = null)
    {
        var t = Tuning("t");
        t.Spec.DataPlane = new DataPlaneSpec { Enabled = true, Image = "dp:1", StaticFiles = new StaticFilesSpec { HostPath = "/srv" } };
        t.Status = previous;
        var state = State("n1", 1, Having("t", 1), "Applied");
        state.Status!.Topology = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] };
        return (t, new ClusterSnapshot([t], [Node("n1")], new Dictionary<string, NetworkTuningNodeState> { ["n1"] = state }, pod is null ? [] : [pod]));
    }

    [Fact]
    public void AFailedPodIsCountedOnceAndItsSuccessorWaitsOutTheBackoff()
    {
        var (t, _) = OneNode(null);
        var pod = DataPlanePodBuilder.Build(t, "n1", Fixtures.NumaNode("n1"), new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] }, Settings.DataPlane)[0];
        pod.Metadata.Uid = "uid-1";
        pod.Status = new V1PodStatus { Phase = "Failed", Reason = "Evicted", Message = "The node was low on resource: memory." };

        var (tuning, snapshot) = OneNode(pod);
        var plan = TuningPlanner.Plan(tuning, snapshot, Settings, Now);
        Assert.Equal(["t-dp-n1-numa0"], plan.PodDeletes.Select(p => p.Metadata.Name));
        Assert.Empty(plan.PodCreates);
        var warning = Assert.Single(plan.Events, e => e.Reason == ConditionReasons.PodFailed);
        Assert.Contains("Evicted: The node was low on resource: memory.", warning.Message);
        var entry = plan.Status!.DataPlane!.Pods!.Single();
        Assert.Equal((1, "uid-1", Now), (entry.Recreations, entry.LastFailedUid, entry.LastFailureTime));

        // The same failed pod seen again (its delete not in the cache yet): not counted twice, no second Event.
        (tuning, snapshot) = OneNode(pod, plan.Status);
        var again = TuningPlanner.Plan(tuning, snapshot, Settings, Now.AddSeconds(1));
        Assert.Equal(1, again.Status!.DataPlane!.Pods!.Single().Recreations);
        Assert.DoesNotContain(again.Events, e => e.Reason == ConditionReasons.PodFailed);

        // Gone: the new pod waits out 10 s, then comes.
        (tuning, snapshot) = OneNode(null, plan.Status);
        var early = TuningPlanner.Plan(tuning, snapshot, Settings, Now.AddSeconds(4));
        Assert.Empty(early.PodCreates);
        Assert.Equal(TimeSpan.FromSeconds(6), early.RequeueAfter);
        Assert.Equal(ConditionReasons.PodFailed, early.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable).Reason);
        Assert.Single(TuningPlanner.Plan(tuning, snapshot, Settings, Now.AddSeconds(10)).PodCreates);
    }

    [Fact]
    public void ReadyWaitsForTheDataPlane()
    {
        var (t, _) = OneNode(null);
        var pod = DataPlanePodBuilder.Build(t, "n1", Fixtures.NumaNode("n1"), new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] }, Settings.DataPlane)[0];
        pod.Metadata.Uid = "uid-1";
        pod.Status = new V1PodStatus { Phase = "Pending", Conditions = [new V1PodCondition { Type = "PodScheduled", Status = "False", Reason = "Unschedulable", Message = "0/1 nodes are available: 1 Insufficient cpu." }] };
        var (tuning, snapshot) = OneNode(pod);
        var plan = TuningPlanner.Plan(tuning, snapshot, Settings, Now);
        var ready = plan.Status!.Conditions!.Single(c => c.Type == ConditionTypes.Ready);
        Assert.Equal(("False", ConditionReasons.PodsNotReady), (ready.Status, ready.Reason));
        Assert.Contains("Insufficient cpu", ready.Message);
        Assert.Equal((1, 0), (plan.Status.DataPlane!.DesiredPods, plan.Status.DataPlane.ReadyPods));

        pod.Status = new V1PodStatus { Phase = "Running", Conditions = [new V1PodCondition { Type = "Ready", Status = "True" }] };
        var placements = new Dictionary<string, DataPlanePlacement> { ["uid-1"] = new([1, 0], 0, false) };
        snapshot = snapshot with { PodPlacements = placements };
        plan = TuningPlanner.Plan(tuning, snapshot, Settings, Now);
        Assert.Equal("True", plan.Status!.Conditions!.Single(c => c.Type == ConditionTypes.Ready).Status);
        var entry = plan.Status.DataPlane!.Pods!.Single();
        Assert.Equal(("0-1", 0, true, 2), (entry.Cpus, entry.NumaNode, entry.ExclusiveCpus, entry.RequestedCpus));
    }

    [Theory]
    [InlineData(IoEngine.Auto, "epoll", ConditionReasons.IoUringUnavailable)]
    [InlineData(IoEngine.Auto, "iouring(defer_taskrun)+multishot", ConditionReasons.PodsReady)]
    [InlineData(IoEngine.Epoll, "epoll", ConditionReasons.PodsReady)]
    public void APodThatFellBackToEpollIsReportedWithItsEngineAndWhy(IoEngine asked, string runs, string reason)
    {
        var (t, _) = OneNode(null);
        t.Spec.DataPlane!.IoEngine = asked;
        t.Spec.DataPlane.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost, LocalhostProfile = "profiles/strict.json" };
        var pod = DataPlanePodBuilder.Build(t, "n1", Fixtures.NumaNode("n1"), new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] }, Settings.DataPlane)[0];
        pod.Metadata.Uid = "uid-1";
        pod.Status = new V1PodStatus { Phase = "Running", Conditions = [new V1PodCondition { Type = "Ready", Status = "True" }] };
        var (_, snapshot) = OneNode(pod);
        snapshot = snapshot with { PodPlacements = new Dictionary<string, DataPlanePlacement> { ["uid-1"] = new([0, 1], 0, false, runs) } };
        var plan = TuningPlanner.Plan(t, snapshot, Settings, Now);
        Assert.Equal(runs, plan.Status!.DataPlane!.Pods!.Single().Engine);
        var available = plan.Status.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        Assert.Equal((ConditionStatus.True, reason), (available.Status, available.Reason));
        Assert.Equal("True", plan.Status.Conditions!.Single(c => c.Type == ConditionTypes.Ready).Status);
        if (reason != ConditionReasons.IoUringUnavailable)
        {
            Assert.DoesNotContain(plan.Events, e => e.Reason == ConditionReasons.IoUringUnavailable);
            return;
        }
        Assert.Contains("t-dp-n1-numa0 runs epoll", available.Message);
        Assert.Contains("Localhost profiles/strict.json", available.Message);
        Assert.Contains("ioEngine Auto", available.Message);
        Assert.Single(plan.Events, e => e.Reason == ConditionReasons.IoUringUnavailable);
    }

    [Fact]
    public void APodRunningOnAnotherNumaNodeThanItsDevicesIsReported_TheTopologyManagerDidNotAlignIt()
    {
        var (t, _) = OneNode(null);
        var topology = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }, new NumaNodeInfo { Id = 1, Cpus = "2-3" }] };
        var pods = DataPlanePodBuilder.Build(t, "n1", Fixtures.NumaNode("n1"), topology, Settings.DataPlane);
        Assert.Equal(2, pods.Count);
        foreach (var (pod, i) in pods.Select((p, i) => (p, i)))
        {
            pod.Metadata.Uid = $"uid-{i}";
            pod.Status = new V1PodStatus { Phase = "Running", Conditions = [new V1PodCondition { Type = "Ready", Status = "True" }] };
        }
        var (_, snapshot) = OneNode(null);
        snapshot.NodeStates["n1"].Status!.Topology = topology;
        // As on a kubelet with topologyManagerPolicy none: each pod's CPU is on the other node.
        snapshot = snapshot with
        {
            Pods = pods,
            PodPlacements = new Dictionary<string, DataPlanePlacement> { ["uid-0"] = new([2, 3], 1, true), ["uid-1"] = new([0, 1], 0, true) },
        };
        var plan = TuningPlanner.Plan(t, snapshot, Settings, Now);
        var available = plan.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        Assert.Equal((ConditionStatus.True, ConditionReasons.NumaNodeMismatch), (available.Status, available.Reason));
        Assert.Contains("t-dp-n1-numa0 asked for NUMA node 0 (nettune.io/numa-node-0) and runs on NUMA node 1", available.Message);
        Assert.Contains("topologyManagerPolicy none", available.Message);
        Assert.Single(plan.Events, e => e.Reason == ConditionReasons.NumaNodeMismatch);

        // Aligned: each pod on its own node.
        snapshot = snapshot with { PodPlacements = new Dictionary<string, DataPlanePlacement> { ["uid-0"] = new([0, 1], 0, true), ["uid-1"] = new([2, 3], 1, true) } };
        Assert.Equal(ConditionReasons.PodsReady, TuningPlanner.Plan(t, snapshot, Settings, Now).Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable).Reason);
    }

    [Fact]
    public void ANodeNotTunedYetOwesItsPods_TheDataPlaneIsNotAvailable()
    {
        // The agent holds Applied back (here: the kubelet does not show the hugepages yet): no pod is made, and the
        // tuning must not read "0 of 0 data-plane pods ready" as available.
        var (t, snapshot) = OneNode(null);
        var state = snapshot.NodeStates["n1"];
        state.Status!.Conditions = [new V1Condition { Type = ConditionTypes.Applied, Status = "False", Reason = ConditionReasons.KubeletRestartRequired,
            Message = "hugepages-2Mi: the kernel holds 16Mi, the node's capacity shows 0", LastTransitionTime = Now }];
        state.Status.LastAppliedGeneration = null;
        var plan = TuningPlanner.Plan(t, snapshot, Settings, Now);
        Assert.Empty(plan.PodCreates);
        var available = plan.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        Assert.Equal(("False", ConditionReasons.NodeNotTuned), (available.Status, available.Reason));
        Assert.Contains("0 of 1 data-plane pods ready", available.Message);
        Assert.Contains("node n1 is not tuned yet", available.Message);
        Assert.Equal((1, 0), (plan.Status.DataPlane!.DesiredPods, plan.Status.DataPlane.ReadyPods));
        Assert.Equal(("t-dp-n1-numa0", DataPlanePlanner.Waiting), (plan.Status.DataPlane.Pods!.Single().Name, plan.Status.DataPlane.Pods!.Single().Phase));
        Assert.NotEqual("True", plan.Status.Conditions!.Single(c => c.Type == ConditionTypes.Ready).Status);

        // Once Applied, the pod is made.
        var (applied, appliedSnapshot) = OneNode(null);
        Assert.Single(TuningPlanner.Plan(applied, appliedSnapshot, Settings, Now).PodCreates);
    }

    [Fact]
    public void PodErrorsFromTheApiServerGoIntoStatus()
    {
        var (t, snapshot) = OneNode(null);
        var plan = TuningPlanner.Plan(t, snapshot, Settings, Now);
        var (status, events) = TuningPlanner.WithPodErrors(t, plan.Status!, ["create t-dp-n1-numa0: 403 Forbidden: exceeded quota: pods"], Now);
        var available = status.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        Assert.Equal(("False", ConditionReasons.PodApiError), (available.Status, available.Reason));
        Assert.Contains("exceeded quota", available.Message);
        Assert.Equal(ConditionReasons.PodApiError, status.Conditions!.Single(c => c.Type == ConditionTypes.Ready).Reason);
        Assert.Equal(plan.Status!.Conditions!.Count, status.Conditions!.Count);
        Assert.Equal(ConditionReasons.PodApiError, Assert.Single(events).Reason);
        // The same refusal again: no second Event.
        t.Status = status;
        Assert.Empty(TuningPlanner.WithPodErrors(t, plan.Status, ["create t-dp-n1-numa0: 403 Forbidden: exceeded quota: pods"], Now).Events);
    }
}
