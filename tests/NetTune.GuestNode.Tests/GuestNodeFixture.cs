using System.Diagnostics;
using k8s;
using NetTune.Chart.Tests.Support;
using NetTune.EndToEnd.Tests;
using NetTune.LocalCluster;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace NetTune.GuestNode.Tests;

[CollectionDefinition("guest-node")]
public sealed class GuestNodeCollection : ICollectionFixture<GuestNodeFixture>;

/// <summary>
/// The local control plane with the guest node (a QEMU guest: 2 NUMA nodes, a 4-queue virtio_net data NIC; simulated
/// hardware, a real kernel and kubelet) as its only node, NetTune's images loaded into the guest's containerd, and the
/// chart installed with helm as a user would. No host node: this suite needs only the control plane on this machine.
/// Each step's time goes to the test log (xunit diagnostic messages).
/// </summary>
public sealed class GuestNodeFixture(IMessageSink sink) : IAsyncLifetime
{
    public const string Namespace = "nettune-system";
    public const string Release = "nettune";
    public const string NodeName = "nettune-guest-e2e";

    /// <summary>The one folder the chart's allow-list lets data planes serve from; the guest sees it over 9p.</summary>
    public static readonly string WwwRoot = Path.Combine(Path.GetTempPath(), "nettune-guest-e2e-www");

    private KubeCluster? _cluster;
    private readonly Stopwatch _clock = new();
    private readonly Stopwatch _suite = new();
    private bool _installed;

    public KubeCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster has not started");
    public IKubernetes Client => Cluster.Client;
    public LocalCluster.GuestNode Guest => Cluster.GuestNode!;

    public void Log(string message) => sink.OnMessage(new DiagnosticMessage($"[guest-node] {message}"));

    private void Took(string step)
    {
        Log($"{step,-48} {_clock.Elapsed.TotalSeconds,6:0.0}s");
        _clock.Restart();
    }

    public async Task InitializeAsync()
    {
        _suite.Start();
        _clock.Start();
        var images = await Tool.RunAsync("bash", [Path.Combine(Tool.RepoRoot, "hack", "images.sh"), "archives"],
            new Dictionary<string, string> { ["NETTUNE_PUBLISH_CACHE"] = "1" }, timeout: TimeSpan.FromMinutes(20));
        Assert.True(images.ExitCode == 0, $"hack/images.sh archives failed:\n{images.Output}");
        var archives = images.Stdout.Trim().Split('\n')[^1];
        // Before the guest boots: it reads the host's files over 9p with cache=loose, so they are there from the start.
        Directory.CreateDirectory(WwwRoot);
        Took("image archives (hack/images.sh archives)");

        _cluster = await KubeCluster.StartAsync(new KubeClusterOptions { GuestNode = new GuestNodeOptions { Name = NodeName } });
        foreach (var (step, took) in Guest.StartTimes) Log($"  guest node: {step,-36} {took.TotalSeconds,6:0.0}s");
        Took($"control plane and guest node up ({Guest.Accelerator})");

        foreach (var image in new[] { "operator", "agent", "dataplane" })
            await Guest.ImportImageAsync(Path.Combine(archives, $"{image}.oci.tar"));
        Took("images imported into the guest's containerd");

        await Cluster.InstallCrdsAsync();
        // One operator replica: the guest has 3 allocatable CPUs, and the data-plane pods take one whole CPU per socket.
        var install = await Tool.HelmRunAsync("3", "install", Release, Tool.ChartDir, "--namespace", Namespace, "--create-namespace",
            "--kubeconfig", Cluster.KubeconfigPath, "--skip-crds", "--wait", "--timeout", "5m",
            "--set", "operator.replicas=1", "--set", "operator.logFormat=text",
            "--set", "dataPlane.allowedHostPaths[0]=" + WwwRoot);
        Assert.True(install.ExitCode == 0, $"helm install failed:\n{install.Output}\n{await DescribePodsAsync()}");
        _installed = true;
        await Eventually.TrueAsync(async () =>
        {
            var lease = await Client.CoordinationV1.ReadNamespacedLeaseAsync("nettune-operator", Namespace);
            return lease.Spec?.HolderIdentity is { Length: > 0 };
        }, "the operator pod to hold the Lease", TimeSpan.FromMinutes(3), DescribePodsAsync);
        Took("helm install, operator leading");
    }

    /// <summary>Pods and their recent events, for failure messages.</summary>
    public async Task<string> DescribePodsAsync()
    {
        var (_, pods, _) = await Cluster.KubectlAsync("get", "pods", "-A", "-o", "wide");
        var (_, events, _) = await Cluster.KubectlAsync("get", "events", "-A", "--sort-by=.lastTimestamp");
        var (_, operatorLog, _) = await Cluster.KubectlAsync("logs", "-n", Namespace, "-l", "app.kubernetes.io/name=nettune-operator", "--tail=15");
        var (_, agentLog, _) = await Cluster.KubectlAsync("logs", "-n", Namespace, "-l", "app.kubernetes.io/name=nettune-agent", "--tail=15");
        return $"pods:\n{pods}\nevents:\n{string.Join('\n', events.Split('\n').Where(l => !l.Contains("MissingClusterDNS", StringComparison.Ordinal)).TakeLast(25))}" +
            $"\noperator log:\n{operatorLog}\nagent log:\n{agentLog}";
    }

    public async Task DisposeAsync()
    {
        if (_cluster is null) return;
        _clock.Restart();
        if (_installed)
            await Tool.HelmRunAsync("3", "uninstall", Release, "--namespace", Namespace, "--kubeconfig", Cluster.KubeconfigPath, "--wait", "--timeout", "3m");
        Took("helm uninstall");
        await _cluster.DisposeAsync();
        try { Directory.Delete(WwwRoot, recursive: true); } catch (IOException) { }
        Took("guest drained and stopped, host restored");
        Log($"suite wall time (fixture and tests) {_suite.Elapsed.TotalSeconds,6:0.0}s");
    }
}
