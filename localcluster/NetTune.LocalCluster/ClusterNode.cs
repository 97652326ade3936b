using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using k8s;
using k8s.Models;

namespace NetTune.LocalCluster;

/// <summary>
/// What every real node of a <see cref="KubeCluster"/> shares, whatever runs its kubelet: one node of its kind per
/// machine (a lock), its own system:node identity and kubeconfig, the kubelet configuration, a teardown script that
/// puts the host back, run on dispose and by a guard process when the owner dies without disposing, the readiness
/// wait, image import and draining. <see cref="LocalNode"/> is this machine; <see cref="GuestNode"/> a QEMU guest.
/// </summary>
public abstract class ClusterNode : IAsyncDisposable
{
    public const int KubeletPort = 10250;
    public const int KubeletHealthzPort = 10248;

    private readonly FileStream _lock;
    private readonly string _lockPath;
    private readonly string _runDir;
    private readonly List<(string, TimeSpan)> _times = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Process? _guard;
    private bool _stopped;

    private protected ClusterNode(string name, string lockPath, string runDir, string kind)
    {
        Name = name;
        _lockPath = lockPath;
        _runDir = runDir;
        _lock = TakeLock(lockPath, kind);
    }

    public string Name { get; }

    /// <summary>Where each start step's time goes, for the suite's and the demo's report.</summary>
    public IReadOnlyList<(string Step, TimeSpan Took)> StartTimes => _times;

    /// <summary>The teardown script the guard and dispose run; it lives in the run folder with the baseline.</summary>
    private protected string TeardownScript => Path.Combine(_runDir, "teardown.sh");

    private protected abstract bool KubeletRunning { get; }

    /// <summary>Stops what the node runs (its kubelet first) before the teardown script puts the host back.</summary>
    private protected abstract ValueTask StopProcessesAsync();

    /// <summary>Brings the node up: its processes, its kubelet, until Ready.</summary>
    private protected abstract Task StartCoreAsync(KubeCluster cluster, CancellationToken ct);

