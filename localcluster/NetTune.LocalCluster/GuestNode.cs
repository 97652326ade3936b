using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace NetTune.LocalCluster;

/// <summary>
/// A second kind of real node: a QEMU guest with 2 sockets × 2 cores in 2 NUMA nodes, a real Debian kernel, a
/// 4-queue virtio_net data NIC on NUMA node 1 and a management NIC on NUMA node 0 (the default route), running
/// containerd, runc and the project's kubelet, joined to the <see cref="KubeCluster"/> with its own system:node
/// identity. Simulated hardware: the NUMA layout and the NICs are QEMU's; the kernel and the kubelet are real.
/// No disk image: the guest sees the host's / read-only over 9p with a tmpfs on top (stage 1 in the initramfs that
/// <c>hack/guest-kernel.sh</c> builds, stage 2 <c>guest/guest-init.sh</c>), and only the guest bridge's addresses of
/// the host: the host forwards nothing that arrives from it (forwarding off on the bridge, and a routing rule that
/// drops whatever from it is not for the host itself), so nothing of the guest leaves this machine.
/// One guest node per machine (its bridge, taps and folder are fixed); it runs beside a <see cref="LocalNode"/>.
/// </summary>
public sealed class GuestNode : ClusterNode
{
    public const string StateDir = "/var/lib/nettune-guest";
    public const string LockPath = "/run/nettune-guest.lock";
    public const string Bridge = "nettune-g0";
    public const string ManagementTap = "ntg-mgmt";
    public const string DataTap = "ntg-data";

    /// <summary>The host's end of the management network (the guest's default gateway) and the guest's address.</summary>
    public static readonly IPAddress HostAddress = IPAddress.Parse("10.250.0.1");
    public static readonly IPAddress ManagementAddress = IPAddress.Parse("10.250.0.2");

    /// <summary>The data NIC's network: the host's bridge has .1, the guest's data NIC .2.</summary>
    public static readonly IPAddress HostDataAddress = IPAddress.Parse("10.250.1.1");
    public static readonly IPAddress DataAddress = IPAddress.Parse("10.250.1.2");

    /// <summary>The pod network inside the guest (its own bridge CNI); the host routes it through the guest.</summary>
    public const string PodSubnet = "10.250.2.0/24";

    /// <summary>The guest's NIC names: the management NIC (default route) and the 4-queue data NIC.</summary>
    public const string ManagementNic = "eth0";
    public const string DataNic = "eth1";

    private const string ManagementMac = "52:54:00:fa:00:02";
    private const string DataMac = "52:54:00:fa:01:02";
    private const int AgentPort = 7777;
    private const int ApiRelayPort = 6443;
    private const int BlackholeTable = 7250;
    private const string PersistentDiskFile = "persist.img";

    private static readonly string[] RequiredHostBinaries =
        ["/usr/bin/qemu-system-x86_64", "/bin/busybox", "/usr/bin/cpio", "/usr/sbin/depmod", "/usr/bin/python3", "/usr/sbin/ethtool",
         "/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"];

