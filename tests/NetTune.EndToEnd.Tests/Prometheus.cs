using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NetTune.Chart.Tests.Support;

namespace NetTune.EndToEnd.Tests;

/// <summary>A real Prometheus (Debian's, via hack/prometheus.sh) scraping given host:port targets once they answer.</summary>
public static class Prometheus
{
    /// <summary>Scrapes the targets until each has been scraped, then returns each one's `up` value, in order.</summary>
    public static async Task<double[]> ScrapeUpAsync(IReadOnlyList<string> targets, string work)
    {
        var promtool = await Tool.PromtoolAsync();
        var binary = Path.Combine(Path.GetDirectoryName(promtool)!, "prometheus");
        var port = FreePort();
        var config = Path.Combine(work, "prometheus.yml");
        File.WriteAllText(config, $"""
            global: {"{scrape_interval: 1s, scrape_timeout: 1s}"}
            scrape_configs:
            {string.Join('\n', targets.Select((t, i) => $"  - job_name: target{i}\n    static_configs: [{{targets: ['{t}']}}]"))}
            """);
        var check = await Tool.RunAsync(promtool, ["check", "config", config]);
        Assert.True(check.ExitCode == 0, check.Output);
        var psi = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(work, "data")}", $"--web.listen-address=127.0.0.1:{port}" })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var values = new double[targets.Count];
            await Eventually.TrueAsync(async () =>
            {
                for (var i = 0; i < targets.Count; i++)
                {
                    using var doc = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/api/v1/query?query=up{{job=\"target{i}\"}}"));
                    var result = doc.RootElement.GetProperty("data").GetProperty("result");
                    if (result.GetArrayLength() == 0) return false;
                    values[i] = double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
                }
                return values.All(v => v == 1);
            }, "Prometheus to scrape every target", TimeSpan.FromSeconds(60));
            return values;
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }
}
