using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
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
                spec = JsonSerializer.Deserialize(File.ReadAllText(specPath), AgentJson.Default.NodeStateSpec)
                       ?? throw new JsonException("the spec is null");
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
        var output = new OnceReport(
            report.Kind.ToString(),
            report.Message,
            elapsed.TotalMilliseconds,
            fs.WriteCount,
            [.. report.Knobs.Select(k => new OnceKnob(k.Knob, k.Result.ToString(), k.Value, k.Message))],
            report.Plan?.Changes.Select(c => new OnceChange(c.Knob, c.Path, c.Current, c.Target)).ToList(),
            report.Host is null ? null : StatusBuilder.Topology(report.Host, report.Knobs));
        Console.WriteLine(JsonSerializer.Serialize(output, OnceJson.Default.OnceReport));
        return report.Succeeded ? 0 : 1;
    }
}

internal sealed record OnceReport(string Kind, string? Message, double ElapsedMs, long Writes, List<OnceKnob> Knobs, List<OnceChange>? PlannedChanges, NodeTopology? Topology);

internal sealed record OnceKnob(string Knob, string Result, string? Value, string? Message);

internal sealed record OnceChange(string Knob, string Path, string? Current, string Target);

/// <summary>The once command's report: indented for people, camelCase as the NodeState's status.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(OnceReport))]
internal sealed partial class OnceJson : JsonSerializerContext;
