using System.Diagnostics;
using k8s;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
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
/// chart installed with helm. The operator runs on this machine as a process with its ServiceAccount's token (the
/// chart's operator.enabled=false), as a control-plane component off the tuned node: under TCG emulation the guest
/// runs the JIT-compiled operator too slowly for its probes' 1 s timeout (it was restarted and its webhook timed out).
/// The agent DaemonSet and the data-plane pods run in the guest. No host node: only the control plane runs here.
/// Each step's time goes to the test log (xunit diagnostic messages).
/// </summary>
public sealed class GuestNodeFixture(IMessageSink sink) : IAsyncLifetime
{
    public const string Namespace = "nettune-system";
    /// <summary>The namespace the chart makes for the agents and data-plane pods (its nodeNamespace default).</summary>
    public const string NodeNamespace = Namespace + "-node";
    public const string Release = "nettune";
    public const string NodeName = "nettune-guest-e2e";

    /// <summary>The one folder the chart's allow-list lets data planes serve from; the guest sees it over 9p.</summary>
    public static readonly string WwwRoot = Path.Combine(Path.GetTempPath(), "nettune-guest-e2e-www");

    private KubeCluster? _cluster;
    private readonly Stopwatch _clock = new();
    private readonly Stopwatch _suite = new();
    private bool _installed;
    private ChildProcess? _operator;
    private bool _suiteTuning;

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

        _cluster = await KubeCluster.StartAsync(new KubeClusterOptions { GuestNode = new GuestNodeOptions
        {
            Name = NodeName,
            // The reboot test's: containerd's images, the kubelet's state and the agent's journal survive it.
            PersistentDiskGiB = 8,
        } });
        foreach (var (step, took) in Guest.StartTimes) Log($"  guest node: {step,-36} {took.TotalSeconds,6:0.0}s");
        Took($"control plane and guest node up ({Guest.Accelerator})");

        // The operator runs on the host: only the node's images go into the guest.
        foreach (var image in new[] { "agent", "dataplane" })
            await Guest.ImportImageAsync(Path.Combine(archives, $"{image}.oci.tar"));
        Took("images imported into the guest's containerd");

        await Cluster.InstallCrdsAsync();
        var install = await Tool.HelmRunAsync("3", "install", Release, Tool.ChartDir, "--namespace", Namespace, "--create-namespace",
            "--kubeconfig", Cluster.KubeconfigPath, "--skip-crds", "--set", "operator.enabled=false");
        Assert.True(install.ExitCode == 0, $"helm install failed:\n{install.Output}");
        _installed = true;
        Took("helm install (operator.enabled=false)");

        var kubeconfig = Cluster.WriteKubeconfig(Path.Combine(Cluster.Folder, "operator.kubeconfig"), await ServiceAccountTokenAsync($"{Release}-operator"), $"{Release}-operator");
        // This test's own build configuration (bin/<configuration>/net10.0): the operator is built beside it.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var dll = Path.Combine(Tool.RepoRoot, "operator", "NetTune.Operator", "bin", configuration, "net10.0", "nettune-operator.dll");
        Assert.True(File.Exists(dll), $"no {dll}: build the solution first");
        _operator = ChildProcess.Start("operator", "dotnet",
        [
            dll, $"--kubeconfig={kubeconfig}", $"--namespace={Namespace}", $"--node-namespace={NodeNamespace}", "--agent-image=nettune/agent:0.1.0",
            "--metrics-port=0", "--log-format=text", $"--dataplane-allowed-host-paths={WwwRoot}", "--dataplane-allowed-images=nettune/dataplane:*",
            // The chart's requests and memory limit, no CPU limit: the emulated guest runs code an order of magnitude
            // slower than hardware, and under the default 500m limit the agent was throttled in 366 of its first 458
            // CFS periods, so the JIT-compiled agent took minutes to listen.
            "--agent-resources={\"requests\":{\"cpu\":\"20m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}}",
            // The guest's kubelet runs under busybox init, which starts it again when it exits.
            "--agent-kubelet-restart=command:nsenter --target 1 --mount --pid -- /bin/busybox killall kubelet",
        ], Path.Combine(Cluster.Folder, "operator.log"));
        Took("operator started on the host");

