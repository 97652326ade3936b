using System.Text.Json;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;

namespace NetTune.Operator;

/// <summary>Asks a data-plane pod where it runs. Null when the pod could not tell (not reachable, not answering yet).</summary>
public interface IDataPlaneProbe
{
    Task<DataPlanePlacement?> ReadAsync(V1Pod pod, CancellationToken ct);
}

/// <summary>
/// Reads the pod's /readyz over its admin port on the pod IP (the pods use host networking, so that is the node's
/// address): the data plane answers with the CPU and NUMA node of each worker, and its affinity when it reports one.
/// </summary>
public sealed class HttpDataPlaneProbe(HttpClient http) : IDataPlaneProbe
{
    public HttpDataPlaneProbe() : this(new HttpClient { Timeout = TimeSpan.FromSeconds(2) }) { }

    public async Task<DataPlanePlacement?> ReadAsync(V1Pod pod, CancellationToken ct)
    {
        if (pod.Status?.PodIP is not { Length: > 0 } ip) return null;
        var port = pod.Spec?.Containers?.FirstOrDefault()?.Ports?.FirstOrDefault(p => p.Name == DataPlanePodBuilder.MetricsPortName)?.ContainerPort;
        if (port is null) return null;
        var host = ip.Contains(':') ? $"[{ip}]" : ip;
        try
        {
            // /readyz answers 503 with the same body while the pod is not ready; the placement is in it either way.
            using var response = await http.GetAsync($"http://{host}:{port}/readyz", ct).ConfigureAwait(false);
            return Parse(await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// {"status":"ready","cpus":"2-3","workers":[{"worker":0,"cpu":2,"numaNode":0,"engine":"iouring"},...]}: "cpus" (the
    /// affinity) is optional; without it the workers' CPUs stand for it. Null for a body of another shape.
    /// </summary>
    public static DataPlanePlacement? Parse(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("workers", out var workers) || workers.ValueKind != JsonValueKind.Array)
                return null;
            var cpus = new SortedSet<int>();
            var numas = new HashSet<int>();
            var engines = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var w in workers.EnumerateArray())
            {
                if (w.TryGetProperty("cpu", out var cpu) && cpu.TryGetInt32(out var c) && c >= 0) cpus.Add(c);
                if (w.TryGetProperty("numaNode", out var numa) && numa.TryGetInt32(out var n)) numas.Add(n);
                if (w.TryGetProperty("engine", out var engine) && engine.ValueKind == JsonValueKind.String && engine.GetString() is { Length: > 0 and <= 32 } name) engines.Add(name);
            }
            var affinity = root.TryGetProperty("cpus", out var list) && list.ValueKind == JsonValueKind.String && CpuList.TryParse(list.GetString(), out var parsed)
                ? parsed : null;
            if (affinity is null && cpus.Count == 0) return null;
            return new DataPlanePlacement(affinity ?? cpus.ToList(), numas.Count == 1 ? numas.Single() : -1, affinity is not null,
                engines.Count == 0 ? null : string.Join(',', engines));
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
