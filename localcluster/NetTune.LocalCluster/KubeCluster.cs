using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using k8s;

namespace NetTune.LocalCluster;

public sealed record KubeClusterOptions
{
    /// <summary>false, with a short <see cref="EtcdCompactionInterval"/>, makes old watches end with 410 Gone.</summary>
    public bool WatchCache { get; init; } = true;

    public TimeSpan? EtcdCompactionInterval { get; init; }

    /// <summary>Runs kube-controller-manager (garbage collection, namespaces, DaemonSets, service-account tokens).</summary>
    public bool StartControllerManager { get; init; } = true;

    /// <summary>
    /// One real node on this machine (kubelet, containerd, bridge CNI), with kube-scheduler and the node lifecycle
    /// controller. Null: a control plane only, whose Nodes are API objects that tests make.
    /// </summary>
    public NodeOptions? Node { get; init; }

    /// <summary>
    /// A QEMU guest with two NUMA nodes and a multi-queue NIC as another real node (see <see cref="GuestNode"/>),
    /// with kube-scheduler and the node lifecycle controller; beside <see cref="Node"/> or alone.
    /// </summary>
    public GuestNodeOptions? GuestNode { get; init; }

    /// <summary>
    /// An image registry on 127.0.0.2 (loopback; TLS, basic auth; see <see cref="LocalRegistry"/>) that the cluster runs and
    /// stops with it; the local node's containerd pulls from it with the pods' imagePullSecrets.
    /// </summary>
    public bool Registry { get; init; }

    internal bool HasNodes => Node is not null || GuestNode is not null;
}

/// <summary>
/// A real cluster on loopback: etcd, kube-apiserver (TLS, token auth, RBAC) and kube-controller-manager, started from
/// the envtest-style assets folder, and when asked kube-scheduler and real nodes (this machine as a
/// <see cref="LocalNode"/>, a QEMU guest as a <see cref="GuestNode"/>, or both); all removed
/// again on dispose. It serves the tests, `make demo` and the benchmarks.
/// </summary>
public sealed class KubeCluster : IAsyncDisposable
{
    public const string AdminToken = "nettune-test-admin-token";
    private const string SchedulerToken = "nettune-test-scheduler-token";

    /// <summary>The kubelet's bearer token: user system:node:NAME in group system:nodes, as the Node authorizer expects.</summary>
    public static string NodeToken(string node) => "nettune-test-node-token-" + node;

    private readonly KubeClusterOptions _options;
    private readonly string _dir;
    private readonly string _assets;
    private readonly ClusterPki.Files _pki;
    private readonly int _etcdPort, _etcdPeerPort, _apiPort;
    private ChildProcess? _etcd, _apiServer, _controllerManager, _scheduler;
    private IKubernetes? _client;

