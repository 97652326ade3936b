// The operator at scale: for each node count, a fresh test cluster with that many Node objects, the real operator
// executable as a child process, and one NetworkTuning over every node with maxUnavailable 100%. Reports the time from
// creating the NetworkTuning to every NodeState written, the operator's API requests per node (its own counter) and
// its peak RSS (VmHWM). Not a test: numbers vary with the machine.
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
using NetTune.Testing.Cluster;

var operatorDll = args.Length > 0 ? args[0] : throw new ArgumentException("usage: bench OPERATOR_DLL [NODES...]");
var sizes = args.Length > 1 ? args[1..].Select(int.Parse).ToArray() : [1000, 5000];
var results = new List<Dictionary<string, object>>();

foreach (var nodes in sizes)
{
    Console.Error.WriteLine($"[bench] {nodes} nodes: starting a cluster");
    // No controller manager: its DaemonSet controller would make a pod per Node object, which is not what is measured.
    await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { StartControllerManager = false });
    await cluster.InstallCrdsAsync();
    var client = cluster.CreateClient();
    await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "nettune-system" } });

    var create = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, nodes), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        await client.CoreV1.CreateNodeAsync(new V1Node
        {
            Metadata = new V1ObjectMeta { Name = $"bench-node-{i:D5}", Labels = new Dictionary<string, string> { ["nettune.io/bench"] = "yes" } },
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

    var requestsBefore = await RequestsAsync(http);
    var clock = Stopwatch.StartNew();
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
    await Until(async () => await CountNodeStatesAsync(client) >= nodes, TimeSpan.FromMinutes(10), $"{nodes} NodeStates");
    var written = clock.Elapsed;
    await Until(async () =>
    {
        var t = KubernetesJson.Deserialize<NetworkTuning>((JsonElement)await client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, "bench"));
        return t.Status?.MatchedNodes == nodes && t.Status.PendingNodes == nodes;
    }, TimeSpan.FromMinutes(5), "status");
    var statused = clock.Elapsed;
    var requests = await RequestsAsync(http) - requestsBefore;
    var peakRss = PeakRssKiB(op.Id);

    op.Kill(entireProcessTree: true);
    await op.WaitForExitAsync();
    lock (logWriter) logWriter.Dispose();

    var row = new Dictionary<string, object>
    {
        ["nodes"] = nodes,
        ["secondsToAllNodeStates"] = Math.Round(written.TotalSeconds, 2),
        ["secondsToStatus"] = Math.Round(statused.TotalSeconds, 2),
        ["apiRequests"] = requests,
        ["apiRequestsPerNode"] = Math.Round(requests / nodes, 2),
        ["operatorPeakRssMiB"] = Math.Round(peakRss / 1024.0, 1),
    };
    results.Add(row);
    Console.WriteLine($"nodes={nodes} all_nodestates_s={row["secondsToAllNodeStates"]} status_s={row["secondsToStatus"]} api_requests={requests} per_node={row["apiRequestsPerNode"]} peak_rss_mib={row["operatorPeakRssMiB"]}");
}

var outDir = Path.Combine(KubeCluster.RepoRoot, "bench", "results");
Directory.CreateDirectory(outDir);
var outFile = Path.Combine(outDir, $"operator-{DateTime.UtcNow:yyyyMMddTHHmmss}.json");
await File.WriteAllTextAsync(outFile, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
Console.Error.WriteLine($"[bench] results in {outFile}");
return 0;

static async Task<int> CountNodeStatesAsync(IKubernetes client)
{
    // limit=1 keeps the poll cheap: the server reports how many items remain.
    var list = KubernetesJson.Deserialize<NetworkTuningNodeStateList>((JsonElement)await client.CustomObjects.ListClusterCustomObjectAsync(
        ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, limit: 1));
    return list.Items.Count + (int)(list.Metadata.RemainingItemCount ?? 0);
}

static async Task<double> RequestsAsync(HttpClient http)
{
    var text = await http.GetStringAsync("/metrics");
    return text.Split('\n').Where(l => l.StartsWith("nettune_operator_api_requests_total{", StringComparison.Ordinal) && !l.Contains("verb=\"watch\""))
        .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
}

static long PeakRssKiB(int pid)
{
    var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
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
