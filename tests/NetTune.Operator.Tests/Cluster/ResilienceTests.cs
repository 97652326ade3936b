using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.ControllerRuntime;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

internal static class Specs
{
    public static NetworkTuningSpec Somaxconn(TestBed bed, string value) => new()
    {
        NodeSelector = bed.Selector(),
        Sysctls = new() { ["net.core.somaxconn"] = value },
        Rollout = new RolloutSpec { MaxUnavailable = "100%" },
    };

    public static async Task ConvergedAsync(TestBed bed, string tuning, long generation, int nodes) =>
        await bed.WaitForTuningAsync(tuning,
            t => t.Status?.ObservedGeneration == generation && t.Status.AppliedNodes == nodes && TestBed.Condition(t, "Ready")?.Status == "True",
            $"generation {generation} applied on {nodes} nodes");
}

[Collection("cluster")]
public sealed class ApiServerRestartTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task TheOperatorRecoversFromAnApiServerRestartWithoutRestarting()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(3);
        var host = await bed.StartOperatorAsync();
        bed.StartAgents();
        var first = (await bed.CreateTuningAsync("restart", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, first, 1, 3);

        await fx.Cluster.StopApiServerAsync();
        await fx.Cluster.StartApiServerAsync();

        // The same host, never restarted, follows changes made after the restart.
        await bed.UpdateTuningAsync(first, s => s.Sysctls!["net.core.somaxconn"] = "2048");
        await Specs.ConvergedAsync(bed, first, 2, 3);
        var second = (await bed.CreateTuningAsync("after", Specs.Somaxconn(bed, "2048"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, second, 1, 3);
        Assert.All((await bed.NodeStatesAsync()).Values, s => Assert.True(TestBed.Has(s, second, 1)));

        var restarts = new[] { "error", "closed", "gone", "hung" }.Sum(r => host.Metrics.WatchRestarts.WithLabels("NetworkTuning", r).Value);
        Assert.True(restarts >= 1, $"the NetworkTuning watch restarted {restarts} times");
    }
}

[Collection("compacting-cluster")]
public sealed class WatchGoneTests(CompactingClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task A410DuringAWatchMakesTheInformerListAgainAndTheOperatorCarriesOn()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        // Short server-side watch timeouts: each informer watches again from its last resourceVersion every few
        // seconds, and the quiet kinds' versions fall behind etcd's compaction.
        var options = bed.FastOptions() with { Informer = bed.FastOptions().Informer with { WatchTimeout = TimeSpan.FromSeconds(2) } };
        var host = await bed.StartOperatorAsync(options);
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("gone", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);

        double Gone() => new[] { "NetworkTuning", "NetworkTuningNodeState", "Node", "Pod", "DaemonSet" }
            .Sum(k => host.Metrics.WatchRestarts.WithLabels(k, "gone").Value);
        var i = 0;
        await TestBed.EventuallyAsync(async () =>
        {
            // Writes elsewhere move etcd's revision on, so compaction passes the watched versions.
            await bed.Client.CoreV1.CreateNamespacedConfigMapAsync(
                new V1ConfigMap { Metadata = new V1ObjectMeta { Name = $"churn-{i++}" }, Data = new Dictionary<string, string> { ["i"] = $"{i}" } }, bed.Namespace);
            return Gone() > 0;
        }, "a watch ended with 410 Gone", TimeSpan.FromSeconds(90));

        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "4096");
        await Specs.ConvergedAsync(bed, name, 2, 2);
        var extra = (await bed.CreateNodesAsync(1))[0];
        await Specs.ConvergedAsync(bed, name, 2, 3);
        Assert.Equal("4096", (await bed.GetNodeStateAsync(extra))!.Spec.Sysctls!["net.core.somaxconn"]);
    }
}

