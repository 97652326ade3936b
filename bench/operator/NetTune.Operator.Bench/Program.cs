// The operator at scale: for each node count, a fresh test cluster with that many Node objects, the real operator
// executable as a child process, and one NetworkTuning over every node.
//   N          maxUnavailable 100%, no agents: the time from creating the NetworkTuning to every NodeState written, the
//              operator's API requests per node by verb and resource (its own counter) and its peak RSS (VmHWM).
//   rollout:N  maxUnavailable 10% with N simulated agents (one watch each on the API server, answering their NodeState
//              with an Applied status as an agent does): the time until the tuning reports every node Applied, requests
//              per node, and the peak RSS of the operator and of the API server.
//   rest:N     the operator at rest with N nodes in its caches, once per runtime setting in OPERATOR_VARIANTS (the
//              first, the build's own settings, is the peer): VmRSS, its anonymous and file-backed parts, and the GC's
//              view (dotnet_total_memory_bytes), 30 s after its caches synced and its first reconciles wrote nothing.
// Every Node object gets the status a kubelet writes (images, conditions, addresses, capacity), so the caches and the
// watch traffic carry what real nodes carry; NODE_STATUS=0 leaves them bare, as before 2026-12-07.
// Not a test: times vary with the machine; request counts do not.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using NetTune.Operator.Bench;
using NetTune.Testing.Cluster;

var operatorDll = args.Length > 0 ? args[0] : throw new ArgumentException("usage: bench OPERATOR_DLL [NODES...]");
var runs = args.Length > 1 ? args[1..] : ["1000", "5000"];
var results = new List<Dictionary<string, object>>();

var nodeStatus = Environment.GetEnvironmentVariable("NODE_STATUS") != "0";
// rest:N's runtime settings, ';' between variants, environment assignments within one; "build" is the build's own;
// OPERATOR_DLL=PATH runs another build of the operator.
const string DefaultVariants = "build; DOTNET_GCgen0size=0x400000; DOTNET_GCConserveMemory=7; DOTNET_TieredPGO=0; DOTNET_TieredCompilation=0; " +
                               "DOTNET_EnableWriteXorExecute=0; DOTNET_EnableWriteXorExecute=0 DOTNET_GCgen0size=0x400000 DOTNET_TieredPGO=0";
