using System.Diagnostics;
using k8s;
using k8s.Models;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace NetTune.EndToEnd.Tests;

[CollectionDefinition("real-node")]
public sealed class RealNodeCollection : ICollectionFixture<RealNodeFixture>;

/// <summary>
/// The local cluster with its one real node and its image registry (TLS, basic auth), NetTune's images built here and
/// pushed to the registry, the chart pushed there as an OCI artifact and installed from oci:// as a user would: the
/// images by digest, pulled by the node with the chart's imagePullSecrets (containerd holds no credentials), the
/// operator Deployment on, two replicas, leader election on. Each step's time goes to the test log (xunit diagnostic
/// messages).
/// </summary>
public sealed class RealNodeFixture(IMessageSink sink) : IAsyncLifetime
{
    public const string Namespace = "nettune-system";

    /// <summary>The namespace the chart makes for the agents and data-plane pods (its nodeNamespace default), Pod Security level privileged.</summary>
    public const string NodeNamespace = Namespace + "-node";
    public const string Release = "nettune";
    public const string NodeName = "nettune-e2e";
    /// <summary>The kubernetes.io/dockerconfigjson Secret the chart's imagePullSecrets name.</summary>
    public const string PullSecret = "registry-credentials";
    /// <summary>The helm that installs from the registry (see InitializeAsync); client-side apply for the v1.20 server.</summary>
    public const string HelmMajor = "4";
    public static readonly string[] HelmApply = ["--server-side=false"];

    /// <summary>The one folder the chart's allow-list lets data planes serve from, in this suite.</summary>
    public static readonly string WwwRoot = Path.Combine(Path.GetTempPath(), "nettune-e2e-www");

    private KubeCluster? _cluster;
    private readonly Stopwatch _clock = new();
    private bool _journalDirWasAbsent;

    public KubeCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster has not started");
    public IKubernetes Client => Cluster.Client;
    public LocalNode Node => Cluster.Node!;
    private readonly CancellationTokenSource _stopRestarts = new();
    private Task? _restarts;
    public bool Installed { get; set; }

    public RegistryEndpoint Registry => Cluster.Registry!.Endpoint;

    /// <summary>The manifest digest of each image (operator, agent, dataplane) as pushed.</summary>
    public Dictionary<string, string> Digests { get; } = [];

    /// <summary>The chart in the registry (oci://HOST/charts/nettune) and its version.</summary>
    public (string Reference, string Version) Chart { get; private set; }

    /// <summary>The data-plane image the tunings name: in the cluster's registry, by tag.</summary>
    public string DataPlaneImage => Registry.Reference("nettune/dataplane", ImageTag);

    private static string ImageTag => File.ReadLines(Path.Combine(Tool.ChartDir, "Chart.yaml"))
        .First(l => l.StartsWith("appVersion:", StringComparison.Ordinal))["appVersion:".Length..].Trim().Trim('"');

    /// <summary>Host values before the chart was installed: `helm uninstall` must leave them so.</summary>
    public HostValues Baseline { get; private set; } = null!;

    public void Log(string message) => sink.OnMessage(new DiagnosticMessage($"[real-node] {message}"));

    private void Took(string step)
    {
        Log($"{step,-44} {_clock.Elapsed.TotalSeconds,6:0.0}s");
        _clock.Restart();
    }

    public async Task InitializeAsync()
    {
        _clock.Start();
        var images = await Tool.RunAsync("bash", [Path.Combine(Tool.RepoRoot, "hack", "images.sh"), "archives"],
            new Dictionary<string, string> { ["NETTUNE_PUBLISH_CACHE"] = "1" }, timeout: TimeSpan.FromMinutes(20));
        Assert.True(images.ExitCode == 0, $"hack/images.sh archives failed:\n{images.Output}");
        var archives = images.Stdout.Trim().Split('\n')[^1];
        Took("image archives (hack/images.sh archives)");

        _cluster = await KubeCluster.StartAsync(new KubeClusterOptions { Node = new NodeOptions { Name = NodeName }, Registry = true });
        foreach (var (step, took) in Node.StartTimes) Log($"  node: {step,-38} {took.TotalSeconds,6:0.0}s");
        Took("control plane, registry and node up (Ready)");

        using (var push = new RegistryClient(Registry))
        {
            foreach (var image in new[] { "operator", "agent", "dataplane" })
                Digests[image] = await push.PushArchiveAsync(Path.Combine(archives, $"{image}.oci.tar"), $"nettune/{image}", ImageTag);
            Took("images pushed to the cluster's registry");
            // helm 4: helm 3 talks plain HTTP to any loopback registry (containerd's resolver), and this one serves TLS.
            Chart = await push.PushChartAsync(await Tool.HelmAsync(HelmMajor), Tool.ChartDir);
            Took("chart pushed (helm package, helm push)");
        }

        // The agents ask for kubelet restarts by a request file (chart agent.kubeletRestart.mode=requestFile); the node
        // acts on it as a systemd path unit would on a production node.
        _restarts = Node.ServeKubeletRestartRequestsAsync(Cluster, Path.Combine(HostValues.JournalDir, "kubelet-restart-request"), Log, _stopRestarts.Token);
        await Cluster.InstallCrdsAsync();
        _journalDirWasAbsent = !Directory.Exists(HostValues.JournalDir);
        Baseline = HostValues.Read();
        await HelmInstallAsync();
        Took("helm install, operator leading");
    }

