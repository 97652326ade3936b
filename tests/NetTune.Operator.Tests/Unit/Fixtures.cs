using k8s.Models;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Tests.Unit;

/// <summary>Small builders for the objects the pure logic reads.</summary>
internal static class Fixtures
{
    /// <summary>A node whose agent's device plugin registered its NUMA nodes' resources (see <see cref="NumaAdvertised"/>).</summary>
    public static V1Node Node(string name, params (string Key, string Value)[] labels) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels.ToDictionary(l => l.Key, l => l.Value) },
        Status = new V1NodeStatus { Allocatable = NumaAdvertised() },
    };

    /// <summary>Allocatable as a kubelet shows it once the agent's device plugin registered NUMA nodes 0-7, 4 devices each.</summary>
    public static Dictionary<string, ResourceQuantity> NumaAdvertised() =>
        Enumerable.Range(0, 8).ToDictionary(NumaResources.ResourceName, _ => new ResourceQuantity("4"));

    /// <summary>Node <paramref name="name"/> with only the NUMA resources in its allocatable.</summary>
    public static V1Node NumaNode(string name = "node-a") => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Status = new V1NodeStatus { Allocatable = NumaAdvertised() },
    };

    public static NetworkTuning Tuning(string name, long generation = 1, int priority = 0, V1LabelSelector? selector = null,
        Dictionary<string, string>? sysctls = null, string? maxUnavailable = null, bool pauseOnFailure = true, bool dryRun = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Generation = generation, Uid = "uid-" + name, Finalizers = ["nettune.io/revert"] },
        Spec = new NetworkTuningSpec
        {
            NodeSelector = selector,
            AllNodes = selector is null ? true : null,
            Priority = priority,
            Sysctls = sysctls,
            Rollout = new RolloutSpec
            {
                MaxUnavailable = maxUnavailable is null ? null : (IntOrString)maxUnavailable,
                PauseOnFailure = pauseOnFailure,
                DryRun = dryRun,
            },
        },
    };

    public static V1LabelSelector Labels(params (string Key, string Value)[] labels) =>
        new() { MatchLabels = labels.ToDictionary(l => l.Key, l => l.Value) };

    /// <summary>A NodeState as the operator wrote it (generation) with what its agent reported.</summary>
    public static NetworkTuningNodeState State(string node, long generation, NodeStateSpec spec, string? agent = null, string? message = null)
    {
        spec.NodeName = node;
        var state = new NetworkTuningNodeState
        {
            Metadata = new V1ObjectMeta { Name = node, Generation = generation, ResourceVersion = "1" },
            Spec = spec,
        };
        if (agent is null) return state;
        var now = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var conditions = agent switch
        {
            "Applied" => new List<V1Condition> { new() { Type = "Applied", Status = "True", Reason = "Applied", LastTransitionTime = now } },
            "Failed" => [
                new() { Type = "Applied", Status = "False", Reason = "ApplyFailed", Message = message, LastTransitionTime = now },
                new() { Type = "Degraded", Status = "True", Reason = "ApplyFailed", Message = message, LastTransitionTime = now },
            ],
            "Reverted" => [new() { Type = "Reverted", Status = "True", Reason = "Reverted", LastTransitionTime = now }],
            "DryRun" => [new() { Type = "Applied", Status = "False", Reason = "DryRun", LastTransitionTime = now }],
            _ => throw new ArgumentException(agent),
        };
        state.Status = new NodeStateStatus
        {
            ObservedGeneration = generation,
            LastAppliedGeneration = agent == "Applied" ? generation : null,
            Conditions = conditions,
        };
        return state;
    }

    /// <summary>A NodeState spec that has the given tuning at a generation, with the sysctls it won.</summary>
    public static NodeStateSpec Having(string tuning, long generation, Dictionary<string, string>? sysctls = null, int priority = 0) => new()
    {
        Sources = [new TuningSource { Name = tuning, Generation = generation, Priority = priority, Knobs = sysctls?.Keys.Select(k => "sysctl/" + k).Order().ToList() }],
        Sysctls = sysctls,
    };
}
