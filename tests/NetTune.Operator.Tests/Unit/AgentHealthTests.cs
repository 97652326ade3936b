using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;
using NetTune.Operator.Core.Rollout;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

/// <summary>Agent pods the cluster refuses or that do not run, found from the DaemonSet, its pods and its Events, and shown on the tunings.</summary>
public sealed class AgentHealthTests
{
    private static readonly DateTime Now = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
    private const string Refusal = "Error creating: pods \"nettune-agent-x7k2p\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), privileged (container \"agent\" must not set securityContext.privileged=true)";

    private static V1Node Labelled(string name, params (string Key, string Value)[] labels) =>
        Node(name, [.. labels, (Names.AgentNodeLabel, AgentPlacement.LabelValue)]);

    private static V1DaemonSet DaemonSet(int desired, int current, int ready, long observed = 1)
    {
        var ds = AgentDaemonSetBuilder.Build(new AgentOptions("nettune-node", "nettune/agent:1"));
        ds.Metadata.Uid = "ds-uid";
        ds.Metadata.Generation = 1;
        ds.Status = new V1DaemonSetStatus { DesiredNumberScheduled = desired, CurrentNumberScheduled = current, NumberReady = ready, NumberMisscheduled = 0, ObservedGeneration = observed };
        return ds;
    }

    private static Corev1Event FailedCreate(string uid, string message, int minutesAgo) => new()
    {
        Metadata = new V1ObjectMeta { Name = "e" + minutesAgo },
        InvolvedObject = new V1ObjectReference { Kind = "DaemonSet", Name = Names.AgentDaemonSet, Uid = uid },
        Reason = AgentHealth.FailedCreate,
        Message = message,
        LastTimestamp = Now.AddMinutes(-minutesAgo),
    };