        // A tuning that lives as long as the suite (one sysctl, no NIC value), so the agent pod starts once: under
        // TCG the JIT-compiled agent takes minutes to listen, and the operator removes it from a node with no tuning.
        var backlog = int.Parse((await Guest.ReadFileAsync("/proc/sys/net/core/netdev_max_backlog")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await Client.CoreV1.PatchNodeAsync(new k8s.Models.V1Patch("{\"metadata\":{\"labels\":{\"nettune-guest-suite\":\"1\"}}}", k8s.Models.V1Patch.PatchType.MergePatch), NodeName);
        await Client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
        {
            Metadata = new k8s.Models.V1ObjectMeta { Name = SuiteTuning },
            Spec = new NetworkTuningSpec
            {
                NodeSelector = new k8s.Models.V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune-guest-suite"] = "1" } },
                Sysctls = new Dictionary<string, string> { ["net.core.netdev_max_backlog"] = (backlog + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) },
            },
        }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        _suiteTuning = true;
        await Eventually.TrueAsync(async () => (await Guest.ReadFileAsync("/proc/sys/net/core/netdev_max_backlog")).Trim() == (backlog + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            "the agent in the guest to apply the suite's tuning", TimeSpan.FromMinutes(8), DescribePodsAsync);
        Took("agent started in the guest and applied the suite's tuning");
        Log($"{"suite set-up (fixture) total",-48} {_suite.Elapsed.TotalSeconds,6:0.0}s");
    }

    /// <summary>The tuning that keeps the agent on the guest for the whole suite.</summary>
    public const string SuiteTuning = "guest-suite";

    /// <summary>The token of a ServiceAccount (v1.20 keeps it in a Secret the token controller makes).</summary>
    private async Task<string> ServiceAccountTokenAsync(string account)
    {
        string? token = null;
        await Eventually.TrueAsync(async () =>
        {
            var secrets = await Client.CoreV1.ListNamespacedSecretAsync(Namespace, fieldSelector: "type=kubernetes.io/service-account-token");
            var secret = secrets.Items.FirstOrDefault(s => s.Metadata.Annotations?.TryGetValue("kubernetes.io/service-account.name", out var a) == true && a == account);
            token = secret?.Data?.TryGetValue("token", out var bytes) == true ? System.Text.Encoding.UTF8.GetString(bytes) : null;
            return token is not null;
        }, $"a token for ServiceAccount {Namespace}/{account}", TimeSpan.FromSeconds(60));
        return token!;
    }

    /// <summary>The end of the operator's log, for failure messages.</summary>
    public string OperatorLog => _operator?.Tail(20) ?? "(no operator)";

    /// <summary>Pods and their recent events, for failure messages.</summary>
    public async Task<string> DescribePodsAsync()
    {
        var (_, pods, _) = await Cluster.KubectlAsync("get", "pods", "-A", "-o", "wide");
        var (_, events, _) = await Cluster.KubectlAsync("get", "events", "-A", "--sort-by=.lastTimestamp");
        var operatorLog = OperatorLog;
        var (_, agentLog, _) = await Cluster.KubectlAsync("logs", "-n", NodeNamespace, "-l", "app.kubernetes.io/name=nettune-agent", "--tail=15");
        return $"pods:\n{pods}\nevents:\n{string.Join('\n', events.Split('\n').Where(l => !l.Contains("MissingClusterDNS", StringComparison.Ordinal)).TakeLast(25))}" +
            $"\noperator log:\n{operatorLog}\nagent log:\n{agentLog}";
    }

    public async Task DisposeAsync()
    {
        if (_cluster is null) return;
        _clock.Restart();
        if (_suiteTuning)
        {
            try { await Tunings.DeleteAndWaitGoneAsync(Client, SuiteTuning, TimeSpan.FromMinutes(6), DescribePodsAsync); }
            catch (TimeoutException e) { Log(e.Message); }
            Took("suite tuning reverted");
        }
        if (_operator is not null) await _operator.DisposeAsync();
        if (_installed)
            await Tool.HelmRunAsync("3", "uninstall", Release, "--namespace", Namespace, "--kubeconfig", Cluster.KubeconfigPath, "--wait", "--timeout", "3m");
        Took("helm uninstall");
        await _cluster.DisposeAsync();
        try { Directory.Delete(WwwRoot, recursive: true); } catch (IOException) { }
        Took("guest drained and stopped, host restored");
        Log($"suite wall time (fixture and tests) {_suite.Elapsed.TotalSeconds,6:0.0}s");
    }
}
