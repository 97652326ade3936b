using NetTune.CrdGen;
using YamlDotNet.Serialization;

namespace NetTune.Api.Tests;

/// <summary>The CRDs as the generator writes them, parsed back into plain maps and lists.</summary>
internal static class CrdDocuments
{
    public static IReadOnlyDictionary<string, string> Generated { get; } = CrdGenerator.Generate();

    public static Dictionary<object, object> Parse(string yaml) =>
        (Dictionary<object, object>)new DeserializerBuilder().Build().Deserialize<object>(yaml)!;

    public static Dictionary<object, object> Crd(string plural) => Parse(Generated[$"nettune.io_{plural}.yaml"]);

    public static Dictionary<object, object> Version(Dictionary<object, object> crd) =>
        Map(((List<object>)Map(crd["spec"])["versions"])[0]);

    public static Dictionary<object, object> OpenApiSchema(string plural) =>
        Map(Map(Version(Crd(plural))["schema"])["openAPIV3Schema"]);

    public static Dictionary<object, object> Map(object node) => (Dictionary<object, object>)node;

    /// <summary>A schema node by a dotted path of property names, such as spec.nic.channels; "[]" steps into items.</summary>
    public static Dictionary<object, object> At(Dictionary<object, object> schema, string path)
    {
        var node = schema;
        foreach (var step in path.Split('.'))
            node = step == "[]" ? Map(node["items"]) : Map(Map(node["properties"])[step]);
        return node;
    }

    /// <summary>Every schema node with its path: the root, each property, each items and additionalProperties.</summary>
    public static IEnumerable<(string Path, Dictionary<object, object> Node)> Walk(Dictionary<object, object> node, string path = "")
    {
        yield return (path, node);
        if (node.TryGetValue("properties", out var properties))
            foreach (var (name, child) in Map(properties))
                foreach (var inner in Walk(Map(child), path.Length == 0 ? (string)name : $"{path}.{name}"))
                    yield return inner;
        if (node.TryGetValue("items", out var items))
            foreach (var inner in Walk(Map(items), path + "[]"))
                yield return inner;
        if (node.TryGetValue("additionalProperties", out var values) && values is Dictionary<object, object> valueSchema)
            foreach (var inner in Walk(valueSchema, path + "{}"))
                yield return inner;
    }

    public static readonly string[] Plurals = ["networktunings", "networktuningnodestates"];
}
