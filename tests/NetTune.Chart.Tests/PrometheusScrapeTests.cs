using k8s;
using System.Globalization;
using System.Text.Json;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.Fixtures.Hosts;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests;

/// <summary>
/// A real Prometheus scrapes a real operator, a node agent (on a two-socket fixture host root) and a data plane, all
/// on loopback; the chart's alert rules evaluate on what it scraped, and every /metrics page passes promtool.
/// </summary>
[Collection("helm-cluster")]
public sealed class PrometheusScrapeTests(BareClusterFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly List<Daemon> _daemons = [];
    private readonly string _work = Tool.TempDir("nettune-scrape");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private KubeCluster Cluster => fixture.Cluster;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await StopDaemonsAsync();
        _http.Dispose();
        try { Directory.Delete(_work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [Fact]
    public async Task PrometheusScrapesEveryComponentAndTheAlertsEvaluate()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var ns = $"scrape-{id}";
        var node = $"scrape-{id}-node";
        var tuning = $"scrape-{id}";
        var admin = Cluster.Client;
        await Cluster.InstallCrdsAsync();
        await admin.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        var labels = new Dictionary<string, string> { ["nettune-scrape-test"] = id };
        await admin.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node, Labels = labels } });
        try
        {
            var operatorPort = Daemon.FreePort();
            var agentPort = Daemon.FreePort();
            var dataPort = Daemon.FreePort();
            var adminPort = Daemon.FreePort();
            var prometheusPort = Daemon.FreePort();

            _daemons.Add(Daemon.StartProject("operator", "operator/NetTune.Operator", "nettune-operator.dll",
                ["--kubeconfig", Cluster.KubeconfigPath, "--namespace", ns, "--metrics-port", $"{operatorPort}", "--log-format", "text", "--identity", $"scrape-{id}"]));
            var hostRoot = Path.Combine(_work, "host");
            FixtureHosts.WriteTwoSocket(hostRoot);
            _daemons.Add(Daemon.StartProject("agent", "agent/NetTune.Agent", "NetTune.Agent.dll",
                ["--kubeconfig", Cluster.KubeconfigPath, "--node-name", node, "--host-root", hostRoot, "--journal-dir", Path.Combine(_work, "journal"),
                 "--metrics-port", $"{agentPort}", "--channel-backend", "Fixture", "--drift-interval", "2s"]));
            var www = Directory.CreateDirectory(Path.Combine(_work, "www")).FullName;
            File.WriteAllText(Path.Combine(www, "index.html"), "<h1>NetTune</h1>\n");
            _daemons.Add(Daemon.StartProject("dataplane", "dataplane/NetTune.DataPlane", "dataplane.dll",
                ["--root", www, "--address", "127.0.0.1", "--port", $"{dataPort}", "--admin-address", "127.0.0.1", "--admin-port", $"{adminPort}", "--cpus", "0"]));

            await admin.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
            {
                Metadata = new V1ObjectMeta { Name = tuning },
                Spec = new NetworkTuningSpec
                {
                    NodeSelector = new V1LabelSelector { MatchLabels = labels },
                    Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "8192" },
                },
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);

            var pages = new Dictionary<string, string>
            {
                ["operator"] = $"http://127.0.0.1:{operatorPort}/metrics",
                ["agent"] = $"http://127.0.0.1:{agentPort}/metrics",
                ["dataplane"] = $"http://127.0.0.1:{adminPort}/metrics",
            };
            foreach (var (name, url) in pages) await WaitForHttpAsync(url, name);
            // Traffic for the data plane's counters: three hits and a miss.
            for (var i = 0; i < 3; i++) Assert.Equal(200, (int)(await _http.GetAsync($"http://127.0.0.1:{dataPort}/index.html")).StatusCode);
            Assert.Equal(404, (int)(await _http.GetAsync($"http://127.0.0.1:{dataPort}/missing.html")).StatusCode);

            // Prometheus with a loopback scrape config and the chart's alert rules.
            var rules = (await TheChart.RenderAsync("3", "--set", "prometheusRule.enabled=true")).Single(m => m.Kind == "PrometheusRule").Json["spec"]!["groups"]!;
            var promDir = Directory.CreateDirectory(Path.Combine(_work, "prometheus")).FullName;
            File.WriteAllText(Path.Combine(promDir, "rules.yaml"), new System.Text.Json.Nodes.JsonObject { ["groups"] = rules.DeepClone() }.ToJsonString());
            File.WriteAllText(Path.Combine(promDir, "prometheus.yml"), $$$"""
                global:
                  scrape_interval: 1s
                  scrape_timeout: 1s
                  evaluation_interval: 1s
                rule_files: [rules.yaml]
                scrape_configs:
                  - job_name: nettune-operator
                    static_configs: [{targets: ['127.0.0.1:{{{operatorPort}}}']}]
                  - job_name: nettune-agent
                    static_configs: [{targets: ['127.0.0.1:{{{agentPort}}}'], labels: {node: '{{{node}}}'}}]
                  - job_name: nettune-dataplane
                    static_configs: [{targets: ['127.0.0.1:{{{adminPort}}}'], labels: {node: '{{{node}}}', numa_node: '0'}}]
                """);
            var promtool = await Tool.PromtoolAsync();
            var prometheus = Path.Combine(Path.GetDirectoryName(promtool)!, "prometheus");
            var check = await Tool.RunAsync(promtool, ["check", "config", Path.Combine(promDir, "prometheus.yml")]);
            Assert.True(check.ExitCode == 0, check.Output);
            _daemons.Add(Daemon.Start("prometheus", prometheus,
                [$"--config.file={Path.Combine(promDir, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(promDir, "data")}",
                 $"--web.listen-address=127.0.0.1:{prometheusPort}"], promDir));
            var api = $"http://127.0.0.1:{prometheusPort}/api/v1";

            await WaitAsync(async () =>
            {
                var targets = await GetJsonAsync($"{api}/targets?state=active");
                var active = targets.GetProperty("data").GetProperty("activeTargets").EnumerateArray().ToList();
                return active.Count == 3 && active.All(t => t.GetProperty("health").GetString() == "up");
            }, "every target to be up");
            foreach (var job in new[] { "nettune-operator", "nettune-agent", "nettune-dataplane" })
                Assert.Equal(1, Assert.Single(await QueryAsync(api, $"up{{job=\"{job}\"}}")).Value);

            // Key series, with the labels the alerts and the dashboard group by.
            Assert.Equal(1, Assert.Single(await WaitForSeriesAsync(api, "nettune_operator_leader")).Value);
            await WaitForSeriesAsync(api, $"nettune_operator_rollout_progress_ratio{{tuning=\"{tuning}\"}}");
            var phases = await WaitForSeriesAsync(api, $"nettune_operator_nodes{{tuning=\"{tuning}\"}}", 3);
            Assert.Equal(["applied", "failed", "pending"], phases.Select(s => s.Labels["phase"]).Order(StringComparer.Ordinal));
            Assert.Equal(2, Assert.Single(await WaitForSeriesAsync(api, $"nettune_agent_numa_nodes{{node=\"{node}\"}}")).Value);
            Assert.Equal(32, Assert.Single(await WaitForSeriesAsync(api, "nettune_agent_online_cpus")).Value);
            Assert.Equal(16, Assert.Single(await WaitForSeriesAsync(api, "nettune_agent_nic_queues{nic=\"eth1\",direction=\"rx\"}")).Value);
            await WaitForSeriesAsync(api, "nettune_agent_runs_total");
            Assert.True(Assert.Single(await WaitForSeriesAsync(api, "nettune_dataplane_requests_total{status=\"200\"}")).Value >= 3);
            Assert.True(Assert.Single(await WaitForSeriesAsync(api, "nettune_dataplane_requests_total{status=\"404\"}")).Value >= 1);
            var workers = await WaitForSeriesAsync(api, "nettune_dataplane_worker_info");
            Assert.All(workers, w => Assert.Equal("0", w.Labels["cpu"]));

            // The alert rules evaluate on real series without errors (a bad join would make them fail here).
            await WaitAsync(async () =>
            {
                var groups = (await GetJsonAsync($"{api}/rules")).GetProperty("data").GetProperty("groups").EnumerateArray().ToList();
                var evaluated = groups.SelectMany(g => g.GetProperty("rules").EnumerateArray()).ToList();
                var bad = evaluated.Where(r => r.GetProperty("health").GetString() == "err").Select(r => $"{r.GetProperty("name")}: {r.GetProperty("lastError")}").ToList();
                Assert.True(bad.Count == 0, string.Join("\n", bad));
                return evaluated.Count == 5 && evaluated.All(r => r.GetProperty("health").GetString() == "ok");
            }, "every alert rule to be evaluated");

            // Every /metrics page passes promtool's lint (HELP present, counters end in _total, base units).
            foreach (var (name, url) in pages)
            {
                var page = await _http.GetStringAsync(url);
                var lint = await Tool.RunAsync(promtool, ["check", "metrics"], stdin: page);
                Assert.True(lint.ExitCode == 0, $"promtool check metrics on the {name}'s page:\n{lint.Output}");
            }
        }
        finally
        {
            // Stop the operator and the agent before their objects go, so they do not fight the clean-up.
            await StopDaemonsAsync();
            try
            {
                await admin.CustomObjects.PatchClusterCustomObjectAsync(new V1Patch("{\"metadata\":{\"finalizers\":null}}", V1Patch.PatchType.MergePatch),
                    ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, tuning);
                await admin.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, tuning);
            }
            catch (k8s.Autorest.HttpOperationException) { }
            await admin.CoreV1.DeleteNodeAsync(node);
            await admin.CoreV1.DeleteNamespaceAsync(ns);
        }
    }

    private async Task StopDaemonsAsync()
    {
        foreach (var d in _daemons)
        {
            await d.DisposeAsync();
            output.WriteLine($"--- {d.Name}\n{Tail(d.Log, 3000)}");
        }
        _daemons.Clear();
    }

    private sealed record Sample(Dictionary<string, string> Labels, double Value);

    private async Task<List<Sample>> QueryAsync(string api, string query)
    {
        var json = await GetJsonAsync($"{api}/query?query={Uri.EscapeDataString(query)}");
        return json.GetProperty("data").GetProperty("result").EnumerateArray().Select(r => new Sample(
            r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
            double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture))).ToList();
    }

    private async Task<List<Sample>> WaitForSeriesAsync(string api, string query, int count = 1)
    {
        List<Sample> found = [];
        await WaitAsync(async () => (found = await QueryAsync(api, query)).Count >= count, $"{count} series for {query}");
        return found;
    }

    private async Task<JsonElement> GetJsonAsync(string url)
    {
        using var doc = JsonDocument.Parse(await _http.GetStringAsync(url));
        return doc.RootElement.Clone();
    }

    private async Task WaitForHttpAsync(string url, string what)
    {
        await WaitAsync(async () =>
        {
            try { return (await _http.GetAsync(url)).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
        }, $"{what} to serve {url}");
    }

    private async Task WaitAsync(Func<Task<bool>> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var dead = _daemons.FirstOrDefault(d => d.HasExited);
            if (dead is not null) Assert.Fail($"{dead.Name} exited while waiting for {what}:\n{Tail(dead.Log, 4000)}");
            try
            {
                if (await condition()) return;
            }
            catch (HttpRequestException) { }
            await Task.Delay(300);
        }
        Assert.Fail($"timed out after {seconds}s waiting for {what}");
    }

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];
}
