using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

[Collection("cluster")]
public sealed class ExecutableTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task TheExecutableServesHealthAndMetricsReconcilesAndStopsOnSigterm()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(2);
        bed.StartAgents();
        var port = FreePort();
        var dll = Path.Combine(AppContext.BaseDirectory, "nettune-operator.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                dll, "--kubeconfig", fx.Cluster.KubeconfigPath, "--namespace", bed.Namespace, "--metrics-port", port.ToString(),
                "--leader-elect", "--lease-name", "exe-" + bed.Id, "--identity", "exe-" + bed.Id,
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var logs = new List<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (logs) logs.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (logs) logs.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            await TestBed.EventuallyAsync(async () =>
            {
                try { return (await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK; }
                catch (HttpRequestException) { return false; }
            }, "/readyz answers 200");
            Assert.Equal("ok", await http.GetStringAsync("/healthz"));

            var name = (await bed.CreateTuningAsync("exe", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
            await Specs.ConvergedAsync(bed, name, 1, 2);

            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("nettune_operator_reconciles_total{kind=\"NetworkTuning\",result=\"success\"}", metrics);
            Assert.Contains("nettune_operator_reconcile_duration_seconds_bucket", metrics);
            Assert.Contains($"nettune_operator_nodes{{tuning=\"{name}\",phase=\"applied\"}} 2", metrics);
            Assert.Contains("nettune_operator_leader 1", metrics);
            Assert.Contains("nettune_operator_api_requests_total{verb=\"post\"}", metrics);
            Assert.Contains("nettune_operator_workqueue_latency_seconds_count", metrics);

            // JSON logs: every line the operator writes parses as a JSON object.
            lock (logs) Assert.All(logs.Where(l => l.Length > 0), l => System.Text.Json.JsonDocument.Parse(l).Dispose());

            using (Process.Start("kill", ["-TERM", process.Id.ToString()])) { }
            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(exit.Token);
            Assert.Equal(0, process.ExitCode);
            lock (logs) Assert.Contains(logs, l => l.Contains("shutting down"));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
