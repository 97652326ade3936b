using System.Text.Json;
using System.Text.RegularExpressions;
using k8s.Models;
using NetTune.Chart.Tests.Support;
using YamlDotNet.Serialization;

namespace NetTune.Chart.Tests;

/// <summary>The alerts pass promtool and its unit tests; the alerts and the dashboard use metrics the code exports.</summary>
public sealed partial class MonitoringTests
{
    /// <summary>Metrics the alerts or the dashboard need that no component exports yet (reported to the lead).</summary>
    private static readonly string[] PendingMetrics = [];

    private static string RuleTests => Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "rules", "alerts.test.yaml");

    /// <summary>The rule groups of the rendered PrometheusRule, as a Prometheus rules file.</summary>
    private static async Task<(string Folder, List<Rule> Rules)> RulesFileAsync(params string[] extra)
    {
        var objects = await TheChart.RenderAsync("3", ["--set", "prometheusRule.enabled=true", .. extra]);
        var rule = objects.Single<PrometheusRule>();
        var groups = objects.Single(m => m.Kind == "PrometheusRule").Json["spec"]!["groups"]!;
        var folder = Tool.TempDir("nettune-rules");
        // JSON is YAML: promtool reads it as a rules file.
        File.WriteAllText(Path.Combine(folder, "rules.yaml"), new System.Text.Json.Nodes.JsonObject { ["groups"] = groups.DeepClone() }.ToJsonString());
        File.Copy(RuleTests, Path.Combine(folder, "alerts.test.yaml"));
        return (folder, rule.Spec.Groups.SelectMany(g => g.Rules).ToList());
    }

    [Fact]
    public async Task PromtoolAcceptsTheRules()
    {
        var promtool = await Tool.PromtoolAsync();
        foreach (var values in new[] { Array.Empty<string>(), ["-f", TheChart.NonDefaultValues] })
        {
            var (folder, rules) = await RulesFileAsync(values);
            Assert.Equal(5, rules.Count);
            var check = await Tool.RunAsync(promtool, ["check", "rules", "rules.yaml"], workingDirectory: folder);
            Assert.True(check.ExitCode == 0, check.Output);
            Assert.Contains("SUCCESS: 5 rules found", check.Output);
        }
    }

    [Fact]
    public async Task EveryAlertFiresAndStaysQuietInPromtoolUnitTests()
    {
        var (folder, rules) = await RulesFileAsync();
        var tests = File.ReadAllText(RuleTests);
        // Each alert has a case where it fires and one where it must not.
        foreach (var alert in rules.Select(r => r.Alert!))
        {
            Assert.Matches($"alertname: {alert}\\s+exp_alerts: \\[\\]", tests);
            Assert.Matches($"alertname: {alert}\\s+exp_alerts:\\s+- exp_labels:", tests);
        }
        var promtool = await Tool.PromtoolAsync();
        var run = await Tool.RunAsync(promtool, ["test", "rules", "alerts.test.yaml"], workingDirectory: folder);
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("SUCCESS", run.Output);
    }

    [Fact]
    public async Task TheUnitTestsNoticeChangedThresholds()
    {
        // The same cases against rules with other thresholds must fail: they pin what the defaults mean.
        var (folder, _) = await RulesFileAsync("--set-json", "prometheusRule.thresholds.dataPlaneErrorRatio=0.5",
            "--set", "prometheusRule.thresholds.degradedFor=20m", "--set", "prometheusRule.thresholds.driftRepairsPerHour=100");
        var promtool = await Tool.PromtoolAsync();
        var run = await Tool.RunAsync(promtool, ["test", "rules", "alerts.test.yaml"], workingDirectory: folder);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("NetTuneDataPlaneErrorRatioHigh", run.Output);
        Assert.Contains("NetTuneNodeTuningDegraded", run.Output);
        Assert.Contains("NetTuneDriftRepairsRising", run.Output);
    }

    [Fact]
    public async Task TheDashboardIsGrafanaJsonForTheSidecar()
    {
        var objects = await TheChart.RenderAsync("3");
        var map = objects.Single<V1ConfigMap>(c => c.Metadata.Labels?.ContainsKey("grafana_dashboard") == true);
        Assert.Equal("1", map.Metadata.Labels["grafana_dashboard"]);
        var (file, json) = Assert.Single(map.Data);
        Assert.EndsWith(".json", file);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("nettune-overview", doc.RootElement.GetProperty("uid").GetString());
        var panels = doc.RootElement.GetProperty("panels").EnumerateArray().ToList();
        var graphs = panels.Where(p => p.GetProperty("type").GetString() != "row").ToList();
        Assert.True(graphs.Count >= 12, $"{graphs.Count} panels");
        Assert.Equal(panels.Count, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        Assert.All(graphs, p => Assert.NotEmpty(p.GetProperty("targets").EnumerateArray()));
        Assert.All(graphs.SelectMany(p => p.GetProperty("targets").EnumerateArray()),
            t => Assert.Equal("${datasource}", t.GetProperty("datasource").GetProperty("uid").GetString()));
    }

    [Fact]
    public async Task AlertsAndDashboardUseOnlyMetricsTheComponentsExport()
    {
        var exported = ExportedMetrics();
        // The three components each export some.
        Assert.Contains("nettune_operator_rollout_progress_ratio", exported);
        Assert.Contains("nettune_agent_drift_repaired_total", exported);
        Assert.Contains("nettune_dataplane_requests_total", exported);

        var objects = await TheChart.RenderAsync("3", "--set", "prometheusRule.enabled=true");
        var exprs = objects.Single<PrometheusRule>().Spec.Groups.SelectMany(g => g.Rules).Select(r => r.Expr).ToList();
        using var dashboard = JsonDocument.Parse(Assert.Single(objects.Single<V1ConfigMap>(c => c.Metadata.Labels?.ContainsKey("grafana_dashboard") == true).Data).Value);
        exprs.AddRange(dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .Where(p => p.TryGetProperty("targets", out _))
            .SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!));

        var used = exprs.SelectMany(e => MetricName().Matches(e).Select(m => BaseName(m.Value, exported))).ToHashSet();
        var unknown = used.Where(m => !exported.Contains(m) && !PendingMetrics.Contains(m)).Order().ToList();
        Assert.True(unknown.Count == 0, $"alerts or dashboard use metrics no component exports: {string.Join(", ", unknown)}");
        var landed = PendingMetrics.Where(exported.Contains).ToList();
        Assert.True(landed.Count == 0, $"now exported, take them off PendingMetrics: {string.Join(", ", landed)}");
        Assert.All(PendingMetrics, m => Assert.Contains(m, used));
    }

    /// <summary>Metric names defined as string literals in the operator, agent and data-plane sources.</summary>
    private static HashSet<string> ExportedMetrics()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var component in new[] { "operator", "agent", "dataplane" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Tool.RepoRoot, component), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains("/obj/") || file.Contains("/bin/")) continue;
                foreach (Match m in QuotedMetricName().Matches(File.ReadAllText(file))) names.Add(m.Groups[1].Value);
            }
        }
        return names;
    }

    /// <summary>A histogram's series are name_bucket, name_sum and name_count.</summary>
    private static string BaseName(string series, HashSet<string> exported)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
            if (series.EndsWith(suffix, StringComparison.Ordinal) && !exported.Contains(series)) return series[..^suffix.Length];
        return series;
    }

    [GeneratedRegex("nettune_[a-z0-9_]+")]
    private static partial Regex MetricName();

    [GeneratedRegex("\"(nettune_[a-z0-9_]+)\"")]
    private static partial Regex QuotedMetricName();
}
