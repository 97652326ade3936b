using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent;

/// <summary>
/// One apply (or revert) without Kubernetes: the spec comes from a JSON file, the report goes to stdout as JSON.
/// For tests that must run the agent inside a network namespace (ip netns exec), for the benchmark, and for humans.
/// </summary>
public static class OnceCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    public static int Run(string hostRoot, string journalDir, ChannelBackend backend, string? specPath, bool revert, bool planOnly, NetNamespaceMode netNamespace = NetNamespaceMode.Host)
    {
        var engine = EngineFactory.Create(hostRoot, journalDir, backend, out var fs, planOnly, netNamespace);
        var sw = Stopwatch.StartNew();
        RunReport report;
        if (revert)
        {
            report = engine.Revert();
        }
        else
        {
            if (specPath is null)
            {
                Console.Error.WriteLine("--spec is required unless --revert is given");
                return 2;
            }
            NodeStateSpec spec;
            try
            {
                spec = KubernetesJson.Deserialize<NodeStateSpec>(File.ReadAllText(specPath));
            }
            catch (Exception e) when (e is JsonException or IOException)
            {
                Console.Error.WriteLine($"cannot read the spec {specPath}: {e.Message}");
                return 2;
            }
            if (planOnly)
            {
                var (host, plan) = engine.PlanNow(spec);
                report = TuningEngine.Preview(host, plan);
            }
            else
            {
                report = engine.Apply(spec);
            }
        }
        var elapsed = sw.Elapsed;
        var output = new
        {
            kind = report.Kind.ToString(),
            message = report.Message,
            elapsedMs = elapsed.TotalMilliseconds,
            writes = fs.WriteCount,
            knobs = report.Knobs.Select(k => new { k.Knob, Result = k.Result.ToString(), k.Value, k.Message }),
            plannedChanges = report.Plan?.Changes.Select(c => new { c.Knob, c.Path, c.Current, c.Target }),
            topology = report.Host is null ? null : StatusBuilder.Topology(report.Host, report.Knobs),
        };
        Console.WriteLine(JsonSerializer.Serialize(output, Json));
        return report.Succeeded ? 0 : 1;
    }
}