    private KubeCluster(KubeClusterOptions options, string assets)
    {
        _options = options;
        _assets = assets;
        var runtimeRoot = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        _dir = Path.Combine(runtimeRoot, $"nettune-cluster-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(_dir);
        _pki = ClusterPki.Write(_dir);
        _etcdPort = FreePort();
        _etcdPeerPort = FreePort();
        _apiPort = FreePort();
        ApiServerUrl = new Uri($"https://127.0.0.1:{_apiPort}");
        KubeconfigPath = Path.Combine(_dir, "admin.kubeconfig");
        WriteKubeconfig(KubeconfigPath, AdminToken, "admin");
        var tokens = $"{AdminToken},admin,admin,\"system:masters\"\n{SchedulerToken},system:kube-scheduler,system:kube-scheduler,\n";
        foreach (var name in new[] { options.Node?.Name, options.GuestNode?.Name }.OfType<string>())
            tokens += $"{NodeToken(name)},system:node:{name},system:node:{name},\"system:nodes\"\n";
        File.WriteAllText(Path.Combine(_dir, "tokens.csv"), tokens);
        AdminConfig = KubernetesClientConfiguration.BuildConfigFromConfigFile(KubeconfigPath);
    }

    public Uri ApiServerUrl { get; }
    public string KubeconfigPath { get; }
    public KubernetesClientConfiguration AdminConfig { get; }
    public IKubernetes Client => _client ??= CreateClient();
    public string CaCertPath => _pki.CaCert;

    /// <summary>The real node, when <see cref="KubeClusterOptions.Node"/> asked for one.</summary>
    public LocalNode? Node { get; private set; }

    /// <summary>The image registry, when <see cref="KubeClusterOptions.Registry"/> asked for one.</summary>
    public LocalRegistry? Registry { get; private set; }

    /// <summary>The guest node, when <see cref="KubeClusterOptions.GuestNode"/> asked for one.</summary>
    public GuestNode? GuestNode { get; private set; }

    /// <summary>The cluster's folder (logs, PKI, kubeconfigs); removed on dispose unless NETTUNE_KEEP_CLUSTER=1.</summary>
    public string Folder => _dir;

    /// <summary>The repository's top folder (the one holding Operator.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    public IKubernetes CreateClient() => new Kubernetes(AdminConfig);

    public static async Task<KubeCluster> StartAsync(KubeClusterOptions? options = null, CancellationToken ct = default)
    {
        options ??= new KubeClusterOptions();
        var assets = await KubeAssets.LocateAsync(ct).ConfigureAwait(false);
        var nodeAssets = options.HasNodes ? await KubeAssets.LocateAsync(ct, "node").ConfigureAwait(false) : null;
        if (options.Node is not null && LocalNode.MissingPrerequisites(nodeAssets!) is { } missing)
            throw new InvalidOperationException(missing);
        if (options.GuestNode is not null && NetTune.LocalCluster.GuestNode.MissingPrerequisites(nodeAssets!) is { } guestMissing)
            throw new InvalidOperationException(guestMissing);
        if (options.Registry && LocalRegistry.MissingPrerequisites() is { } registryMissing)
            throw new InvalidOperationException(registryMissing);
        if (options.Node is not null && options.Node.Name == options.GuestNode?.Name)
            throw new ArgumentException($"the local node and the guest node need different names ({options.Node.Name})");
        var cluster = new KubeCluster(options, assets);
        try
        {
            await cluster.StartEtcdAsync(ct).ConfigureAwait(false);
            await cluster.StartApiServerAsync(ct).ConfigureAwait(false);
            if (cluster._options.StartControllerManager)
                cluster.StartControllerManager();
            if (options.HasNodes)
            {
                await cluster.GrantNodeIdentityAsync(ct).ConfigureAwait(false);
                cluster.StartScheduler(nodeAssets!);
            }
            // Before the node: its containerd is told where the registry is.
            if (options.Registry)
                cluster.Registry = await LocalRegistry.StartAsync(cluster._dir, cluster._pki, ct).ConfigureAwait(false);
            // Both nodes at once (the demo's case): the guest's boot is emulated CPU, the host node's start mostly
            // waiting for its kubelet. A node that started is the cluster's, to be disposed with it if the other failed.
            var localStart = options.Node is { } node ? LocalNode.StartAsync(cluster, node, nodeAssets!, ct) : null;
            var guestStart = options.GuestNode is { } guest ? NetTune.LocalCluster.GuestNode.StartAsync(cluster, guest, nodeAssets!, ct) : null;
            try
            {
                await Task.WhenAll(new Task?[] { localStart, guestStart }.OfType<Task>()).ConfigureAwait(false);
            }
            finally
            {
                if (localStart is { IsCompletedSuccessfully: true }) cluster.Node = localStart.Result;
                if (guestStart is { IsCompletedSuccessfully: true }) cluster.GuestNode = guestStart.Result;
            }
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartEtcdAsync(CancellationToken ct)
    {
        var client = $"http://127.0.0.1:{_etcdPort}";
        var peer = $"http://127.0.0.1:{_etcdPeerPort}";
        _etcd = ChildProcess.Start("etcd", Path.Combine(_assets, "etcd"),
        [
            "--name=default", $"--data-dir={Path.Combine(_dir, "etcd")}",
            $"--listen-client-urls={client}", $"--advertise-client-urls={client}",
            $"--listen-peer-urls={peer}", $"--initial-advertise-peer-urls={peer}",
            $"--initial-cluster=default={peer}", "--initial-cluster-state=new",
            "--log-level=warn",
        ], Path.Combine(_dir, "etcd.log"));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await _etcd.WaitUntilReadyAsync("etcd", async () =>
        {
            var health = await http.GetStringAsync($"{client}/health", ct).ConfigureAwait(false);
            return health.Contains("\"health\":\"true\"", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
    }

    /// <summary>Starts kube-apiserver (again, after <see cref="StopApiServerAsync"/>) on the same port and etcd.</summary>
    public async Task StartApiServerAsync(CancellationToken ct = default)
    {
        if (_apiServer is { HasExited: false }) throw new InvalidOperationException("kube-apiserver is already running");
        var args = new List<string>
        {
            $"--etcd-servers=http://127.0.0.1:{_etcdPort}",
            "--bind-address=127.0.0.1", $"--secure-port={_apiPort}", "--advertise-address=127.0.0.1",
            $"--tls-cert-file={_pki.ServingCert}", $"--tls-private-key-file={_pki.ServingKey}",
            $"--client-ca-file={_pki.CaCert}",
            $"--token-auth-file={Path.Combine(_dir, "tokens.csv")}",
            "--authorization-mode=RBAC",
            $"--service-account-key-file={_pki.ServiceAccountPub}",
            $"--service-account-signing-key-file={_pki.ServiceAccountKey}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            $"--service-cluster-ip-range={LocalNode.ServiceSubnet}",
            "--allow-privileged=true",
            // For logs, exec and port-forward through the real node's kubelet, which has no name DNS resolves.
            $"--kubelet-client-certificate={_pki.KubeletClientCert}", $"--kubelet-client-key={_pki.KubeletClientKey}",
            "--kubelet-preferred-address-types=InternalIP",
            // Webhooks are called at their Service's endpoints (pod IPs on the node's bridge), not its ClusterIP: with
            // no kube-proxy a ClusterIP leads nowhere here (and must never be sent off the machine).
            "--enable-aggregator-routing=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            $"--cert-dir={Path.Combine(_dir, "apiserver-certs")}",
            $"--watch-cache={(_options.WatchCache ? "true" : "false")}",
            "--v=1",
        };
        if (_options.EtcdCompactionInterval is { } every)
            args.Add($"--etcd-compaction-interval={(int)Math.Max(1, every.TotalSeconds)}s");
        _apiServer = ChildProcess.Start("kube-apiserver", Path.Combine(_assets, "kube-apiserver"), args, Path.Combine(_dir, "kube-apiserver.log"));

        // Trust exactly our CA: the test checks the serving certificate like a real client would.
        using var handler = ClusterPki.TrustingOnly(_pki.CaCert);
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        await _apiServer.WaitUntilReadyAsync("kube-apiserver", async () =>
        {
            using var response = await http.GetAsync(new Uri(ApiServerUrl, "/readyz"), ct).ConfigureAwait(false);
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(90), ct).ConfigureAwait(false);
    }

    public async Task StopApiServerAsync()
    {
        if (_apiServer is null) return;
        await _apiServer.StopAsync().ConfigureAwait(false);
        await _apiServer.DisposeAsync().ConfigureAwait(false);
        _apiServer = null;
    }

    private void StartControllerManager()
    {
        _controllerManager = ChildProcess.Start("kube-controller-manager", Path.Combine(_assets, "kube-controller-manager"),
        [
            $"--kubeconfig={KubeconfigPath}",
            // With a real node also what runs workloads there (Deployments, Jobs such as Helm hooks), the node
            // lifecycle, and ResourceQuota usage (the apiserver's quota admission enforces only a quota whose status
            // the controller filled); without one these would mark the tests' API-only Nodes unreachable or leave pods Pending.
            "--controllers=garbagecollector,namespace,daemonset,serviceaccount,serviceaccount-token,root-ca-cert-publisher" +
                (!_options.HasNodes ? "" : ",nodelifecycle,deployment,replicaset,job,podgc,endpoint,resourcequota"),
            $"--service-account-private-key-file={_pki.ServiceAccountKey}",
            $"--root-ca-file={_pki.CaCert}",
            "--leader-elect=false",
            "--port=0", "--secure-port=0",
            "--use-service-account-credentials=false",
            "--concurrent-gc-syncs=5",
            "--v=1",
        ], Path.Combine(_dir, "kube-controller-manager.log"));
    }

    private void StartScheduler(string nodeAssets)
    {
        var kubeconfig = WriteKubeconfig(Path.Combine(_dir, "scheduler.kubeconfig"), SchedulerToken, "system:kube-scheduler");
        _scheduler = ChildProcess.Start("kube-scheduler", Path.Combine(nodeAssets, "kube-scheduler"),
        [
            $"--kubeconfig={kubeconfig}", "--leader-elect=false", "--port=0", "--secure-port=0", "--v=1",
        ], Path.Combine(_dir, "kube-scheduler.log"));
    }

    /// <summary>
    /// The kubelet's user gets the system:node ClusterRole. A v1.20 server with RBAC only (no Node authorizer) binds
    /// nobody to it by default.
    /// </summary>
    private async Task GrantNodeIdentityAsync(CancellationToken ct)
    {
        var binding = new k8s.Models.V1ClusterRoleBinding
        {
            Metadata = new k8s.Models.V1ObjectMeta { Name = "nettune-local-nodes" },
            RoleRef = new k8s.Models.V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = "system:node" },
            Subjects = [new k8s.Models.Rbacv1Subject { ApiGroup = "rbac.authorization.k8s.io", Kind = "Group", Name = "system:nodes" }],
        };
        await Client.RbacAuthorizationV1.CreateClusterRoleBindingAsync(binding, cancellationToken: ct).ConfigureAwait(false);
    }

    /// <summary>Runs kubectl against this cluster.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> KubectlAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("KUBECTL") ?? "kubectl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        psi.ArgumentList.Add($"--kubeconfig={KubeconfigPath}");
        // Each cluster has its own port: a discovery cache under ~/.kube would only pile up.
        psi.ArgumentList.Add($"--cache-dir={Path.Combine(_dir, "kubectl-cache")}");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start kubectl");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().ConfigureAwait(false);
        return (p.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>`kubectl apply -f crds/`, then waits until the server serves every CRD.</summary>
    public async Task InstallCrdsAsync(CancellationToken ct = default)
    {
        var crds = Path.Combine(RepoRoot, "crds");
        // Servers before 1.25 have no x-kubernetes-validations in their OpenAPI, so kubectl's client-side check
        // refuses the CEL rules there; those servers drop the rules and the operator enforces them instead.
        string[] apply = await ServerSupportsCelAsync(ct).ConfigureAwait(false)
            ? ["apply", "-f", crds]
            : ["apply", "--validate=false", "-f", crds];
        var (code, stdout, stderr) = await KubectlAsync(apply).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"kubectl apply -f {crds} failed ({code}): {stderr}{stdout}");
        (code, stdout, stderr) = await KubectlAsync("wait", "--for=condition=Established", "--timeout=60s", "-f", crds).ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"CRDs did not become Established: {stderr}{stdout}");
        await WaitForOpenApiAsync(crds, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The apiserver publishes a CRD's schema in /openapi/v2 a moment after the CRD is Established (seen: seconds on a
    /// loaded machine). Until then `kubectl explain` says "couldn't find resource" and client-side validation knows no
    /// fields, so the cluster is not ready for its users before every CRD's definitions are there.
    /// </summary>
    private async Task WaitForOpenApiAsync(string crds, CancellationToken ct)
    {
        var (code, stdout, stderr) = await KubectlAsync("get", "-f", crds, "-o",
            "jsonpath={range .items[*]}{.spec.group} {.spec.versions[*].name} {.spec.names.kind}{\"\\n\"}{end}").ConfigureAwait(false);
        if (code != 0) throw new InvalidOperationException($"kubectl get -f {crds} failed ({code}): {stderr}{stdout}");
        var definitions = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .SelectMany(line =>
            {
                var words = line.Split(' ');
                var group = string.Join('.', words[0].Split('.').Reverse());
                return words[1..^1].Select(version => $"\"{group}.{version}.{words[^1]}\"");
            })
            .ToArray();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            (code, stdout, stderr) = await KubectlAsync("get", "--raw", "/openapi/v2").ConfigureAwait(false);
            var missing = code == 0 ? definitions.Where(d => !stdout.Contains(d, StringComparison.Ordinal)).ToArray() : definitions;
            if (missing.Length == 0) return;
            if (DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"/openapi/v2 still lacks {string.Join(", ", missing)} 60 s after the CRDs were Established {stderr}");
            await Task.Delay(250, ct).ConfigureAwait(false);
        }
    }

    /// <summary>True when the server enforces CRD validation rules (CEL), which came with Kubernetes 1.25.</summary>
    public async Task<bool> ServerSupportsCelAsync(CancellationToken ct = default)
    {
        var version = await Client.Version.GetCodeAsync(ct).ConfigureAwait(false);
        var minor = int.Parse(new string(version.Minor.TakeWhile(char.IsDigit).ToArray()), CultureInfo.InvariantCulture);
        return int.Parse(version.Major, CultureInfo.InvariantCulture) > 1 || minor >= 25;
    }

    /// <summary>Writes a kubeconfig for another user (a bearer token, such as a ServiceAccount's).</summary>
    public string WriteKubeconfig(string path, string token, string user, Uri? server = null)
    {
        var ca = Convert.ToBase64String(File.ReadAllBytes(_pki.CaCert));
        File.WriteAllText(path, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: nettune-test
              cluster:
                server: {(server ?? ApiServerUrl).ToString().TrimEnd('/')}
                certificate-authority-data: {ca}
            users:
            - name: {user}
              user:
                token: {token}
            contexts:
            - name: nettune-test
              context:
                cluster: nettune-test
                user: {user}
            current-context: nettune-test
            """);
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in new ClusterNode?[] { GuestNode, Node }.OfType<ClusterNode>())
        {
            await node.DrainAsync(Client, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            await node.DisposeAsync().ConfigureAwait(false);
        }
        if (Registry is not null) await Registry.DisposeAsync().ConfigureAwait(false);
        _client?.Dispose();
        foreach (var p in new[] { _scheduler, _controllerManager, _apiServer, _etcd })
            if (p is not null) await p.DisposeAsync().ConfigureAwait(false);
        if (Environment.GetEnvironmentVariable("NETTUNE_KEEP_CLUSTER") is not "1")
        {
            try { Directory.Delete(_dir, recursive: true); }
            catch (IOException) { }
        }
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string FindRepoRoot()
    {
        if (Environment.GetEnvironmentVariable("NETTUNE_REPO_ROOT") is { Length: > 0 } given) return given;
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Operator.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Operator.sln above {AppContext.BaseDirectory}; set NETTUNE_REPO_ROOT");
    }
}