    /// <summary>Starts a node; one that fails half-way is torn down before the error goes on, so nothing is left.</summary>
    private protected static async Task<T> StartOrDisposeAsync<T>(T node, KubeCluster cluster, CancellationToken ct) where T : ClusterNode
    {
        try
        {
            await node.StartCoreAsync(cluster, ct).ConfigureAwait(false);
            return node;
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Imports an OCI archive into the node's containerd, where the kubelet finds it (namespace k8s.io).</summary>
    public abstract Task ImportImageAsync(string archive, CancellationToken ct = default);

    private protected void Took(string step)
    {
        _times.Add((step, _clock.Elapsed));
        _clock.Restart();
    }

    private static FileStream TakeLock(string lockPath, string kind)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        try
        {
            // .NET takes an exclusive flock(2) for FileShare.None: it is released when this process dies, however.
            var stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(0);
            stream.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush();
            return stream;
        }
        catch (IOException)
        {
            var holder = "another process";
            try { holder = "process " + File.ReadAllText(lockPath).Trim(); }
            catch (IOException) { }
            throw new InvalidOperationException(
                $"a {kind} already runs on this machine ({holder} holds {lockPath}); one at a time: its ports, folders " +
                "and network devices are fixed. Stop it first (make demo-down, or let its tests finish).");
        }
    }

    /// <summary>Writes the teardown script (an embedded resource) into the run folder, where the guard finds it.</summary>
    private protected void WriteTeardownScript(string resource) => WriteResource(resource, TeardownScript);

    private protected static void WriteResource(string resource, string path)
    {
        using var script = typeof(ClusterNode).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{resource} is not embedded");
        using var file = File.Create(path);
        script.CopyTo(file);
    }

    /// <summary>Runs a teardown left by an owner that died before its guard finished: that host state goes first.</summary>
    private protected static async Task RunStaleTeardownAsync(string runDir)
    {
        var script = Path.Combine(runDir, "teardown.sh");
        if (File.Exists(script)) await RunAsync("bash", [script], check: false).ConfigureAwait(false);
    }

    /// <summary>
    /// A detached process (its own session, so a killed process group or test host does not take it along) that
    /// waits for this process to end and then runs the teardown, unless dispose ran it first and stopped the guard.
    /// </summary>
    private protected void StartGuard(string guardName)
    {
        var psi = new ProcessStartInfo("setsid") { UseShellExecute = false, RedirectStandardInput = false };
        foreach (var a in new[]
        {
            "bash", "-c",
            "exec </dev/null >>\"$2\" 2>&1; while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; exec bash \"$3\"",
            guardName, Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            Path.Combine(_runDir, "guard.log"), TeardownScript,
        })
            psi.ArgumentList.Add(a);
        _guard = Process.Start(psi);
    }

    /// <summary>The kubelet's kubeconfig: its own token for user system:node:NAME, at the apiserver address it can reach.</summary>
    private protected string WriteKubeletKubeconfig(KubeCluster cluster, string path, Uri? server = null) =>
        cluster.WriteKubeconfig(path, KubeCluster.NodeToken(Name), "system:node:" + Name, server);

    /// <summary>
    /// The kubelet configuration both kinds of node share (webhook authn/authz against the cluster's CA, the CPU and
    /// Topology Managers, no iptables chains); <paramref name="cpuReservation"/> says how CPU is held back.
    /// </summary>
    private protected static string KubeletConfiguration(string address, string caFile, string cpuManagerPolicy,
        string topologyManagerPolicy, string cpuReservation, string volumePluginDir, int reconcileSeconds = 5, int statusSeconds = 4) => $"""
        apiVersion: kubelet.config.k8s.io/v1beta1
        kind: KubeletConfiguration
        address: {address}
        port: {KubeletPort}
        readOnlyPort: 0
        healthzBindAddress: 127.0.0.1
        healthzPort: {KubeletHealthzPort}
        authentication:
          anonymous: {"{enabled: false}"}
          webhook: {"{enabled: true}"}
          x509: {"{clientCAFile: " + caFile + "}"}
        authorization:
          mode: Webhook
        cgroupDriver: cgroupfs
        cpuManagerPolicy: {cpuManagerPolicy}
        cpuManagerReconcilePeriod: {reconcileSeconds}s
        topologyManagerPolicy: {topologyManagerPolicy}
        {cpuReservation}
        evictionHard:
          memory.available: 100Mi
          nodefs.available: 1%
          imagefs.available: 1%
        failSwapOn: false
        # No kube-proxy and no hostPort here: the kubelet's KUBE-* iptables chains would only be left behind.
        makeIPTablesUtilChains: false
        volumePluginDir: {volumePluginDir}
        nodeStatusUpdateFrequency: {statusSeconds}s
        serializeImagePulls: false
        resolvConf: /etc/resolv.conf
        """;

    /// <summary>
    /// A bridge CNI network: pods get addresses of <paramref name="subnet"/> on <paramref name="bridge"/>, whose first
    /// address is their gateway; no masquerading (nothing is sent off the machine).
    /// </summary>
    private protected static string BridgeCniConfig(string bridge, string subnet, string ipamDir)
    {
        var gateway = subnet[..subnet.LastIndexOf('.')] + ".1";
        return $$"""
            {
              "cniVersion": "0.4.0",
              "name": "nettune",
              "plugins": [
                {
                  "type": "bridge",
                  "bridge": "{{bridge}}",
                  "isGateway": true,
                  "ipMasq": false,
                  "hairpinMode": true,
                  "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": "{{subnet}}", "gateway": "{{gateway}}"}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": "{{ipamDir}}"
                  }
                }
              ]
            }
            """;
    }

    /// <summary>Waits until the kubelet's Node is Ready and has none of the node lifecycle's taints left.</summary>
    private protected static Task WaitUntilNodeReadyAsync(KubeCluster cluster, string name, ChildProcess watched, TimeSpan timeout, CancellationToken ct) =>
        watched.WaitUntilReadyAsync($"the kubelet's Node {name} to be Ready and untainted", async () =>
        {
            var n = await cluster.Client.CoreV1.ReadNodeAsync(name, cancellationToken: ct).ConfigureAwait(false);
            var ready = n.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;
            return ready && n.Spec?.Taints?.Any(t => t.Key.StartsWith("node.kubernetes.io/", StringComparison.Ordinal)) != true;
        }, timeout, ct);

    private protected static Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args) => RunAsync(file, args, check: true);

    private protected static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, bool check)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().ConfigureAwait(false);
        var output = (await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false));
        if (check && p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)} failed ({p.ExitCode}): {output}");
        return (p.ExitCode, output);
    }

    /// <summary>
    /// Deletes every pod bound to this node through the API and waits (bounded) for the kubelet to tear them down:
    /// containerd keeps containers running when it exits, so the kubelet has to stop them while both still run.
    /// </summary>
    public async Task DrainAsync(IKubernetes client, TimeSpan timeout)
    {
        var selector = $"spec.nodeName={Name}";
        try
        {
            var pods = await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: selector).ConfigureAwait(false);
            foreach (var pod in pods.Items)
                try { await client.CoreV1.DeleteNamespacedPodAsync(pod.Metadata.Name, pod.Metadata.NamespaceProperty, new V1DeleteOptions { GracePeriodSeconds = 1 }).ConfigureAwait(false); }
                catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound) { }
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < timeout && KubeletRunning)
            {
                if ((await client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: selector).ConfigureAwait(false)).Items.Count == 0) return;
                await Task.Delay(250).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
        {
            // The apiserver is gone: the teardown kills what is left.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await StopProcessesAsync().ConfigureAwait(false);
        if (_guard is { HasExited: false })
        {
            _guard.Kill(entireProcessTree: true);
            await _guard.WaitForExitAsync().ConfigureAwait(false);
        }
        _guard?.Dispose();
        if (File.Exists(TeardownScript)) await RunAsync("bash", [TeardownScript], check: false).ConfigureAwait(false);
        // Removed while still held: nobody can have opened it meanwhile (an opener fails at once, it does not wait).
        File.Delete(_lockPath);
        await _lock.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }
}
