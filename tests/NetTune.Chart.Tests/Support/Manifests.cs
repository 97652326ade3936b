using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace NetTune.Chart.Tests.Support;

/// <summary>One object of `helm template` output: its JSON as rendered and its typed KubernetesClient model.</summary>
public sealed record Manifest(string ApiVersion, string Kind, string Name, string? Namespace, JsonObject Json, object Typed, string Source)
{
    public T As<T>() => (T)Typed;
}

public static class Manifests
{
    /// <summary>The kinds the chart may render, and the typed model each must parse into.</summary>
    public static readonly IReadOnlyDictionary<string, Type> TypeMap = new Dictionary<string, Type>
    {
        ["v1/Namespace"] = typeof(V1Namespace),
        ["v1/ServiceAccount"] = typeof(V1ServiceAccount),
        ["v1/ConfigMap"] = typeof(V1ConfigMap),
        ["v1/Service"] = typeof(V1Service),
        ["v1/Secret"] = typeof(V1Secret),
        ["batch/v1/Job"] = typeof(V1Job),
        ["admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration"] = typeof(V1ValidatingWebhookConfiguration),
        ["apps/v1/Deployment"] = typeof(V1Deployment),
        ["policy/v1/PodDisruptionBudget"] = typeof(V1PodDisruptionBudget),
        ["rbac.authorization.k8s.io/v1/ClusterRole"] = typeof(V1ClusterRole),
        ["rbac.authorization.k8s.io/v1/ClusterRoleBinding"] = typeof(V1ClusterRoleBinding),
        ["rbac.authorization.k8s.io/v1/Role"] = typeof(V1Role),
        ["rbac.authorization.k8s.io/v1/RoleBinding"] = typeof(V1RoleBinding),
        ["apiextensions.k8s.io/v1/CustomResourceDefinition"] = typeof(V1CustomResourceDefinition),
        ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(ServiceMonitor),
        ["monitoring.coreos.com/v1/PodMonitor"] = typeof(PodMonitor),
        ["monitoring.coreos.com/v1/PrometheusRule"] = typeof(PrometheusRule),
        ["cert-manager.io/v1/Certificate"] = typeof(Certificate),
        ["cert-manager.io/v1/Issuer"] = typeof(Issuer),
    };

    /// <summary>
    /// Parses every document, and checks that its typed model holds all of it: the model, serialised again, must equal
    /// the rendered JSON. A misspelt or misplaced field makes the two differ.
    /// </summary>
    public static List<Manifest> Parse(string yaml)
    {
        var list = new List<Manifest>();
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        foreach (var doc in stream.Documents)
        {
            if (doc.RootNode is YamlScalarNode { Value: null or "" }) continue;
            var json = ToJson(doc.RootNode) as JsonObject ?? throw new FormatException("a rendered document is not a mapping");
            var apiVersion = (string?)json["apiVersion"] ?? throw new FormatException("a document without apiVersion");
            var kind = (string?)json["kind"] ?? throw new FormatException("a document without kind");
            var name = (string?)json["metadata"]?["name"] ?? throw new FormatException($"a {kind} without a name");
            var source = doc.RootNode.Start.ToString();
            if (!TypeMap.TryGetValue($"{apiVersion}/{kind}", out var type))
                throw new FormatException($"{apiVersion} {kind} {name} is no kind the chart tests know");
            var typed = DeserializeAs(json, type);
            var back = JsonNode.Parse(KubernetesJson.Serialize(typed))!;
            var diff = Differences(json, back, "");
            if (diff.Count > 0)
                throw new FormatException($"{kind} {name} does not survive {type.Name}: {string.Join("; ", diff.Take(10))}");
            list.Add(new Manifest(apiVersion, kind, name, (string?)json["metadata"]?["namespace"], json, typed, source));
        }
        return list;
    }

    private static object DeserializeAs(JsonObject json, Type type)
    {
        var method = typeof(KubernetesJson).GetMethods().Single(m => m.Name == nameof(KubernetesJson.Deserialize)
            && m.GetParameters() is [{ ParameterType: var p }, _] && p == typeof(string));
        try
        {
            return method.MakeGenericMethod(type).Invoke(null, [json.ToJsonString(), null])!;
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is JsonException or FormatException or InvalidOperationException)
        {
            throw new FormatException($"{json["kind"]} {json["metadata"]?["name"]} does not parse as {type.Name}: {e.InnerException.Message}", e.InnerException);
        }
    }

    /// <summary>YAML 1.2 core schema: plain scalars may be null, booleans or numbers; quoted ones are strings.</summary>
    public static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(ToJson).ToArray()),
        YamlScalarNode s when s.Style is ScalarStyle.Plain => Plain(s.Value ?? ""),
        YamlScalarNode s => JsonValue.Create(s.Value ?? ""),
        _ => throw new FormatException($"unsupported YAML node {node.NodeType}"),
    };

    private static JsonNode? Plain(string v)
    {
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (System.Text.RegularExpressions.Regex.IsMatch(v, "^[-+]?[0-9]+$") && long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
            return JsonValue.Create(l);
        if (System.Text.RegularExpressions.Regex.IsMatch(v, @"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"))
            return JsonValue.Create(double.Parse(v, CultureInfo.InvariantCulture));
        return JsonValue.Create(v);
    }

    /// <summary>Paths where two JSON trees differ; null members and empty objects count as absent.</summary>
    public static List<string> Differences(JsonNode? a, JsonNode? b, string path)
    {
        var diffs = new List<string>();
        if (IsAbsent(a) && IsAbsent(b)) return diffs;
        switch (a, b)
        {
            case (JsonObject oa, JsonObject ob):
                foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                    diffs.AddRange(Differences(oa[key], ob[key], $"{path}.{key}"));
                break;
            case (JsonArray xa, JsonArray xb):
                if (xa.Count != xb.Count) diffs.Add($"{path}: {xa.Count} items became {xb.Count}");
                else for (var i = 0; i < xa.Count; i++) diffs.AddRange(Differences(xa[i], xb[i], $"{path}[{i}]"));
                break;
            case (JsonValue va, JsonValue vb):
                if (!SameValue(va, vb)) diffs.Add($"{path}: {va.ToJsonString()} became {vb.ToJsonString()}");
                break;
            default:
                diffs.Add($"{path}: {a?.ToJsonString() ?? "absent"} became {b?.ToJsonString() ?? "absent"}");
                break;
        }
        return diffs;
    }

    private static bool IsAbsent(JsonNode? n) => n is null || n is JsonObject { Count: 0 };

    private static bool SameValue(JsonValue a, JsonValue b)
    {
        if (a.GetValueKind() is JsonValueKind.Number && b.GetValueKind() is JsonValueKind.Number)
            return double.Parse(a.ToJsonString(), CultureInfo.InvariantCulture) == double.Parse(b.ToJsonString(), CultureInfo.InvariantCulture);
        return JsonNode.DeepEquals(a, b);
    }
}