    private static V1Pod AgentPod(string node, string? waiting = null, string? message = null, bool ready = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = "nettune-agent-" + node },
        Spec = new V1PodSpec
        {
            Containers = [new V1Container { Name = "agent" }],
            Affinity = new V1Affinity { NodeAffinity = new V1NodeAffinity { RequiredDuringSchedulingIgnoredDuringExecution = new V1NodeSelector { NodeSelectorTerms = [DataPlanePodBuilder.NodeTerm(node, new DataPlaneOptions("x") { RequiredNodeLabel = null })] } } },
        },
        Status = new V1PodStatus
        {
            Phase = "Pending",
            Conditions = ready ? [new V1PodCondition { Type = "Ready", Status = "True" }] : [],
            ContainerStatuses = waiting is null ? null : [new V1ContainerStatus { Name = "agent", State = new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = waiting, Message = message } } }],
        },
    };

    [Fact]
    public void AHealthyDaemonSetNeedsNoLook()
    {
        V1Node[] two = [Labelled("n1"), Labelled("n2"), Node("n3")];
        Assert.False(AgentHealth.NeedsLook(DaemonSet(2, 2, 2), two));
        Assert.True(AgentHealth.NeedsLook(DaemonSet(2, 1, 1), two));
        Assert.True(AgentHealth.NeedsLook(DaemonSet(2, 2, 1), two));
        // The controller writes no status after a sync whose creates were refused: a new DaemonSet keeps all zeros and
        // observedGeneration 0, an old one the counts of its last good sync (one node fewer than now placed).
        Assert.True(AgentHealth.NeedsLook(DaemonSet(0, 0, 0, observed: 0), two));
        Assert.True(AgentHealth.NeedsLook(DaemonSet(1, 1, 1), two));
    }

    [Fact]
    public void ALabelledNodeWithoutAPodGetsTheControllersLatestRefusalOfThisDaemonSet()
    {
        var ds = DaemonSet(2, 1, 1);
        var troubles = AgentHealth.Judge(ds, [Labelled("n1"), Labelled("n2"), Node("n3")], [AgentPod("n1", ready: true)],
            [FailedCreate("ds-uid", "an older refusal", 5), FailedCreate("ds-uid", Refusal, 1), FailedCreate("an-earlier-daemonset", "not this one", 0)]);
        var trouble = Assert.Single(troubles);
        Assert.Equal("n2", trouble.Key);
        Assert.Equal(new AgentTrouble(ConditionReasons.AgentPodCreateFailed, Refusal), trouble.Value);
    }

    [Fact]
    public void WithoutARefusalANodeWhosePodIsStillToComeHasNoTrouble()
    {
        Assert.Empty(AgentHealth.Judge(DaemonSet(1, 0, 0), [Labelled("n1")], [], [FailedCreate("an-earlier-daemonset", Refusal, 1)]));
        // Starting is no trouble; an image that cannot be pulled is.
        Assert.Empty(AgentHealth.Judge(DaemonSet(1, 1, 0), [Labelled("n1")], [AgentPod("n1", "ContainerCreating")], []));
        var pulling = AgentHealth.Judge(DaemonSet(1, 1, 0), [Labelled("n1")], [AgentPod("n1", "ImagePullBackOff", "Back-off pulling image \"nettune/agent:1\"")], []);
        Assert.Equal(ConditionReasons.AgentPodNotRunning, pulling["n1"].Reason);
        Assert.Equal("pod nettune-agent-n1 container agent: ImagePullBackOff: Back-off pulling image \"nettune/agent:1\"", pulling["n1"].Message);
    }

    [Fact]
    public void NodesOutsideTheDaemonSetsExtraSelectorAreNotItsToRun()
    {
        var ds = AgentDaemonSetBuilder.Build(new AgentOptions("nettune-node", "a") { NodeSelector = new Dictionary<string, string> { ["kubernetes.io/os"] = "linux" } });
        ds.Metadata.Uid = "ds-uid";
        ds.Status = new V1DaemonSetStatus { DesiredNumberScheduled = 1, CurrentNumberScheduled = 0, NumberReady = 0 };
        var troubles = AgentHealth.Judge(ds, [Labelled("linux", ("kubernetes.io/os", "linux")), Labelled("windows", ("kubernetes.io/os", "windows"))], [],
            [FailedCreate("ds-uid", Refusal, 0)]);
        Assert.Equal(["linux"], troubles.Keys);
    }

    [Fact]
    public void TheTuningSaysWhichOfItsNodesRunNoAgentAndWhy()
    {
        var t = Tuning("t", selector: Labels(("tune", "yes")));
        var nodes = new[] { Node("n1", ("tune", "yes")), Node("n2", ("tune", "yes")), Node("n3") };
        var troubles = new Dictionary<string, AgentTrouble>
        {
            ["n1"] = new(ConditionReasons.AgentPodCreateFailed, Refusal),
            ["n3"] = new(ConditionReasons.AgentPodCreateFailed, Refusal), // not this tuning's node
        };
        var settings = new PlannerSettings(new DataPlaneOptions("ns"), TimeSpan.FromMinutes(2));
        var plan = TuningPlanner.Plan(t, new ClusterSnapshot([t], nodes, new Dictionary<string, NetworkTuningNodeState>(), [], AgentTroubles: troubles), settings, Now);

        var agents = plan.Status!.Conditions!.Single(c => c.Type == ConditionTypes.AgentsAvailable);
        Assert.Equal((ConditionStatus.False, ConditionReasons.AgentPodCreateFailed), (agents.Status, agents.Reason));
        Assert.Equal($"1 of 2 selected nodes run no agent: the agent pod was refused on n1: {Refusal}", agents.Message);
        // Ready says it too, rather than only that the rollout is in progress.
        var ready = plan.Status.Conditions!.Single(c => c.Type == ConditionTypes.Ready);
        Assert.Equal((ConditionStatus.False, ConditionReasons.AgentPodCreateFailed), (ready.Status, ready.Reason));
        Assert.Contains(Refusal, ready.Message);
        Assert.Contains(plan.Events, e => e.Type == "Warning" && e.Reason == ConditionReasons.AgentPodCreateFailed);

        // Once the agents run the condition turns True, and no new Warning is made for the same trouble.
        t.Status = plan.Status;
        var again = TuningPlanner.Plan(t, new ClusterSnapshot([t], nodes, new Dictionary<string, NetworkTuningNodeState>(), [], AgentTroubles: troubles), settings, Now);
        Assert.DoesNotContain(again.Events, e => e.Reason == ConditionReasons.AgentPodCreateFailed);
        var fixedPlan = TuningPlanner.Plan(t, new ClusterSnapshot([t], nodes, new Dictionary<string, NetworkTuningNodeState>(), []), settings, Now);
        var fine = fixedPlan.Status!.Conditions!.Single(c => c.Type == ConditionTypes.AgentsAvailable);
        Assert.Equal((ConditionStatus.True, ConditionReasons.AgentsRunning), (fine.Status, fine.Reason));
        Assert.Equal(ConditionReasons.RolloutInProgress, fixedPlan.Status.Conditions!.Single(c => c.Type == ConditionTypes.Ready).Reason);
    }
}
