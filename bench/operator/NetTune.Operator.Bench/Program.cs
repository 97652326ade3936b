// The operator at scale: for each node count, a fresh test cluster with that many Node objects, the real operator
// executable as a child process, and one NetworkTuning over every node.
//   N          maxUnavailable 100%, no agents: the time from creating the NetworkTuning to every NodeState written, the
//              operator's API requests per node by verb and resource (its own counter) and its peak RSS (VmHWM).
//   rollout:N  maxUnavailable 10% with N simulated agents (one watch each on the API server, answering their NodeState
//              with an Applied status as an agent does): the time until the tuning reports every node Applied, requests
//              per node, and the peak RSS of the operator and of the API server.
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

foreach (var run in runs)
{
    var rollout = run.StartsWith("rollout:", StringComparison.Ordinal);
    var nodes = int.Parse(rollout ? run["rollout:".Length..] : run, CultureInfo.InvariantCulture);
    Console.Error.WriteLine($"[bench] {nodes} nodes{(rollout ? ", rollout at 10% with simulated agents" : "")}: starting a cluster");
    // No controller manager: its DaemonSet controller would make a pod per Node object, which is not what is measured.
    await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { StartControllerManager = false });
    await cluster.InstallCrdsAsync();
    var client = cluster.CreateClient();
    await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "nettune-system" } });

    var create = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, nodes), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        await client.CoreV1.CreateNodeAsync(new V1Node
        {
            Metadata = new V1ObjectMeta { Name = NodeName(i), Labels = new Dictionary<string, string> { ["nettune.io/bench"] = "yes" } },
        }, cancellationToken: ct));
    Console.Error.WriteLine($"[bench] created {nodes} Node objects in {create.Elapsed.TotalSeconds:0.0}s");

    var port = FreePort();
    var log = Path.Combine(Path.GetTempPath(), $"nettune-operator-bench-{nodes}.log");
    var start = new ProcessStartInfo("dotnet")
    {
        ArgumentList = { operatorDll, "--kubeconfig", cluster.KubeconfigPath, "--namespace", "nettune-system", "--metrics-port", port.ToString(CultureInfo.InvariantCulture), "--log-format", "text" },
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    using var op = Process.Start(start)!;
    var logWriter = File.CreateText(log);
    op.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (logWriter) logWriter.WriteLine(e.Data); };
    op.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (logWriter) logWriter.WriteLine(e.Data); };
    op.BeginOutputReadLine();
    op.BeginErrorReadLine();
    using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
    await Until(async () => (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(120), "operator ready");

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
    await Until(async () => await CountNodeStatesAsync(client) >= nodes, TimeSpan.FromMinutes(10), $"{nodes} NodeStates");
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

    op.Kill(entireProcessTree: true);
    await op.WaitForExitAsync();
    lock (logWriter) logWriter.Dispose();

    var row = new Dictionary<string, object>
    {
        ["nodes"] = nodes,
        ["maxUnavailable"] = rollout ? "10%" : "100%",
        ["simulatedAgents"] = rollout,
        ["secondsToAllNodeStates"] = Math.Round(written.TotalSeconds, 2),
        [rollout ? "secondsToAllApplied" : "secondsToStatus"] = Math.Round(statused.TotalSeconds, 2),
        ["apiRequests"] = requests,
        ["apiRequestsPerNode"] = Math.Round(requests / nodes, 2),
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