[Collection("cluster")]
public sealed class LeaderElectionTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task OnlyTheLeaderReconcilesAndTheOtherTakesOverWhenItDies()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        OperatorOptions Elect(string identity) => bed.FastOptions(identity) with
        {
            LeaderElect = true,
            LeaseName = "nettune-" + bed.Id,
            LeaseDuration = TimeSpan.FromSeconds(3),
            RenewDeadline = TimeSpan.FromSeconds(2),
            RetryPeriod = TimeSpan.FromMilliseconds(500),
        };
        var a = await bed.StartOperatorAsync(Elect("replica-a"));
        var b = await bed.StartOperatorAsync(Elect("replica-b"));
        bed.StartAgents();

        await TestBed.EventuallyAsync(() => Task.FromResult(a.IsLeader || b.IsLeader), "a leader");
        var (leader, standby) = a.IsLeader ? (a, b) : (b, a);
        Assert.False(standby.IsLeader);
        Assert.True(standby.IsReady);

        var name = (await bed.CreateTuningAsync("elect", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);
        Assert.Equal(0, standby.Metrics.Reconciles.WithLabels("NetworkTuning", "success").Value);
        Assert.True(leader.Metrics.Reconciles.WithLabels("NetworkTuning", "success").Value > 0);
        Assert.Equal(1, leader.Metrics.Leader.Value);
        Assert.Equal(0, standby.Metrics.Leader.Value);

        // The leader stops; the standby takes the Lease (released on the way out, or expired).
        await leader.StopAsync();
        await TestBed.EventuallyAsync(() => Task.FromResult(standby.IsLeader), "the standby leads", TimeSpan.FromSeconds(20));
        var lease = await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync("nettune-" + bed.Id, bed.Namespace);
        Assert.Equal(standby.Identity, lease.Spec.HolderIdentity);

        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "4096");
        await Specs.ConvergedAsync(bed, name, 2, 2);
        Assert.True(standby.Metrics.Reconciles.WithLabels("NetworkTuning", "success").Value > 0);
    }
}

[Collection("cluster")]
public sealed class LeaseHandOverTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task AStoppingLeaderReleasesTheLeaseSoTheStandbyTakesOverBeforeItWouldExpire()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        var leaseName = "handover-" + bed.Id;
        // A lease longer than the test's patience: only a released Lease can change hands within it.
        OperatorOptions Elect(string identity) => bed.FastOptions(identity) with
        {
            LeaderElect = true,
            LeaseName = leaseName,
            LeaseDuration = TimeSpan.FromSeconds(120),
            RenewDeadline = TimeSpan.FromSeconds(60),
            RetryPeriod = TimeSpan.FromMilliseconds(500),
        };
        var a = await bed.StartOperatorAsync(Elect("handover-a"));
        await TestBed.EventuallyAsync(() => Task.FromResult(a.IsLeader), "a leads");
        var b = await bed.StartOperatorAsync(Elect("handover-b"));
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("handover", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);

        await a.StopAsync();
        var released = await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync(leaseName, bed.Namespace);
        Assert.True(string.IsNullOrEmpty(released.Spec.HolderIdentity), $"still held by {released.Spec.HolderIdentity}");
        Assert.Equal(1, released.Spec.LeaseDurationSeconds);

        await TestBed.EventuallyAsync(() => Task.FromResult(b.IsLeader), "the standby leads");
        Assert.Equal("handover-b", (await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync(leaseName, bed.Namespace)).Spec.HolderIdentity);
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "2048");
        await Specs.ConvergedAsync(bed, name, 2, 2);
    }

    [Fact]
    public async Task APartitionedLeaderStopsAtItsRenewDeadlineNeverCampaignsAgainAndNeverWritesBesideItsSuccessor()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        var leaseName = "partition-" + bed.Id;
        OperatorOptions Elect(string identity) => bed.FastOptions(identity) with
        {
            LeaderElect = true,
            LeaseName = leaseName,
            LeaseDuration = TimeSpan.FromSeconds(6),
            RenewDeadline = TimeSpan.FromSeconds(4),
            RetryPeriod = TimeSpan.FromMilliseconds(500),
        };
        // The first replica reaches the API server only through the proxy, and every write it sends is recorded.
        await using var proxy = new FreezableProxy(fx.Cluster.ApiServerUrl);
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(fx.Cluster.KubeconfigPath);
        config.Host = $"https://127.0.0.1:{proxy.Port}";
        config.WithKeepAlivePings(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        var writes = new WriteRecorder();
        var a = await bed.StartOperatorAsync(Elect("partition-a"), new Kubernetes(config, writes));
        await TestBed.EventuallyAsync(() => Task.FromResult(a.IsLeader), "a leads");
        var b = await bed.StartOperatorAsync(Elect("partition-b"));
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("partition", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);
        Assert.NotEmpty(writes.Since(DateTime.MinValue));

        proxy.Partition();
        // Work for a leader: only the successor can do it.
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "2048");
        await a.LeadershipLost.WaitAsync(TestBed.Timeout);
        var lostAt = DateTime.UtcNow;
        Assert.False(a.IsLeader);
        await TestBed.EventuallyAsync(() => Task.FromResult(b.IsLeader), "the successor leads");
        await Specs.ConvergedAsync(bed, name, 2, 2);
        var lease = await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync(leaseName, bed.Namespace);
        Assert.Equal("partition-b", lease.Spec.HolderIdentity);
        var successorSince = lease.Spec.AcquireTime!.Value;

        // The partition heals: the old leader neither campaigns nor writes again.
        proxy.Heal();
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "4096");
        await Specs.ConvergedAsync(bed, name, 3, 2);
        Assert.Equal("partition-b", (await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync(leaseName, bed.Namespace)).Spec.HolderIdentity);
        Assert.False(a.IsLeader);
        Assert.Empty(writes.Since(successorSince));
        Assert.Empty(writes.Since(lostAt));
    }

    /// <summary>Every request that changes something, other than the Lease itself, with the time it was sent.</summary>
    private sealed class WriteRecorder : DelegatingHandler
    {
        private readonly List<(DateTime At, string What)> _writes = [];

        public IReadOnlyList<string> Since(DateTime t)
        {
            lock (_writes) return [.. _writes.Where(w => w.At >= t).Select(w => $"{w.At:O} {w.What}")];
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (request.Method != HttpMethod.Get && request.RequestUri?.AbsolutePath.Contains("/leases/", StringComparison.Ordinal) != true
                && request.RequestUri?.AbsolutePath.EndsWith("/leases", StringComparison.Ordinal) != true)
                lock (_writes) _writes.Add((DateTime.UtcNow, $"{request.Method} {request.RequestUri?.AbsolutePath}"));
            return base.SendAsync(request, ct);
        }
    }
}