foreach (var run in runs)
{
    if (run.StartsWith("rest:", StringComparison.Ordinal))
    {
        results.AddRange(await RestAsync(int.Parse(run["rest:".Length..], CultureInfo.InvariantCulture)));
        continue;
    }
    var rollout = run.StartsWith("rollout:", StringComparison.Ordinal);
    var nodes = int.Parse(rollout ? run["rollout:".Length..] : run, CultureInfo.InvariantCulture);
    Console.Error.WriteLine($"[bench] {nodes} nodes{(rollout ? ", rollout at 10% with simulated agents" : "")}: starting a cluster");
    // No controller manager: its DaemonSet controller would make a pod per Node object, which is not what is measured.
    await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { StartControllerManager = false });
    await cluster.InstallCrdsAsync();
    var client = cluster.CreateClient();
    await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "nettune-system" } });

    await CreateNodesAsync(client, nodes);
    await using var running = await StartOperatorAsync(cluster, $"{nodes}", []);
    var (op, http) = (running.Process, running.Http);

    using var agentsStop = new CancellationTokenSource();
    var agents = rollout ? SimulatedAgents.Start(cluster, [.. Enumerable.Range(0, nodes).Select(NodeName)], agentsStop.Token) : null;
    var requestsBefore = await RequestsAsync(http);
    var reconcilesBefore = await TuningReconcilesAsync(http);
    var clock = Stopwatch.StartNew();
    await client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
    {
        Metadata = new V1ObjectMeta { Name = "bench" },
        Spec = new NetworkTuningSpec
        {
            NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune.io/bench"] = "yes" } },
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "4096" },
            Rollout = new RolloutSpec { MaxUnavailable = rollout ? "10%" : "100%" },
        },
    }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
    await Until(async () => await CountNodeStatesAsync(client) >= nodes, TimeSpan.FromMinutes(rollout ? 30 : 10), $"{nodes} NodeStates");
    var written = clock.Elapsed;
    await Until(async () =>
    {
        var t = KubernetesJson.Deserialize<NetworkTuning>((JsonElement)await client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, "bench"));
        return t.Status?.MatchedNodes == nodes && (rollout ? t.Status.AppliedNodes == nodes : t.Status.PendingNodes == nodes);
    }, TimeSpan.FromMinutes(rollout ? 30 : 5), rollout ? "every node Applied" : "status");
    var statused = clock.Elapsed;
    var byResource = Subtract(await RequestsAsync(http), requestsBefore);
    var requests = byResource.Values.Sum();
    var reconciles = await TuningReconcilesAsync(http) - reconcilesBefore;
    var peakRss = PeakRssKiB(op.Id);
    // At rest with every node in its caches: what the operator holds between rollouts.
    await Task.Delay(TimeSpan.FromSeconds(30));
    var restRss = StatusKiB(op.Id, "VmRSS");
    var apiServerPeakRss = ApiServerPid(cluster.ApiServerUrl.Port) is { } apiServer ? PeakRssKiB(apiServer) : 0;
    await agentsStop.CancelAsync();
    var agentStatusWrites = agents is null ? 0 : await agents;

    var row = new Dictionary<string, object>
    {
        ["nodes"] = nodes,
        ["maxUnavailable"] = rollout ? "10%" : "100%",
        ["simulatedAgents"] = rollout,
        ["secondsToAllNodeStates"] = Math.Round(written.TotalSeconds, 2),
        [rollout ? "secondsToAllApplied" : "secondsToStatus"] = Math.Round(statused.TotalSeconds, 2),
        ["apiRequests"] = requests,
        ["apiRequestsPerNode"] = Math.Round(requests / nodes, 2),
        ["nodeStateWritesPerNode"] = Math.Round(byResource.Where(kv => kv.Key.EndsWith(" networktuningnodestates", StringComparison.Ordinal)).Sum(kv => kv.Value) / nodes, 3),
        ["apiRequestsPerNodeByVerbAndResource"] = byResource.Where(kv => kv.Value > 0).OrderByDescending(kv => kv.Value)
            .ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value / nodes, 3)),
        ["tuningReconciles"] = reconciles,
        ["operatorPeakRssMiB"] = Math.Round(peakRss / 1024.0, 1),
        ["operatorRestRssMiB"] = Math.Round(restRss / 1024.0, 1),
        ["apiServerPeakRssMiB"] = Math.Round(apiServerPeakRss / 1024.0, 1),
        ["agentStatusWrites"] = agentStatusWrites,
    };
    results.Add(row);
    var perResource = string.Join(" ", byResource.Where(kv => kv.Value > 0).OrderByDescending(kv => kv.Value)
        .Select(kv => $"{kv.Key.Replace(' ', ':')}={kv.Value / nodes:0.###}"));
    Console.WriteLine($"nodes={nodes} max_unavailable={row["maxUnavailable"]} all_nodestates_s={row["secondsToAllNodeStates"]} " +
                      $"{(rollout ? "all_applied_s" : "status_s")}={Math.Round(statused.TotalSeconds, 2)} api_requests={requests} per_node={row["apiRequestsPerNode"]} " +
                      $"({perResource}) tuning_reconciles={reconciles} operator_peak_rss_mib={row["operatorPeakRssMiB"]} operator_rest_rss_mib={row["operatorRestRssMiB"]} apiserver_peak_rss_mib={row["apiServerPeakRssMiB"]}" +
                      (rollout ? $" agent_status_writes={agentStatusWrites}" : ""));
}

var outDir = Path.Combine(KubeCluster.RepoRoot, "bench", "results");
Directory.CreateDirectory(outDir);
var outFile = Path.Combine(outDir, $"operator-{DateTime.UtcNow:yyyyMMddTHHmmss}.json");
await File.WriteAllTextAsync(outFile, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
Console.Error.WriteLine($"[bench] results in {outFile}");
return 0;

static string NodeName(int i) => $"bench-node-{i:D5}";

// Node objects through the API, each with the status its kubelet would write (unless NODE_STATUS=0).
async Task CreateNodesAsync(IKubernetes client, int nodes)
{
    var create = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, nodes), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
    {
        await client.CoreV1.CreateNodeAsync(new V1Node
        {
            Metadata = new V1ObjectMeta { Name = NodeName(i), Labels = new Dictionary<string, string> { ["nettune.io/bench"] = "yes" } },
        }, cancellationToken: ct);
        if (nodeStatus)
            await client.CoreV1.PatchNodeStatusAsync(new V1Patch(KubernetesJson.Serialize(new V1Node { Status = KubeletNodeStatus.For(NodeName(i), i) }), V1Patch.PatchType.MergePatch),
                NodeName(i), cancellationToken: ct);
    });
    Console.Error.WriteLine($"[bench] created {nodes} Node objects{(nodeStatus ? " with a kubelet's status" : "")} in {create.Elapsed.TotalSeconds:0.0}s");
}

