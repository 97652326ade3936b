using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.ControllerRuntime;
using NetTune.Operator.Core.Builders;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// The agent DaemonSet reconcile against a cache that lags the API server, the way it does when the garbage
/// collector's delete of the DaemonSet arrives before the last tuning's own delete event.
/// </summary>
[Collection("cluster")]
public sealed class AgentDaemonSetTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static OperatorCaches Caches(IKubernetes client, OperatorOptions options)
    {
        var io = options.Informer;
        var log = NullLogger.Instance;
        // The informers never run: the test fills the caches by hand with what a lagging watch would hold.
        return new OperatorCaches(
            new Informer<NetworkTuning>(ListWatch.ClusterCustom<NetworkTuning, NetworkTuningList>(client, NetworkTuning.KindName, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural), io, log),
            new Informer<NetworkTuningNodeState>(ListWatch.ClusterCustom<NetworkTuningNodeState, NetworkTuningNodeStateList>(client, NetworkTuningNodeState.KindName, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural), io, log),
            new Informer<V1Node>(ListWatch.Nodes(client), io, log),
            new Informer<V1Pod>(ListWatch.Pods(client, options.Namespace, null), io, log),
            new Informer<V1DaemonSet>(ListWatch.DaemonSets(client, options.Namespace, null), io, log));
    }

    private static async Task<(bool DaemonSet, bool Account)> AgentObjectsAsync(TestBed bed)
    {
        var sets = await bed.Client.AppsV1.ListNamespacedDaemonSetAsync(bed.Namespace);
        var accounts = await bed.Client.CoreV1.ListNamespacedServiceAccountAsync(bed.Namespace);
        return (sets.Items.Any(d => d.Metadata.Name == Names.AgentDaemonSet), accounts.Items.Any(a => a.Metadata.Name == Names.AgentServiceAccount));
    }

    [Fact]
    public async Task ATuningGoneFromTheApiServerButStillCachedGetsNoDaemonSet()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var client = fx.Cluster.CreateClient();
        var options = bed.FastOptions();
        var caches = Caches(client, options);
        var reconciler = new OperatorReconciler(client, caches, options, new OperatorMetrics(), NullLogger.Instance);

        // Deleted without an operator running: no finalizer, so it is gone at once, while the cache still has it live.
        var gone = await bed.CreateTuningAsync("gone", new NetworkTuningSpec { NodeSelector = bed.Selector() });
        caches.Tunings.Remember(gone);
        await bed.DeleteTuningAsync(gone.Metadata.Name);
        Assert.Null(await bed.GetTuningAsync(gone.Metadata.Name));

        var result = await reconciler.ReconcileAsync(OperatorReconciler.AgentKey, CancellationToken.None);
        Assert.Null(result.Error);
        Assert.Equal((false, false), await AgentObjectsAsync(bed));

        // A tuning the API server still has does get its agents, owned by nothing: the garbage collector must not take
        // them away with the tunings while a node has something left to revert.
        var live = await bed.CreateTuningAsync("live", new NetworkTuningSpec { NodeSelector = bed.Selector() });
        caches.Tunings.Remember(live);
        result = await reconciler.ReconcileAsync(OperatorReconciler.AgentKey, CancellationToken.None);
        Assert.Null(result.Error);
        Assert.Equal((true, true), await AgentObjectsAsync(bed));
        var ds = await bed.Client.AppsV1.ReadNamespacedDaemonSetAsync(Names.AgentDaemonSet, bed.Namespace);
        Assert.Null(ds.Metadata.OwnerReferences);
        Assert.Null((await bed.Client.CoreV1.ReadNamespacedServiceAccountAsync(Names.AgentServiceAccount, bed.Namespace)).Metadata.OwnerReferences);
    }
    /// <summary>
    /// The agents' ServiceAccount costs requests once, with the DaemonSet, not on each agent reconcile (a rollout runs
    /// one every few nodes, and each was a create refused with 409 plus a read): counted on the operator's own client
    /// against the API server. Deleted by hand, it comes back once the DaemonSet controller cannot make an agent pod
    /// without it (ServiceAccount admission refuses the pod; FailedCreate).
    /// </summary>
    [Fact]
    public async Task TheAgentsServiceAccountIsWrittenWithTheDaemonSetNotOnEveryReconcileAndAgainWhenMissing()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var metrics = new OperatorMetrics();
        using var client = new Kubernetes(fx.Cluster.AdminConfig, new CountingHandler(metrics.ApiRequests));
        await bed.CreateNodesAsync(2);
        await bed.StartOperatorAsync(client: client, metrics: metrics);
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("account", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "4096" },
        })).Metadata.Name;
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 2, "both nodes Applied");
        Assert.Equal((true, true), await AgentObjectsAsync(bed));
        var accountRequests = AccountRequests(metrics);
        var agentReconciles = AgentReconciles(metrics);
        output.WriteLine($"after the first nodes: {accountRequests} ServiceAccount requests, {agentReconciles} agent reconciles");

        // Each new node gets the agent label and a NodeState, and each NodeState wakes the agent reconcile; the
        // DaemonSet's pods never run here (no scheduler), so it also looks again every few seconds.
        await bed.CreateNodesAsync(4);
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 6, "six nodes Applied");
        await TestBed.EventuallyAsync(() => Task.FromResult(AgentReconciles(metrics) >= agentReconciles + 3), "three more agent reconciles", TimeSpan.FromSeconds(30));
        output.WriteLine($"after four more nodes: {AccountRequests(metrics)} ServiceAccount requests, {AgentReconciles(metrics)} agent reconciles");
        Assert.Equal(accountRequests, AccountRequests(metrics));

        await bed.Client.CoreV1.DeleteNamespacedServiceAccountAsync(Names.AgentServiceAccount, bed.Namespace);
        await bed.CreateNodesAsync(1);
        await TestBed.EventuallyAsync(async () => (await AgentObjectsAsync(bed)).Account, "the ServiceAccount written again after a FailedCreate",
            TimeSpan.FromSeconds(90));
        output.WriteLine($"after the repair: {AccountRequests(metrics)} ServiceAccount requests, {AgentReconciles(metrics)} agent reconciles");
    }

    private static double AccountRequests(OperatorMetrics metrics) =>
        metrics.ApiRequests.GetAllLabelValues().Where(l => l[1] == "serviceaccounts").Sum(l => metrics.ApiRequests.WithLabels(l).Value);

    private static double AgentReconciles(OperatorMetrics metrics) =>
        metrics.Reconciles.GetAllLabelValues().Where(l => l[0] == "DaemonSet").Sum(l => metrics.Reconciles.WithLabels(l).Value);
}