    private readonly GuestNodeOptions _options;
    private readonly string _assets;
    private readonly string _token = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(5) };
    private ChildProcess? _qemu;
    private ServiceRelay? _relay;

    private GuestNode(GuestNodeOptions options, string assets) : base(options.Name, LockPath, StateDir, "guest node")
    {
        _options = options;
        _assets = assets;
    }

    public GuestNodeOptions Options => _options;

    /// <summary>tcg or kvm: what QEMU runs the guest with.</summary>
    public string Accelerator { get; private set; } = "";

    /// <summary>The guest's serial console (kernel and init messages), kept with the cluster's logs.</summary>
    public string ConsoleLog { get; private set; } = "";

    /// <summary>The folder the guest writes its containerd and kubelet logs to (a writable 9p share).</summary>
    public string LogFolder { get; private set; } = "";

    /// <summary>What is missing on this machine for a guest node, or null when nothing is.</summary>
    public static string? MissingPrerequisites(string nodeAssets)
    {
        var missing = new List<string>();
        if (Posix.GetEuid() != 0) missing.Add("root (a bridge, taps and routes on the host)");
        if (!File.Exists("/dev/net/tun")) missing.Add("/dev/net/tun");
        missing.AddRange(RequiredHostBinaries.Where(b => !File.Exists(b)));
        missing.AddRange(new[] { "kubelet", "pause" }.Select(b => Path.Combine(nodeAssets, b)).Where(b => !File.Exists(b)));
        return missing.Count == 0 ? null
            : "a guest node needs " + string.Join(", ", missing) +
              " (make deps installs qemu-system-x86, busybox-static, cpio, kmod, containerd, runc and containernetworking-plugins)";
    }

    /// <summary>
    /// KVM only when it runs a stock guest kernel natively: kvm_intel or kvm_amd, and not kvm_pvm (a nested
    /// pagetable-based hypervisor that emulates a stock kernel instruction by instruction: slower than TCG by far).
    /// </summary>
    public static string ChooseAccelerator(string requested) => requested switch
    {
        "tcg" or "kvm" => requested,
        "auto" => File.Exists("/dev/kvm") && !Directory.Exists("/sys/module/kvm_pvm")
            && (Directory.Exists("/sys/module/kvm_intel") || Directory.Exists("/sys/module/kvm_amd")) ? "kvm" : "tcg",
        _ => throw new ArgumentException($"accelerator {requested}: auto, tcg or kvm"),
    };

    internal static async Task<GuestNode> StartAsync(KubeCluster cluster, GuestNodeOptions options, string nodeAssets, CancellationToken ct)
    {
        if (MissingPrerequisites(nodeAssets) is { } missing) throw new InvalidOperationException(missing);
        return await StartOrDisposeAsync(new GuestNode(options, nodeAssets), cluster, ct).ConfigureAwait(false);
    }

    private protected override async Task StartCoreAsync(KubeCluster cluster, CancellationToken ct)
    {
        Accelerator = ChooseAccelerator(_options.Accelerator);
        await RunStaleTeardownAsync(StateDir).ConfigureAwait(false);
        // Root's only: it holds the guest agent's token and the kubelet's credentials.
        Directory.CreateDirectory(StateDir);
        await RunAsync("chmod", "700", StateDir).ConfigureAwait(false);
        File.WriteAllText(Path.Combine(StateDir, "host.env"), string.Join('\n',
            $"BRIDGE={Bridge}", $"TAPS=\"{ManagementTap} {DataTap}\"", $"BLACKHOLE_TABLE={BlackholeTable}", $"LOCK={LockPath}") + "\n");
        WriteTeardownScript("guest-teardown.sh");
        StartGuard("nettune-guest-guard");
        Took("guard");

        var kernel = await GuestKernelAsync(ct).ConfigureAwait(false);
        Took("kernel (cached)");

        await SetUpNetworkAsync().ConfigureAwait(false);
        _relay = new ServiceRelay(new IPEndPoint(HostAddress, ApiRelayPort), new IPEndPoint(IPAddress.Loopback, cluster.ApiServerUrl.Port));
        Took("bridge, taps, relay");

        WriteGuestFiles(cluster, kernel);
        Took("guest files");

        LogFolder = Path.Combine(cluster.Folder, $"guest-{Name}");
        Directory.CreateDirectory(LogFolder);
        ConsoleLog = Path.Combine(LogFolder, "console.log");
        // Not niced: the guest is the node under test, and beside niced builds a guest at nice 10 got about a quarter of
        // the machine (boot to its agent 82 s instead of 13 s, its kubelet and agent as slow).
        _qemu = ChildProcess.Start("qemu", "/usr/bin/qemu-system-x86_64", QemuArguments(kernel), Path.Combine(LogFolder, "qemu.log"));
        await _qemu.WaitUntilReadyAsync("the guest's control agent", async () =>
            (await ExecAsync("true", ct).ConfigureAwait(false)).ExitCode == 0, TimeSpan.FromSeconds(120), ct).ConfigureAwait(false);
        Took($"boot ({Accelerator}) to the guest agent");

        await WaitUntilNodeReadyAsync(cluster, Name, _qemu, TimeSpan.FromSeconds(180), ct).ConfigureAwait(false);
        Took("kubelet Ready");
    }

    private static async Task<string> GuestKernelAsync(CancellationToken ct)
    {
        var script = Path.Combine(KubeCluster.RepoRoot, "hack", "guest-kernel.sh");
        var (code, output) = await RunAsync("bash", [script], check: false).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        var folder = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .LastOrDefault(l => l.StartsWith('/'));
        if (code != 0 || folder is null || !File.Exists(Path.Combine(folder, "vmlinuz")))
            throw new InvalidOperationException($"{script} failed ({code}): {output}");
        return folder;
    }

    private async Task SetUpNetworkAsync()
    {
        await RunAsync("ip", "link", "add", Bridge, "type", "bridge").ConfigureAwait(false);
        // Nothing from the guest is forwarded: per-interface forwarding off (a later global ip_forward=1, which the
        // host node's bridge plugin writes, turns it on again) and, whatever forwarding says, a rule that sends what
        // arrives from the bridge and is not for one of the host's own addresses (the local table comes first) into a
        // blackhole.
        await RunAsync("sysctl", "-qw", $"net.ipv4.conf.{Bridge}.forwarding=0", $"net.ipv6.conf.{Bridge}.disable_ipv6=1").ConfigureAwait(false);
        await RunAsync("ip", "route", "add", "blackhole", "default", "table", BlackholeTable.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        await RunAsync("ip", "rule", "add", "iif", Bridge, "table", BlackholeTable.ToString(CultureInfo.InvariantCulture), "priority", "100").ConfigureAwait(false);
        await RunAsync("ip", "addr", "add", $"{HostAddress}/24", "dev", Bridge).ConfigureAwait(false);
        await RunAsync("ip", "addr", "add", $"{HostDataAddress}/24", "dev", Bridge).ConfigureAwait(false);
        await RunAsync("ip", "link", "set", Bridge, "up").ConfigureAwait(false);
        foreach (var (tap, multiQueue) in new[] { (ManagementTap, false), (DataTap, true) })
        {
            string[] add = multiQueue ? ["tuntap", "add", "dev", tap, "mode", "tap", "multi_queue"] : ["tuntap", "add", "dev", tap, "mode", "tap"];
            await RunAsync("ip", add).ConfigureAwait(false);
            await RunAsync("sysctl", "-qw", $"net.ipv6.conf.{tap}.disable_ipv6=1").ConfigureAwait(false);
            await RunAsync("ip", "link", "set", tap, "master", Bridge, "up").ConfigureAwait(false);
        }
        await RunAsync("ip", "route", "add", PodSubnet, "via", ManagementAddress.ToString(), "dev", Bridge, "onlink").ConfigureAwait(false);
    }

    private void WriteGuestFiles(KubeCluster cluster, string kernel)
    {
        string In(string file) => Path.Combine(StateDir, file);
        var kernelVersion = Path.GetFileName(kernel);
        File.WriteAllText(In("token"), _token);
        File.Copy(cluster.CaCertPath, In("ca.crt"), overwrite: true);
        var labels = _options.Labels.Append(new(GuestNodeOptions.SimulatedLabel, GuestNodeOptions.SimulatedValue));
        File.WriteAllText(In("guest.env"), string.Join('\n',
            $"NODE_NAME={Name}",
            $"NODE_LABELS={string.Join(',', labels.Select(kv => $"{kv.Key}={kv.Value}"))}",
            $"KUBELET={Path.Combine(_assets, "kubelet")}",
            $"MODULES={Path.Combine(kernel, "modules", "lib", "modules")}",
            $"KERNEL_VERSION={kernelVersion}",
            $"HOST_NODE_KUBELET_ROOT={LocalNode.KubeletRootDir}",
            $"MGMT_MAC={ManagementMac}", $"MGMT_IP={ManagementAddress}/24", $"GATEWAY={HostAddress}",
            $"DATA_MAC={DataMac}", $"DATA_IP={DataAddress}/24",
            $"SERVICE_IP={LocalNode.KubernetesServiceIp}", $"API_RELAY_PORT={ApiRelayPort}",
            $"AGENT_PORT={AgentPort}", $"TOKEN_FILE={In("token")}",
            $"PERSISTENT_DISK={(_options.PersistentDiskGiB > 0 ? 1 : 0)}") + "\n");
        if (_options.PersistentDiskGiB > 0)
        {
            using var disk = new FileStream(In(PersistentDiskFile), FileMode.Create, FileAccess.Write);
            disk.SetLength((long)_options.PersistentDiskGiB << 30);
        }
        WriteResource("guest-init.sh", In("guest-init.sh"));
        WriteResource("guest-agent.py", In("guest-agent.py"));
        OciImage.Write(In("pause.oci.tar"), LocalNode.PauseImage, OciImage.RootfsFromFiles([(Path.Combine(_assets, "pause"), "/pause")]), ["/pause"], new Dictionary<string, string>());

        // The guest's kubelet reaches the apiserver at the `kubernetes` ClusterIP, relayed inside the guest to the
        // relay on the host bridge: an address the serving certificate names.
        WriteKubeletKubeconfig(cluster, In("kubelet.kubeconfig"), new Uri($"https://{LocalNode.KubernetesServiceIp}:443"));
        File.WriteAllText(In("kubelet-config.yaml"), KubeletConfiguration(ManagementAddress.ToString(), In("ca.crt"), "static",
            "single-numa-node", """
            reservedSystemCPUs: "0"
            """, "/var/lib/kubelet/volume-plugins",
            // The kubelet v1.20 CPU manager sends every container's cpuset to containerd on each reconcile (a runc
            // exec each), and every status update goes through the relays: at the host node's 5 s and 4 s, the guest's
            // kubelet and containerd took a whole emulated CPU between them and starved the agent past its probes.
            reconcileSeconds: 30, statusSeconds: 10));
        Directory.CreateDirectory(In("cni"));
        File.WriteAllText(In("cni/10-nettune.conflist"), BridgeCniConfig("cni0", PodSubnet, "/var/lib/cni/networks"));
        File.WriteAllText(In("containerd.toml"), $$"""
            version = 2
            disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
            [debug]
              level = "warn"
            [plugins."io.containerd.grpc.v1.cri"]
              sandbox_image = "{{LocalNode.PauseImage}}"
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
                conf_dir = "{{In("cni")}}"
            """);
    }

    private IEnumerable<string> QemuArguments(string kernel)
    {
        var mib = _options.MemoryPerNumaNodeMiB;
        var queues = _options.DataNicQueues;
        string[] accel = Accelerator == "kvm" ? ["-accel", "kvm", "-cpu", "host,-arch-capabilities"] : ["-accel", "tcg,thread=multi", "-cpu", "max"];
        return
        [
            "-name", $"nettune-guest-{Name}", "-machine", "q35", .. accel,
            "-smp", "4,sockets=2,cores=2,threads=1", "-m", $"{2 * mib}M",
            "-object", $"memory-backend-ram,id=mem0,size={mib}M", "-numa", "node,nodeid=0,cpus=0-1,memdev=mem0",
            "-object", $"memory-backend-ram,id=mem1,size={mib}M", "-numa", "node,nodeid=1,cpus=2-3,memdev=mem1",
            "-kernel", Path.Combine(kernel, "vmlinuz"), "-initrd", Path.Combine(kernel, "initramfs.gz"),
            "-append", $"console=ttyS0 panic=-1 nettune.init={StateDir}/guest-init.sh",
            // Every device names its bus: without one it lands on the last PCIe bus, a pxb, which takes only bridges.
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,bus=pcie.0",
            "-fsdev", $"local,id=logs,path={LogFolder},security_model=none",
            "-device", "virtio-9p-pci,fsdev=logs,mount_tag=logs,bus=pcie.0",
            // Each NIC behind its own expander bus, which is what gives a PCI device a NUMA node.
            "-device", "pxb-pcie,id=pxb0,bus_nr=64,numa_node=0,bus=pcie.0",
            "-device", "pcie-root-port,id=rp0,bus=pxb0,chassis=1,slot=1",
            "-netdev", $"tap,id=mgmt,ifname={ManagementTap},script=no,downscript=no,vhost=off",
            "-device", $"virtio-net-pci,netdev=mgmt,mac={ManagementMac},bus=rp0",
            "-device", "pxb-pcie,id=pxb1,bus_nr=128,numa_node=1,bus=pcie.0",
            "-device", "pcie-root-port,id=rp1,bus=pxb1,chassis=2,slot=1",
            "-netdev", $"tap,id=data,ifname={DataTap},script=no,downscript=no,queues={queues},vhost=off",
            "-device", $"virtio-net-pci,netdev=data,mq=on,vectors={2 * queues + 2},mac={DataMac},bus=rp1",
            .. (_options.PersistentDiskGiB > 0
                ? ["-drive", $"file={StateDir}/{PersistentDiskFile},format=raw,if=none,id=persist", "-device", "virtio-blk-pci,drive=persist,bus=pcie.0"]
                : Array.Empty<string>()),
            "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
            "-serial", $"file:{ConsoleLog}", "-pidfile", Path.Combine(StateDir, "qemu.pid"),
        ];
    }

    /// <summary>Runs a bash script as root in the guest (through its control agent); its exit code and output.</summary>
    public async Task<(int ExitCode, string Output)> ExecAsync(string script, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://{ManagementAddress}:{AgentPort}/sh"))
        {
            Content = new StringContent(script, Encoding.UTF8),
        };
        request.Headers.Add("X-Token", _token);
        using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        var output = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        var code = response.Headers.TryGetValues("X-Exit-Code", out var values) ? int.Parse(values.First(), CultureInfo.InvariantCulture) : -1;
        return (code, output);
    }

    /// <summary>Reads a file of the guest (its /proc, /sys, the kubelet's state).</summary>
    public async Task<string> ReadFileAsync(string path, CancellationToken ct = default)
    {
        var (code, output) = await ExecAsync($"cat '{path.Replace("'", "'\\''", StringComparison.Ordinal)}'", ct).ConfigureAwait(false);
        return code == 0 ? output : throw new IOException($"cat {path} in the guest failed ({code}): {output}");
    }

    /// <summary>
    /// Reboots the guest's kernel (busybox reboot inside: init's shutdown, then QEMU's warm reset, the same kernel
    /// booting again) and waits until the guest's control agent answers from the new boot. Only what is on the
    /// persistent disk (<see cref="GuestNodeOptions.PersistentDiskGiB"/>) survives. Returns the new boot's id.
    /// </summary>
    public async Task<string> RebootAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        const string bootIdPath = "/proc/sys/kernel/random/boot_id";
        var before = (await ReadFileAsync(bootIdPath, ct).ConfigureAwait(false)).Trim();
        // In the background, so the agent answers before init stops it.
        await ExecAsync("(sleep 1; /bin/busybox reboot) </dev/null >/dev/null 2>&1 &", ct).ConfigureAwait(false);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_qemu is { HasExited: true }) throw new InvalidOperationException($"QEMU exited during the reboot (console: {ConsoleLog})");
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attempt.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                var now = (await ReadFileAsync(bootIdPath, attempt.Token).ConfigureAwait(false)).Trim();
                if (now != before) return now;
            }
            catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // Going down or not up yet.
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the guest did not come back from its reboot within {timeout.TotalSeconds:0} s (console: {ConsoleLog})");
            await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Imports an OCI archive (a host path: the guest sees the host's files) into the guest's containerd.</summary>
    public override async Task ImportImageAsync(string archive, CancellationToken ct = default)
    {
        var quoted = "'" + archive.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
        var (code, output) = await ExecAsync($"ctr --address /run/containerd/containerd.sock -n k8s.io images import {quoted}", ct).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"ctr images import {archive} in the guest failed ({code}): {output}");
    }

    private protected override bool KubeletRunning => _qemu is { HasExited: false };

    private protected override async ValueTask StopProcessesAsync()
    {
        if (_qemu is not null) await _qemu.DisposeAsync().ConfigureAwait(false);
        if (_relay is not null) await _relay.DisposeAsync().ConfigureAwait(false);
        _http.Dispose();
    }
}
