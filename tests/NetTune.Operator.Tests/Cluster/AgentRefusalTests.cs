using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// An agent pod the API server refuses, as PodSecurity admission refuses it in a baseline namespace: the real
/// DaemonSet controller records FailedCreate and retries, and the operator puts the controller's message on the tuning.
/// </summary>
[Collection("cluster")]
public sealed class AgentRefusalTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task AnAgentPodTheApiServerRefusesShowsOnTheTuningWithTheControllersMessage()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        // Quota admission enforces a quota by its status. This control plane runs no quota controller (it has no
        // node), so the test writes the status that controller would: nothing used, nothing allowed.
        var quota = await bed.Client.CoreV1.CreateNamespacedResourceQuotaAsync(new V1ResourceQuota
        {
            Metadata = new V1ObjectMeta { Name = "no-pods" },
            Spec = new V1ResourceQuotaSpec { Hard = new Dictionary<string, ResourceQuantity> { ["pods"] = new("0") } },
        }, bed.Namespace);
        quota.Status = new V1ResourceQuotaStatus
        {
            Hard = new Dictionary<string, ResourceQuantity> { ["pods"] = new("0") },
            Used = new Dictionary<string, ResourceQuantity> { ["pods"] = new("0") },
        };
        await bed.Client.CoreV1.ReplaceNamespacedResourceQuotaStatusAsync(quota, "no-pods", bed.Namespace);
        var node = (await bed.CreateNodesAsync(1)).Single();
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("refused", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "4096" },
        })).Metadata.Name;

        var refused = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, ConditionTypes.AgentsAvailable)?.Reason == ConditionReasons.AgentPodCreateFailed,
            "AgentsAvailable False with the controller's refusal", TimeSpan.FromSeconds(60));
        var agents = TestBed.Condition(refused, ConditionTypes.AgentsAvailable)!;
        output.WriteLine($"{agents.Status} {agents.Reason}: {agents.Message}");
        Assert.Equal(ConditionStatus.False, agents.Status);
        Assert.Contains(node, agents.Message);
        Assert.Contains("exceeded quota: no-pods", agents.Message);
        Assert.Equal(ConditionReasons.AgentPodCreateFailed, TestBed.Condition(refused, "Ready")!.Reason);
        await TestBed.EventuallyAsync(async () => (await bed.EventsAsync(name)).Any(e => e.Reason == ConditionReasons.AgentPodCreateFailed && e.Type == "Warning"),
            "an AgentPodCreateFailed Warning");

        // The quota goes: the controller makes the pod (no kubelet here runs it, so it waits to be scheduled) and the
        // condition clears.
        await bed.Client.CoreV1.DeleteNamespacedResourceQuotaAsync("no-pods", bed.Namespace);
        await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, ConditionTypes.AgentsAvailable)?.Status == ConditionStatus.True,
            "AgentsAvailable True once the agent pod could be made", TimeSpan.FromSeconds(90));
    }
}