    /// <summary>The values every helm install and upgrade of this suite gives, beside the registry's flags.</summary>
    public string[] ChartValues =>
    [
        "--set", "operator.logFormat=text", "--set", "dataPlane.allowedHostPaths[0]=" + WwwRoot,
        "--set", "agent.kubeletRestart.mode=requestFile", "--set", "agent.kubeletRootDir=" + NetTune.LocalCluster.LocalNode.KubeletRootDir,
        "--set", "imagePullSecrets[0].name=" + PullSecret,
        "--set", $"operator.image.repository={Registry.Host}/nettune/operator", "--set", "operator.image.digest=" + Digests["operator"],
        "--set", $"agent.image.repository={Registry.Host}/nettune/agent", "--set", "agent.image.digest=" + Digests["agent"],
        "--set", $"dataPlane.allowedImages[0]={Registry.Host}/nettune/dataplane:*",
    ];

    public async Task HelmInstallAsync()
    {
        Directory.CreateDirectory(WwwRoot);
        // The namespace and the pull secret come first: the pods pull with it from their start.
        try { await Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = Namespace } }); }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict) { }
        var secret = new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = PullSecret },
            Type = "kubernetes.io/dockerconfigjson",
            StringData = new Dictionary<string, string> { [".dockerconfigjson"] = Registry.DockerConfigJson() },
        };
        try { await Client.CoreV1.CreateNamespacedSecretAsync(secret, Namespace); }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict) { }
        var install = await Tool.HelmRunAsync(HelmMajor, ["install", Release, Chart.Reference, "--version", Chart.Version, .. Registry.HelmArgs, .. HelmApply,
            "--namespace", Namespace, "--kubeconfig", Cluster.KubeconfigPath, "--skip-crds", "--wait", "--timeout", "3m", .. ChartValues]);
        Assert.True(install.ExitCode == 0, $"helm install failed:\n{install.Output}\n{await DescribePodsAsync()}");
        Installed = true;
        // The agents and the data planes run in the node namespace the chart made, and pull secrets are namespaced:
        // the secret goes there too before the first tuning makes the agent DaemonSet.
        secret.Metadata.ResourceVersion = null;
        try { await Client.CoreV1.CreateNamespacedSecretAsync(secret, NodeNamespace); }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict) { }
        await Eventually.TrueAsync(async () =>
        {
            var lease = await Client.CoordinationV1.ReadNamespacedLeaseAsync("nettune-operator", Namespace);
            return lease.Spec?.HolderIdentity is { Length: > 0 };
        }, "an operator pod to hold the Lease", TimeSpan.FromMinutes(2));
    }

    /// <summary>Pods and their recent events, for failure messages.</summary>
    public async Task<string> DescribePodsAsync()
    {
        var (_, pods, _) = await Cluster.KubectlAsync("get", "pods", "-A", "-o", "wide");
        var (_, events, _) = await Cluster.KubectlAsync("get", "events", "-A", "--sort-by=.lastTimestamp");
        var (_, operatorLog, _) = await Cluster.KubectlAsync("logs", "-n", Namespace, "-l", "app.kubernetes.io/name=nettune-operator", "--tail=15");
        var (_, agentLog, _) = await Cluster.KubectlAsync("logs", "-n", NodeNamespace, "-l", "app.kubernetes.io/name=nettune-agent", "--tail=10");
        return $"pods:\n{pods}\nevents:\n{string.Join('\n', events.Split('\n').Where(l => !l.Contains("MissingClusterDNS", StringComparison.Ordinal)).TakeLast(25))}" +
            $"\noperator log:\n{operatorLog}\nagent log:\n{agentLog}";
    }

    public async Task DisposeAsync()
    {
        if (_cluster is null) return;
        if (Installed)
            await Tool.HelmRunAsync(HelmMajor, "uninstall", Release, "--namespace", Namespace, "--kubeconfig", Cluster.KubeconfigPath, "--wait");
        _clock.Restart();
        await _stopRestarts.CancelAsync();
        if (_restarts is not null) await _restarts;
        await _cluster.DisposeAsync();
        try { Directory.Delete(WwwRoot, recursive: true); } catch (IOException) { }
        // The kubelet made the agent's (empty) journal folder for its hostPath volume; the host had none.
        if (_journalDirWasAbsent && Directory.Exists(HostValues.JournalDir) && !Directory.EnumerateFileSystemEntries(HostValues.JournalDir).Any())
            Directory.Delete(HostValues.JournalDir);
        Took("node drained and stopped, host restored");
    }
}
