using System.Text.Json;
using k8s;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Chart.Tests;

/// <summary>hack/demo-chart.sh, the chart's part of `make demo`, against the real test cluster.</summary>
[Collection("helm-cluster")]
public sealed class DemoChartScriptTests(BareClusterFixture fixture)
{
    private KubeCluster Cluster => fixture.Cluster;
    private static string Script => Path.Combine(Tool.RepoRoot, "hack", "demo-chart.sh");

    [Fact]
    public async Task InstallsHandsOutTheOperatorTokenAndRunsPrometheusWithTheRules()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var ns = $"demo-{id}";
        var dir = Tool.TempDir("nettune-demo-chart");
        try
        {
            var install = await Tool.RunAsync("bash", [Script, "install", Cluster.KubeconfigPath, ns, dir], timeout: TimeSpan.FromMinutes(3));
            Assert.True(install.ExitCode == 0, install.Output);
            var kubeconfig = install.Stdout.Trim().Split('\n')[^1];
            Assert.Equal(Path.Combine(dir, "operator.kubeconfig"), kubeconfig);
            Assert.Empty((await Cluster.Client.AppsV1.ListNamespacedDeploymentAsync(ns)).Items);

            // The kubeconfig is the operator's ServiceAccount: its rights and no more.
            using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig));
            await ClusterSupport.AllowedAsync(() => client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural),
                "operator lists NetworkTunings");
            await ClusterSupport.ForbiddenAsync(() => client.CoreV1.ListNamespacedSecretAsync(ns), "operator lists secrets");

            // Installing again is an upgrade, not an error.
            var again = await Tool.RunAsync("bash", [Script, "install", Cluster.KubeconfigPath, ns, dir], timeout: TimeSpan.FromMinutes(3));
            Assert.True(again.ExitCode == 0, again.Output);

            var port = Daemon.FreePort();
            var prometheus = await Tool.RunAsync("bash", [Script, "prometheus", dir, $"{port}", "127.0.0.1:1", "node-a=127.0.0.1:2,node-b=127.0.0.1:3", "127.0.0.1:4"],
                timeout: TimeSpan.FromMinutes(3));
            try
            {
                Assert.True(prometheus.ExitCode == 0, prometheus.Output);
                Assert.Equal($"http://127.0.0.1:{port}", prometheus.Stdout.Trim().Split('\n')[^1]);
                using var http = new HttpClient();
                using var rules = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/api/v1/rules"));
                var names = rules.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray()
                    .SelectMany(g => g.GetProperty("rules").EnumerateArray()).Select(r => r.GetProperty("name").GetString()).Order().ToList();
                Assert.Equal(["NetTuneDataPlaneErrorRatioHigh", "NetTuneDataPlaneLatencyHigh", "NetTuneDriftRepairsRising", "NetTuneNodeTuningDegraded", "NetTuneRolloutStuck"], names);
                // Targets appear once service discovery has run, a moment after the server is ready.
                var active = new List<JsonElement>();
                await ClusterSupport.WaitUntilAsync(async () =>
                {
                    using var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/api/v1/targets"));
                    active = targets.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray().Select(t => t.Clone()).ToList();
                    return active.Count == 4;
                }, "Prometheus to list the four scrape targets", 30);
                Assert.Equal(["node-a", "node-b"], active.Where(t => t.GetProperty("labels").GetProperty("job").GetString() == "nettune-agent")
                    .Select(t => t.GetProperty("labels").GetProperty("node").GetString()).Order());
            }
            finally
            {
                var stop = await Tool.RunAsync("bash", [Script, "stop", dir]);
                Assert.True(stop.ExitCode == 0, stop.Output);
            }
            Assert.False(File.Exists(Path.Combine(dir, "prometheus.pid")));

            var uninstall = await Tool.RunAsync("bash", [Script, "uninstall", Cluster.KubeconfigPath, ns], timeout: TimeSpan.FromMinutes(2));
            Assert.True(uninstall.ExitCode == 0, uninstall.Output);
            Assert.Empty(await ClusterSupport.LabelledObjectsAsync(Cluster, "app.kubernetes.io/instance=nettune"));
        }
        finally
        {
            await Tool.RunAsync("bash", [Script, "stop", dir]);
            Directory.Delete(dir, recursive: true);
        }
    }
}
