using System.Net;
using k8s;

namespace NetTune.LocalCluster;

/// <summary>
/// One real node on this machine, joined to a <see cref="KubeCluster"/>: containerd (with runc and a bridge CNI) and a
/// kubelet with its own system:node identity, the CPU manager and the Topology Manager. Its folders, ports and bridge
/// are fixed, so one node runs per machine at a time (a lock says so). Everything it changes on the host is recorded
/// first and put back by <c>node-teardown.sh</c>: on dispose, and by a guard process when the owner dies without it.
/// </summary>
public sealed class LocalNode : ClusterNode
{
    public const string StateDir = "/var/lib/nettune-node";
    public const string RunDir = "/run/nettune-node";
    /// <summary>The kubelet's --root-dir (its CPU manager checkpoint, pod volumes, the PodResources socket).</summary>
    public const string KubeletRootDir = StateDir + "/kubelet";
    /// <summary>Where the kubelet finds Localhost seccomp profiles: its root dir's seccomp folder, as on current kubelets.</summary>
    public const string SeccompDir = KubeletRootDir + "/seccomp";
    public const string LockPath = "/run/nettune-node.lock";
    public const string Bridge = "nettune0";
    public const string PauseImage = "nettune.local/pause:v1.20.2";

    /// <summary>The `kubernetes` Service's ClusterIP in the cluster's service range, relayed to the apiserver.</summary>
    public static readonly IPAddress KubernetesServiceIp = IPAddress.Parse("10.96.0.1");

    /// <summary>The cluster's service range (the apiserver's --service-cluster-ip-range).</summary>
    public const string ServiceSubnet = "10.96.0.0/24";

    /// <summary>Kernel settings the kubelet (and the bridge plugin's ip_forward) change at start; all restored.</summary>
    private static readonly string[] TouchedSysctls =
    [
        "/proc/sys/vm/overcommit_memory", "/proc/sys/vm/panic_on_oom", "/proc/sys/kernel/panic",
        "/proc/sys/kernel/panic_on_oops", "/proc/sys/kernel/keys/root_maxkeys", "/proc/sys/kernel/keys/root_maxbytes",
        "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/forwarding", "/proc/sys/net/ipv6/conf/all/forwarding",
    ];

    /// <summary>Host folders the kubelet and containerd use whatever their root and state folders say.</summary>
    private static readonly string[] FixedHostFolders =
    [
        "/var/lib/kubelet", "/var/lib/kubelet/device-plugins", "/var/log/pods", "/var/log/containers",
        "/run/containerd", "/run/containerd/s", "/var/lib/cni",
    ];

    private static readonly string[] RequiredHostBinaries = ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"];

    private readonly NodeOptions _options;
    private readonly string _assets;
    private ChildProcess? _containerd, _kubelet;
    private ServiceRelay? _relay;

    private LocalNode(NodeOptions options, string assets) : base(options.Name, LockPath, RunDir, "local node")
    {
        _options = options;
        _assets = assets;
    }

    public NodeOptions Options => _options;
    public string ContainerdSocket => Path.Combine(RunDir, "containerd", "containerd.sock");
    public string KubeletLog => Path.Combine(StateDir, "kubelet.log");
    public string ContainerdLog => Path.Combine(StateDir, "containerd.log");

    /// <summary>What is missing on this machine for a real node, or null when nothing is.</summary>
    public static string? MissingPrerequisites(string nodeAssets)
    {
        var missing = new List<string>();
        if (Posix.GetEuid() != 0)
            missing.Add("root (the kubelet and containerd manage cgroups, mounts and network devices)");
        foreach (var bin in RequiredHostBinaries.Where(b => !File.Exists(b)))
            missing.Add(bin);
        foreach (var bin in new[] { "kubelet", "kube-scheduler", "pause" }.Where(b => !File.Exists(Path.Combine(nodeAssets, b))))
            missing.Add(Path.Combine(nodeAssets, bin));
        return missing.Count == 0 ? null
            : "a real node needs " + string.Join(", ", missing) +
              " (make deps installs containerd, runc and containernetworking-plugins; hack/kube-assets.sh node builds kubelet, kube-scheduler and pause)";
    }

