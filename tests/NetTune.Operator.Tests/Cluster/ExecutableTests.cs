using k8s;
using System.Diagnostics;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

[Collection("cluster")]
public sealed class ExecutableTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task TheExecutableServesHealthAndMetricsReconcilesAndStopsOnSigterm()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        bed.StartAgents();
        using var op = OperatorProcess.Start(fx.Cluster.KubeconfigPath, bed.Namespace, "--leader-elect", "--lease-name", "exe-" + bed.Id, "--identity", "exe-" + bed.Id);
        await TestBed.EventuallyAsync(op.ReadyAsync, "/readyz answers 200");
        Assert.Equal("ok", await op.Http.GetStringAsync("/healthz"));

        var name = (await bed.CreateTuningAsync("exe", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);

        var metrics = (await op.MetricsAsync())!;
        Assert.Contains("nettune_operator_reconciles_total{kind=\"NetworkTuning\",result=\"success\"}", metrics);
        Assert.Contains("nettune_operator_reconcile_duration_seconds_bucket", metrics);
        Assert.Contains($"nettune_operator_nodes{{tuning=\"{name}\",phase=\"applied\"}} 2", metrics);
        Assert.Contains("nettune_operator_leader 1", metrics);
        Assert.Contains("nettune_operator_api_requests_total{verb=\"post\",resource=\"networktuningnodestates\"}", metrics);
        Assert.Contains("nettune_operator_workqueue_latency_seconds_count", metrics);

        // JSON logs: every line the operator writes parses as a JSON object.
        Assert.All(op.Logs.Where(l => l.Length > 0), l => System.Text.Json.JsonDocument.Parse(l).Dispose());

        using (Process.Start("kill", ["-TERM", op.Process.Id.ToString()])) { }
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await op.Process.WaitForExitAsync(exit.Token);
        Assert.Equal(0, op.Process.ExitCode);
        Assert.Contains(op.Logs, l => l.Contains("shutting down"));
        // The Lease was released on the way out: a successor need not wait out its duration.
        var lease = await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync("exe-" + bed.Id, bed.Namespace);
        Assert.True(string.IsNullOrEmpty(lease.Spec.HolderIdentity), $"the Lease is still held by {lease.Spec.HolderIdentity}");
        Assert.Equal(1, lease.Spec.LeaseDurationSeconds);
    }

    [Fact]
    public async Task FlagsSetTheLogLevelAndTheAgentDaemonSet()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(1);
        bed.StartAgents();
        using var op = OperatorProcess.Start(fx.Cluster.KubeconfigPath, bed.Namespace,
            "--event-namespace", "default", "--log-level", "Warning",
            "--agent-log-level", "debug", "--agent-metrics-port", "9300",
            "--agent-resources", """{"requests":{"cpu":"30m","memory":"80Mi"},"limits":{"memory":"200Mi"}}""",
            "--agent-tolerations", """[{"key":"nettune.io/dedicated","operator":"Exists"}]""",
            "--agent-node-selector", """{"kubernetes.io/os":"linux"}""", "--agent-kubelet-root-dir", "/data/kubelet");
        await TestBed.EventuallyAsync(op.ReadyAsync, "/readyz answers 200");
        var name = (await bed.CreateTuningAsync("flags", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 1);

        var ds = await TestBed.EventuallyAsync(async () => (await bed.Client.AppsV1.ListNamespacedDaemonSetAsync(bed.Namespace)).Items, l => l.Count == 1, "the agent DaemonSet");
        var pod = ds[0].Spec.Template.Spec;
        var c = pod.Containers.Single();
        Assert.Equal(["--metrics-port", "9300", "--kubelet-root-dir", "/data/kubelet", "--log-level", "Debug"], c.Args.Skip(c.Args.IndexOf("--metrics-port")));
        Assert.Equal("/data/kubelet", pod.Volumes.Single(v => v.Name == c.VolumeMounts.Single(m => m.MountPath == "/host/data/kubelet").Name).HostPath.Path);
        Assert.Equal(9300, c.Ports.Single().ContainerPort);
        Assert.Equal("30m", c.Resources.Requests["cpu"].ToString());
        Assert.Equal("200Mi", c.Resources.Limits["memory"].ToString());
        Assert.Equal("nettune.io/dedicated", pod.Tolerations.Single().Key);
        Assert.Equal("linux", pod.NodeSelector["kubernetes.io/os"]);

        await TestBed.EventuallyAsync(async () => (await bed.EventsAsync(name)).Count > 0, "the tuning's Events in default");

        // Warning and up: the operator's Information lines (start-up, created DaemonSet, events) are not written.
        Assert.DoesNotContain(op.Logs, l => l.Contains("\"LogLevel\":\"Information\""));
    }

    [Theory]
    [InlineData("--log-level", "Verbose", "--log-level: 'Verbose' is not a log level")]
    [InlineData("--agent-resources", "{\"requests\":{\"cpu\":\"lots\"}}", "--agent-resources: resources: requests.cpu")]
    [InlineData("--event-namespace", "nettune-system", "only in namespace default")]
    [InlineData("--agent-tolerations", "[{\"operator\":\"Matches\"}]", "--agent-tolerations: tolerations: operator 'Matches'")]
    [InlineData("--agent-kubelet-root-dir", "/", "--agent-kubelet-root-dir: '/' is not an absolute folder")]
    [InlineData("--dataplane-cpu-margin", "lots", "--dataplane-cpu-margin: 'lots' is not a CPU quantity")]
    public async Task ABadFlagStopsTheOperatorWithTheReason(string flag, string value, string message)
    {
        using var op = OperatorProcess.Start(fx.Cluster.KubeconfigPath, "nettune-system", flag, value);
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await op.Process.WaitForExitAsync(exit.Token);
        Assert.Equal(2, op.Process.ExitCode);
        op.Process.WaitForExit(); // flushes the redirected output
        Assert.Contains(op.Logs, l => l.Contains(message));
    }

    [Fact]
    public async Task WhenTheLeaderProcessIsKilledTheOtherProcessTakesOver()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        bed.StartAgents();
        var lease = "exe-lease-" + bed.Id;
        OperatorProcess Replica(string identity) => OperatorProcess.Start(fx.Cluster.KubeconfigPath, bed.Namespace,
            "--leader-elect", "--lease-name", lease, "--identity", identity,
            "--lease-duration-seconds", "3", "--renew-deadline-seconds", "2", "--retry-period-seconds", "0.5");
        using var a = Replica("proc-a");
        using var b = Replica("proc-b");

        var holder = await TestBed.EventuallyAsync(async () =>
        {
            try { return (await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync(lease, bed.Namespace)).Spec.HolderIdentity; }
            catch (k8s.Autorest.HttpOperationException) { return null; }
        }, h => h is "proc-a" or "proc-b", "a lease holder");
        var (leader, standby, standbyName) = holder == "proc-a" ? (a, b, "proc-b") : (b, a, "proc-a");

        var name = (await bed.CreateTuningAsync("procs", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await Specs.ConvergedAsync(bed, name, 1, 2);
        Assert.Contains("nettune_operator_leader 1", (await leader.MetricsAsync())!);
        Assert.Contains("nettune_operator_leader 0", (await standby.MetricsAsync())!);
        Assert.DoesNotContain("nettune_operator_reconciles_total{", (await standby.MetricsAsync())!);

        leader.Process.Kill(); // SIGKILL: no chance to hand the Lease over
        await TestBed.EventuallyAsync(async () => (await bed.Client.CoordinationV1.ReadNamespacedLeaseAsync(lease, bed.Namespace)).Spec.HolderIdentity == standbyName,
            "the standby holds the Lease", TimeSpan.FromSeconds(30));
        await bed.UpdateTuningAsync(name, s => s.Sysctls!["net.core.somaxconn"] = "4096");
        await Specs.ConvergedAsync(bed, name, 2, 2);
        Assert.Contains("nettune_operator_leader 1", (await standby.MetricsAsync())!);
    }
}
