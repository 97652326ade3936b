using System.Text.Json;
using k8s;
using k8s.Models;

namespace NetTune.Operator.Core.Builders;

/// <summary>
/// Reads the agent DaemonSet settings the operator takes as flags (JSON, as the chart renders them with toJson) and
/// says what is wrong with a bad one, so the operator refuses to start instead of writing a DaemonSet the API server
/// rejects on every reconcile.
/// </summary>
public static class AgentSettingsParser
{
    public static readonly IReadOnlyList<string> LogLevels = ["Trace", "Debug", "Information", "Warning", "Error", "Critical"];

    private static readonly HashSet<string> TolerationOperators = ["Exists", "Equal"];
    private static readonly HashSet<string> TolerationEffects = ["", "NoSchedule", "PreferNoSchedule", "NoExecute"];

    /// <summary>One of <see cref="LogLevels"/>, any case; gives the canonical spelling.</summary>
    public static bool TryParseLogLevel(string text, out string level, out string error)
    {
        level = LogLevels.FirstOrDefault(l => string.Equals(l, text.Trim(), StringComparison.OrdinalIgnoreCase)) ?? "";
        error = level.Length > 0 ? "" : $"'{text}' is not a log level; use one of {string.Join(", ", LogLevels)}";
        return level.Length > 0;
    }

    /// <summary>
    /// An absolute, normalised host folder other than / (mounted below the agent's /host: "/" would hide its /host/sys
    /// and /host/proc, and ".." would climb out of it).
    /// </summary>
    public static bool IsHostDirectory(string path) =>
        path.Length is > 1 and <= 255 && path[0] == '/' && !path.EndsWith('/')
        && path.Split('/').Skip(1).All(part => part is { Length: > 0 } and not ("." or "..") && !part.Any(c => char.IsControl(c) || c == ':' || c == ','));

    /// <summary>{"requests": {"cpu": "20m", ...}, "limits": {...}}.</summary>
    public static bool TryParseResources(string json, out V1ResourceRequirements resources, out string error)
    {
        resources = new V1ResourceRequirements();
        if (!TryParseObject(json, out var root, out error)) return false;
        var requests = new Dictionary<string, ResourceQuantity>();
        var limits = new Dictionary<string, ResourceQuantity>();
        foreach (var part in root.EnumerateObject())
        {
            var target = part.Name switch { "requests" => requests, "limits" => limits, _ => null };
            if (target is null || part.Value.ValueKind != JsonValueKind.Object)
                return Fail($"resources: '{part.Name}' must be an object named requests or limits", out error);
            foreach (var item in part.Value.EnumerateObject())
            {
                var text = item.Value.ValueKind switch
                {
                    JsonValueKind.String => item.Value.GetString()!,
                    JsonValueKind.Number => item.Value.GetRawText(),
                    _ => null,
                };
                if (text is null || !TryQuantity(text, out var quantity))
                    return Fail($"resources: {part.Name}.{item.Name} '{item.Value.GetRawText()}' is not a quantity such as 100m or 64Mi", out error);
                target[item.Name] = quantity;
            }
        }
        foreach (var (name, limit) in limits)
        {
            if (requests.TryGetValue(name, out var request) && request.ToDecimal() > limit.ToDecimal())
                return Fail($"resources: the {name} request {request} is above its limit {limit}", out error);
        }
        resources = new V1ResourceRequirements { Requests = requests.Count == 0 ? null : requests, Limits = limits.Count == 0 ? null : limits };
        return true;
    }

    /// <summary>A list of tolerations: [{"key": ..., "operator": "Exists"|"Equal", "value": ..., "effect": ...}].</summary>
    public static bool TryParseTolerations(string json, out IList<V1Toleration> tolerations, out string error)
    {
        tolerations = [];
        try
        {
            tolerations = KubernetesJson.Deserialize<List<V1Toleration>>(json) ?? [];
        }
        catch (JsonException e)
        {
            return Fail($"tolerations: not a JSON list of tolerations: {e.Message}", out error);
        }
        foreach (var t in tolerations)
        {
            var op = t.OperatorProperty ?? "Equal";
            if (!TolerationOperators.Contains(op)) return Fail($"tolerations: operator '{op}' is neither Exists nor Equal", out error);
            if (!TolerationEffects.Contains(t.Effect ?? "")) return Fail($"tolerations: effect '{t.Effect}' is not NoSchedule, PreferNoSchedule or NoExecute", out error);
            if (op == "Exists" && !string.IsNullOrEmpty(t.Value)) return Fail($"tolerations: key '{t.Key}' has operator Exists and a value", out error);
            if (op == "Equal" && string.IsNullOrEmpty(t.Key)) return Fail("tolerations: operator Equal needs a key", out error);
        }
        error = "";
        return true;
    }

    /// <summary>{"label": "value", ...}; the agents run only on nodes with all of them (and a tuning selects).</summary>
    public static bool TryParseNodeSelector(string json, out IDictionary<string, string> selector, out string error)
    {
        selector = new Dictionary<string, string>();
        if (!TryParseObject(json, out var root, out error)) return false;
        foreach (var label in root.EnumerateObject())
        {
            if (label.Value.ValueKind != JsonValueKind.String || label.Name.Length == 0)
                return Fail($"node selector: '{label.Name}' must map to a string", out error);
            selector[label.Name] = label.Value.GetString()!;
        }
        return true;
    }

    private static bool TryParseObject(string json, out JsonElement root, out string error)
    {
        root = default;
        try
        {
            using var doc = JsonDocument.Parse(json);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            return Fail($"not JSON: {e.Message}", out error);
        }
        if (root.ValueKind != JsonValueKind.Object) return Fail($"'{json}' is not a JSON object", out error);
        error = "";
        return true;
    }

    private static bool TryQuantity(string text, out ResourceQuantity quantity)
    {
        quantity = null!;
        try
        {
            quantity = new ResourceQuantity(text);
            _ = quantity.ToDecimal();
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            return false;
        }
    }

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