// The operator executable as a child process on a free metrics port, with extra environment; ready once /readyz says so.
async Task<OperatorRun> StartOperatorAsync(KubeCluster cluster, string tag, IReadOnlyList<KeyValuePair<string, string>> environment)
{
    var port = FreePort();
    // OPERATOR_DLL=PATH in a variant runs another build (an older one as the peer).
    var dll = environment.FirstOrDefault(kv => kv.Key == "OPERATOR_DLL").Value ?? operatorDll;
    var start = new ProcessStartInfo("dotnet")
    {
        ArgumentList = { dll, "--kubeconfig", cluster.KubeconfigPath, "--namespace", "nettune-system", "--metrics-port", port.ToString(CultureInfo.InvariantCulture), "--log-format", "text" },
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    foreach (var (key, value) in environment.Where(kv => kv.Key != "OPERATOR_DLL")) start.Environment[key] = value;
    var run = new OperatorRun(Process.Start(start)!, Path.Combine(Path.GetTempPath(), $"nettune-operator-bench-{tag}.log"), port);
    await Until(async () => (await run.Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(180), "operator ready");
    return run;
}

// rest:N: one cluster with N nodes, each tuned and reported Applied once; then the operator started afresh for each
// runtime setting, measured at rest.
async Task<List<Dictionary<string, object>>> RestAsync(int nodes)
{
    var rows = new List<Dictionary<string, object>>();
    Console.Error.WriteLine($"[bench] {nodes} nodes at rest: starting a cluster");
    await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { StartControllerManager = false });
    await cluster.InstallCrdsAsync();
    var client = cluster.CreateClient();
    await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "nettune-system" } });
    await CreateNodesAsync(client, nodes);
    await using (var first = await StartOperatorAsync(cluster, $"rest-{nodes}-setup", []))
    {
        await client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
        {
            Metadata = new V1ObjectMeta { Name = "bench" },
            Spec = new NetworkTuningSpec
            {
                NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune.io/bench"] = "yes" } },
                Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "4096" },
                Rollout = new RolloutSpec { MaxUnavailable = "100%" },
            },
        }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        using var stop = new CancellationTokenSource();
        var agents = SimulatedAgents.Start(cluster, [.. Enumerable.Range(0, nodes).Select(NodeName)], stop.Token);
        await Until(async () => KubernetesJson.Deserialize<NetworkTuning>((JsonElement)await client.CustomObjects.GetClusterCustomObjectAsync(
            ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, "bench")).Status?.AppliedNodes == nodes, TimeSpan.FromMinutes(30), "every node Applied");
        await stop.CancelAsync();
        await agents;
    }
    var variants = (Environment.GetEnvironmentVariable("OPERATOR_VARIANTS") ?? DefaultVariants)
        .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    var rounds = int.Parse(Environment.GetEnvironmentVariable("ROUNDS") ?? "1", CultureInfo.InvariantCulture);
    for (var round = 1; round <= rounds; round++)
    {
        foreach (var variant in variants)
        {
            var environment = variant == "build" ? [] : variant.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(kv => KeyValuePair.Create(kv[..kv.IndexOf('=')], kv[(kv.IndexOf('=') + 1)..])).ToList();
            await using var op = await StartOperatorAsync(cluster, $"rest-{nodes}-{rows.Count}", environment);
            // Synced and reconciled: every tuning and node looked at once, with nothing to write.
            await Until(async () => await TuningReconcilesAsync(op.Http) >= 1, TimeSpan.FromMinutes(5), "a first reconcile");
            await Task.Delay(TimeSpan.FromSeconds(30));
            var metrics = await op.Http.GetStringAsync("/metrics");
            var writes = (await RequestsAsync(op.Http)).Where(kv => kv.Key.Split(' ')[0] is "post" or "put" or "patch" or "delete").Sum(kv => kv.Value);
            var row = new Dictionary<string, object>
            {
                ["scenario"] = "rest",
                ["nodes"] = nodes,
                ["round"] = round,
                ["settings"] = variant,
                ["rssMiB"] = Math.Round(StatusKiB(op.Process.Id, "VmRSS") / 1024.0, 1),
                ["rssAnonMiB"] = Math.Round(StatusKiB(op.Process.Id, "RssAnon") / 1024.0, 1),
                ["rssFileMiB"] = Math.Round(StatusKiB(op.Process.Id, "RssFile") / 1024.0, 1),
                // The runtime's executable memory, mapped twice (writable and executable views) under W^X.
                ["rssShmemMiB"] = Math.Round(StatusKiB(op.Process.Id, "RssShmem") / 1024.0, 1),
                ["peakRssMiB"] = Math.Round(PeakRssKiB(op.Process.Id) / 1024.0, 1),
                ["gcTotalMemoryMiB"] = Math.Round(Gauge(metrics, "dotnet_total_memory_bytes") / 1048576.0, 1),
                ["threads"] = Gauge(metrics, "process_num_threads"),
                ["apiWrites"] = writes,
            };
            rows.Add(row);
            Console.WriteLine($"rest nodes={nodes} round={round} settings=\"{variant}\" rss_mib={row["rssMiB"]} anon_mib={row["rssAnonMiB"]} file_mib={row["rssFileMiB"]} shmem_mib={row["rssShmemMiB"]} " +
                              $"peak_rss_mib={row["peakRssMiB"]} gc_total_memory_mib={row["gcTotalMemoryMiB"]} threads={row["threads"]} api_writes={writes}");
        }
    }
    return rows;
}

