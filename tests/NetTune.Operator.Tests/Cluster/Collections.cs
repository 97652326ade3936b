using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;

// One cluster at a time on a 2-core machine: the collections run one after the other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace NetTune.Operator.Tests.Cluster;

[CollectionDefinition("cluster")]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>;

/// <summary>A cluster whose apiserver has no watch cache and compacts etcd every few seconds, so old watches get 410 Gone.</summary>
public sealed class CompactingClusterFixture : ClusterFixture
{
    protected override KubeClusterOptions Options => new() { WatchCache = false, EtcdCompactionInterval = TimeSpan.FromSeconds(3) };
}

[CollectionDefinition("compacting-cluster")]
public sealed class CompactingClusterCollection : ICollectionFixture<CompactingClusterFixture>;
