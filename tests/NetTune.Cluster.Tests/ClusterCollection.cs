using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Cluster.Tests;

[CollectionDefinition("cluster")]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>;
