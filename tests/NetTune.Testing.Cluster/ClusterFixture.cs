using NetTune.LocalCluster;
using Xunit;

namespace NetTune.Testing.Cluster;

/// <summary>
/// One real cluster, with the CRDs installed, shared by a test collection. Declare in the test assembly:
/// <c>[CollectionDefinition("cluster")] public sealed class ClusterCollection : ICollectionFixture&lt;ClusterFixture&gt;;</c>
/// </summary>
public class ClusterFixture : IAsyncLifetime
{
    private KubeCluster? _cluster;

    public KubeCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster has not started");

    protected virtual KubeClusterOptions Options => new();

    public async Task InitializeAsync()
    {
        _cluster = await KubeCluster.StartAsync(Options).ConfigureAwait(false);
        await _cluster.InstallCrdsAsync().ConfigureAwait(false);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync().ConfigureAwait(false);
    }
}