    internal static async Task<LocalNode> StartAsync(KubeCluster cluster, NodeOptions options, string nodeAssets, CancellationToken ct)
    {
        if (MissingPrerequisites(nodeAssets) is { } missing) throw new InvalidOperationException(missing);
        return await StartOrDisposeAsync(new LocalNode(options, nodeAssets), cluster, ct).ConfigureAwait(false);
    }

    private protected override async Task StartCoreAsync(KubeCluster cluster, CancellationToken ct)
    {
        // A baseline left by an owner that died before its guard finished: put that host state back first.
        if (File.Exists(Path.Combine(RunDir, "baseline.env"))) await RunStaleTeardownAsync(RunDir).ConfigureAwait(false);
        Directory.CreateDirectory(RunDir);
        WriteBaselineAndTeardown();
        StartGuard("nettune-node-guard");
        Took("baseline");

        foreach (var dir in new[] { "kubelet", "containerd", "cni/net.d", "cni/ipam", "volume-plugins" })
            Directory.CreateDirectory(Path.Combine(StateDir, dir));
        Directory.CreateDirectory(Path.Combine(RunDir, "containerd"));

        // The bridge exists before the kubelet, with the node's address: the kubelet refuses a loopback node IP, and
        // the bridge plugin adopts a bridge that is already there. The ClusterIP lives on it too (see ServiceRelay).
        await RunAsync("ip", "link", "add", Bridge, "type", "bridge").ConfigureAwait(false);
        await RunAsync("ip", "addr", "add", $"{_options.NodeIp}/{_options.PodSubnetPrefix}", "dev", Bridge).ConfigureAwait(false);
        await RunAsync("ip", "addr", "add", $"{KubernetesServiceIp}/32", "dev", Bridge).ConfigureAwait(false);
        await RunAsync("ip", "link", "set", Bridge, "up").ConfigureAwait(false);
        // Every other ClusterIP goes nowhere (no kube-proxy): dropped here rather than routed off the machine.
        await RunAsync("ip", "route", "add", "blackhole", ServiceSubnet).ConfigureAwait(false);
        WriteCniConfig();
        _relay = new ServiceRelay(new IPEndPoint(KubernetesServiceIp, 443), new IPEndPoint(IPAddress.Loopback, cluster.ApiServerUrl.Port));
        Took("bridge");

        var containerdConfig = WriteContainerdConfig(cluster.Registry?.Endpoint);
        _containerd = ChildProcess.Start("containerd", "/usr/bin/containerd", ["--config", containerdConfig], ContainerdLog);
        await _containerd.WaitUntilReadyAsync("containerd", async () =>
            File.Exists(ContainerdSocket) && (await CtrAsync("version").ConfigureAwait(false)).ExitCode == 0,
            TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
        Took("containerd");

        var pauseArchive = Path.Combine(RunDir, "pause.oci.tar");
        OciImage.Write(pauseArchive, PauseImage, OciImage.RootfsFromFiles([(Path.Combine(_assets, "pause"), "/pause")]), ["/pause"], new Dictionary<string, string>());
        await ImportImageAsync(pauseArchive, ct).ConfigureAwait(false);
        File.Delete(pauseArchive);
        Took("pause image");

        var kubeletArgs = WriteKubeletFiles(cluster);
        _kubelet = ChildProcess.Start("kubelet", Path.Combine(_assets, "kubelet"), kubeletArgs, KubeletLog);
        await WaitUntilNodeReadyAsync(cluster, Name, _kubelet, TimeSpan.FromSeconds(120), ct).ConfigureAwait(false);
        Took("kubelet Ready");
    }

    private void WriteBaselineAndTeardown()
    {
        static string Value(string path) => File.Exists(path) ? File.ReadAllText(path).Trim().Replace('\t', ',').Replace(' ', ',') : "";
        var sysctls = TouchedSysctls.Where(File.Exists).Select(p => $"{p}={Value(p)}");
        var hugepages = Directory.EnumerateFiles("/sys/kernel/mm/hugepages", "nr_hugepages", SearchOption.AllDirectories)
            .Concat(Directory.Exists("/sys/devices/system/node")
                ? Directory.EnumerateDirectories("/sys/devices/system/node", "node*")
                    .SelectMany(n => Directory.Exists(Path.Combine(n, "hugepages"))
                        ? Directory.EnumerateDirectories(Path.Combine(n, "hugepages")).Select(d => Path.Combine(d, "nr_hugepages"))
                        : [])
                : [])
            .Where(File.Exists).Select(p => $"{p}={Value(p)}");
        var cgroups = Directory.Exists("/sys/fs/cgroup")
            ? Directory.EnumerateDirectories("/sys/fs/cgroup").Select(c => Path.Combine(c, "kubepods")).Where(Directory.Exists)
            : [];
        var absent = FixedHostFolders.Where(d => !Directory.Exists(d));
        File.WriteAllText(Path.Combine(RunDir, "baseline.env"), string.Join('\n',
            $"BRIDGE={Bridge}",
            $"SERVICE_SUBNET={ServiceSubnet}",
            $"SYSCTLS=\"{string.Join(' ', sysctls)}\"",
            $"HUGEPAGES=\"{string.Join(' ', hugepages)}\"",
            $"CGROUPS_BEFORE=\"{string.Join(' ', cgroups)}\"",
            $"ABSENT_BEFORE=\"{string.Join(' ', absent)}\"") + "\n");
        WriteTeardownScript("node-teardown.sh");
    }

    private void WriteCniConfig() =>
        File.WriteAllText(Path.Combine(StateDir, "cni", "net.d", "10-nettune.conflist"),
            BridgeCniConfig(Bridge, _options.PodSubnet, Path.Combine(StateDir, "cni", "ipam")));

    /// <summary>
    /// containerd's configuration; with a registry, a hosts.toml for it in the CRI's registry folder (config_path, as
    /// containerd 1.5 to 2.x read it) that trusts the cluster's CA and holds no credentials: those come with each pull,
    /// from the pod's imagePullSecrets through the kubelet.
    /// </summary>
    private string WriteContainerdConfig(RegistryEndpoint? registry)
    {
        var path = Path.Combine(StateDir, "containerd", "config.toml");
        var hostsDir = Path.Combine(StateDir, "containerd", "certs.d");
        if (registry is not null)
        {
            var dir = Path.Combine(hostsDir, registry.Host);
            Directory.CreateDirectory(dir);
            File.Copy(registry.CaFile, Path.Combine(dir, "ca.crt"), overwrite: true);
            File.WriteAllText(Path.Combine(dir, "hosts.toml"), $$"""
                server = "https://{{registry.Host}}"

                [host."https://{{registry.Host}}"]
                  capabilities = ["pull", "resolve"]
                  ca = "{{Path.Combine(dir, "ca.crt")}}"
                """);
        }
        File.WriteAllText(path, $$"""
            version = 2
            root = "{{StateDir}}/containerd/root"
            state = "{{RunDir}}/containerd"
            disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

            [grpc]
              address = "{{ContainerdSocket}}"
            [ttrpc]
              address = "{{ContainerdSocket}}.ttrpc"
            [debug]
              level = "warn"

            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "{{PauseImage}}"
              # This VM withholds CAP_SYS_RESOURCE: nobody may lower oom_score_adj, which sandboxes ask for.
              restrict_oom_score_adj = true
              # Pod network namespaces under the state folder, not /run/netns (other users' `ip netns` live there).
              netns_mounts_under_state_dir = true
              stream_server_address = "127.0.0.1"
              [plugins."io.containerd.grpc.v1.cri".containerd]
                snapshotter = "overlayfs"
                default_runtime_name = "runc"
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                  runtime_type = "io.containerd.runc.v2"
                  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                    BinaryName = "/usr/sbin/runc"
                    SystemdCgroup = false
              [plugins."io.containerd.grpc.v1.cri".cni]
                bin_dir = "/usr/lib/cni"
                conf_dir = "{{StateDir}}/cni/net.d"
              [plugins."io.containerd.grpc.v1.cri".registry]
                config_path = "{{hostsDir}}"
            [plugins."io.containerd.internal.v1.opt"]
              path = "{{StateDir}}/containerd/opt"
            """);
        return path;
    }

    private List<string> WriteKubeletFiles(KubeCluster cluster)
    {
        var dir = KubeletRootDir;
        var kubeconfig = WriteKubeletKubeconfig(cluster, Path.Combine(StateDir, "kubelet.kubeconfig"));
        var config = Path.Combine(StateDir, "kubelet-config.yaml");
        File.WriteAllText(config, KubeletConfiguration(_options.NodeIp, cluster.CaCertPath, _options.CpuManagerPolicy,
            _options.TopologyManagerPolicy, $"""
            kubeReserved:
              cpu: "{_options.KubeReservedCpu}"
              memory: 256Mi
            """, Path.Combine(StateDir, "volume-plugins")));
        var labels = string.Join(',', _options.Labels.Select(kv => $"{kv.Key}={kv.Value}"));
        var args = new List<string>
        {
            $"--config={config}", $"--kubeconfig={kubeconfig}",
            "--container-runtime=remote", $"--container-runtime-endpoint=unix://{ContainerdSocket}",
            $"--root-dir={dir}", $"--cert-dir={Path.Combine(StateDir, "kubelet-pki")}",
            // Kubelets from 1.23 read Localhost seccomp profiles from <root-dir>/seccomp; v1.20 from /var/lib/kubelet/seccomp
            // whatever the root dir, unless told (the flag is deprecated there, and gone since).
            $"--seccomp-profile-root={SeccompDir}",
            $"--node-ip={_options.NodeIp}", $"--hostname-override={Name}",
            "--v=1",
        };
        if (labels.Length > 0) args.Add($"--node-labels={labels}");
        return args;
    }

    public override async Task ImportImageAsync(string archive, CancellationToken ct = default)
    {
        var (code, output) = await CtrAsync("images", "import", "--no-unpack=false", archive).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"ctr images import {archive} failed ({code}): {output}");
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Runs ctr against this node's containerd in the kubelet's namespace.</summary>
    public Task<(int ExitCode, string Output)> CtrAsync(params string[] args) =>
        RunAsync("/usr/bin/ctr", ["--address", ContainerdSocket, "--namespace", "k8s.io", .. args], check: false);

    /// <summary>Restarts the kubelet (as an admin does after changing hugepages: it reads their capacity at start).</summary>
    public async Task RestartKubeletAsync(KubeCluster cluster, CancellationToken ct = default)
    {
        if (_kubelet is not null) await _kubelet.DisposeAsync().ConfigureAwait(false);
        // Heartbeats have whole seconds: one later than the second the old kubelet was gone in is the new one's.
        var now = DateTime.UtcNow;
        var stopped = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerSecond));
        _kubelet = ChildProcess.Start("kubelet", Path.Combine(_assets, "kubelet"), WriteKubeletFiles(cluster), KubeletLog);
        await _kubelet.WaitUntilReadyAsync("the restarted kubelet to report its Node", async () =>
        {
            var n = await cluster.Client.CoreV1.ReadNodeAsync(Name, cancellationToken: ct).ConfigureAwait(false);
            var ready = n.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
            return ready?.Status == "True" && ready.LastHeartbeatTime > stopped;
        }, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Acts on the agent's kubelet restart requests (its --kubelet-restart-request-file, on the host) until cancelled:
    /// each request file is removed and the kubelet restarted, as a systemd path unit does on a production node.
    /// <paramref name="log"/> hears of each restart.
    /// </summary>
    public async Task ServeKubeletRestartRequestsAsync(KubeCluster cluster, string requestFile, Action<string> log, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                if (!File.Exists(requestFile)) continue;
                var request = (await File.ReadAllTextAsync(requestFile, ct).ConfigureAwait(false)).Trim();
                File.Delete(requestFile);
                log($"kubelet restart requested ({request}): restarting it");
                await RestartKubeletAsync(cluster, ct).ConfigureAwait(false);
                log("kubelet restarted");
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException)
            {
                log($"kubelet restart request not served: {e.Message}");
            }
        }
    }

    private protected override bool KubeletRunning => _kubelet is { HasExited: false };

    private protected override async ValueTask StopProcessesAsync()
    {
        if (_kubelet is not null) await _kubelet.DisposeAsync().ConfigureAwait(false);
        if (_containerd is not null) await _containerd.DisposeAsync().ConfigureAwait(false);
        if (_relay is not null) await _relay.DisposeAsync().ConfigureAwait(false);
    }
}