[Collection("cluster")]
public sealed class HungWatchTests(ClusterFixture fx, ITestOutputHelper output)
{
    // Over HTTP/1.1 (a connection per watch, dropped by the informer's own deadline) the same scenario passed, but
    // not reliably: .NET's pool kept handing out frozen idle connections. The operator runs HTTP/2 with pings.
    [Fact]
    public async Task ASilentConnectionIsDroppedAndTheWatchesOpenedAgain()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        await using var proxy = new FreezableProxy(fx.Cluster.ApiServerUrl);
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(fx.Cluster.KubeconfigPath);
        config.Host = $"https://127.0.0.1:{proxy.Port}";
        config.WithKeepAlivePings(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        var options = bed.FastOptions() with
        {
            Informer = bed.FastOptions().Informer with { WatchTimeout = TimeSpan.FromSeconds(3), HangGrace = TimeSpan.FromSeconds(2) },
        };
        var host = await bed.StartOperatorAsync(options, new Kubernetes(config));
        bed.StartAgents();
        var name = (await bed.CreateTuningAsync("hung", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);

        // The operator's connection goes silent without closing. Either the missed HTTP/2 ping or the watch's own
        // deadline must drop it; the informers then watch again on a new connection.
        double Restarts() => host.Metrics.WatchRestarts.WithLabels("NetworkTuning", "hung").Value
                             + host.Metrics.WatchRestarts.WithLabels("NetworkTuning", "error").Value;
        var before = Restarts();
        proxy.FreezeOpenConnections();
        Assert.True(proxy.Frozen > 0);
        await TestBed.EventuallyAsync(() => Task.FromResult(Restarts() > before), "the silent NetworkTuning watch is dropped");

        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "4096");
        await Specs.ConvergedAsync(bed, name, 2, 2);
    }
}
