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
}