static async Task<int> CountNodeStatesAsync(IKubernetes client)
{
    // limit=1 keeps the poll cheap: the server reports how many items remain.
    var list = KubernetesJson.Deserialize<NetworkTuningNodeStateList>((JsonElement)await client.CustomObjects.ListClusterCustomObjectAsync(
        ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, limit: 1));
    return list.Items.Count + (int)(list.Metadata.RemainingItemCount ?? 0);
}

// The operator's non-watch requests so far, by "verb resource", from nettune_operator_api_requests_total{verb,resource}.
static async Task<Dictionary<string, double>> RequestsAsync(HttpClient http)
{
    var text = await http.GetStringAsync("/metrics");
    var counts = new Dictionary<string, double>(StringComparer.Ordinal);
    foreach (var line in text.Split('\n').Where(l => l.StartsWith("nettune_operator_api_requests_total{", StringComparison.Ordinal) && !l.Contains("verb=\"watch\"")))
    {
        var key = $"{Label(line, "verb")} {Label(line, "resource")}";
        counts[key] = counts.GetValueOrDefault(key) + double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
    return counts;

    static string Label(string line, string name)
    {
        var at = line.IndexOf(name + "=\"", StringComparison.Ordinal);
        if (at < 0) return "";
        at += name.Length + 2;
        return line[at..line.IndexOf('"', at)];
    }
}

// How many times the operator reconciled a NetworkTuning (each plans over every node): nettune_operator_reconciles_total{kind="NetworkTuning"}.
static async Task<double> TuningReconcilesAsync(HttpClient http) =>
    (await http.GetStringAsync("/metrics")).Split('\n')
        .Where(l => l.StartsWith("nettune_operator_reconciles_total{kind=\"NetworkTuning\"", StringComparison.Ordinal))
        .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

static Dictionary<string, double> Subtract(Dictionary<string, double> after, Dictionary<string, double> before) =>
    after.ToDictionary(kv => kv.Key, kv => kv.Value - before.GetValueOrDefault(kv.Key), StringComparer.Ordinal);

// The test cluster's kube-apiserver: the process whose command line has its --secure-port.
static int? ApiServerPid(int port)
{
    foreach (var dir in Directory.EnumerateDirectories("/proc"))
    {
        if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
        try
        {
            var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
            if (args.Length > 0 && Path.GetFileName(args[0]) == "kube-apiserver" && args.Contains($"--secure-port={port}")) return pid;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
    return null;
}

static double Gauge(string metrics, string name) =>
    metrics.Split('\n').Where(l => l.StartsWith(name + " ", StringComparison.Ordinal))
        .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)).FirstOrDefault();

static long PeakRssKiB(int pid) => StatusKiB(pid, "VmHWM");

static long StatusKiB(int pid, string field)
{
    var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}

static async Task Until(Func<Task<bool>> condition, TimeSpan timeout, string what)
{
    var deadline = DateTime.UtcNow + timeout;
    while (DateTime.UtcNow < deadline)
    {
        try
        {
            if (await condition()) return;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or k8s.Autorest.HttpOperationException) { }
        await Task.Delay(100);
    }
    throw new TimeoutException($"timed out waiting for {what}");
}

static int FreePort()
{
    using var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    return ((IPEndPoint)l.LocalEndpoint).Port;
}
