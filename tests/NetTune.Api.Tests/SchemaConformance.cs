using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using static NetTune.Api.Tests.CrdDocuments;

namespace NetTune.Api.Tests;

/// <summary>
/// Checks a JSON object against a generated CRD schema the way the apiserver would: unknown fields (which it would
/// prune), wrong types, enums, patterns, bounds and required fields. CEL rules are left to NetworkTuningValidator.
/// </summary>
internal static class SchemaConformance
{
    public static List<string> Problems(JsonElement value, Dictionary<object, object> schema)
    {
        var problems = new List<string>();
        Check(value, schema, "", problems);
        return problems;
    }

    private static void Check(JsonElement value, Dictionary<object, object> schema, string path, List<string> problems)
    {
        var where = path.Length == 0 ? "(root)" : path;
        if (schema.ContainsKey("x-kubernetes-int-or-string"))
        {
            if (value.ValueKind is not (JsonValueKind.Number or JsonValueKind.String)) problems.Add($"{where}: not an int or string");
            else if (value.ValueKind == JsonValueKind.String) CheckString(value.GetString()!, schema, where, problems);
            return;
        }
        switch ((string)schema["type"])
        {
            case "object" when value.ValueKind != JsonValueKind.Object:
                problems.Add($"{where}: expected an object, got {value.ValueKind}");
                return;
            case "object":
                var names = value.EnumerateObject().Select(p => p.Name).ToHashSet();
                if (schema.TryGetValue("required", out var required))
                    foreach (var name in ((List<object>)required).Cast<string>().Where(n => !names.Contains(n)))
                        problems.Add($"{where}: required {name} is missing");
                CheckCount(names.Count, schema, "Properties", where, problems);
                foreach (var property in value.EnumerateObject())
                {
                    var childPath = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                    if (schema.TryGetValue("properties", out var properties) && Map(properties).TryGetValue(property.Name, out var child))
                        Check(property.Value, Map(child), childPath, problems);
                    else if (schema.TryGetValue("additionalProperties", out var values))
                        Check(property.Value, Map(values), childPath, problems);
                    else if (path.Length == 0 || !path.EndsWith("metadata", StringComparison.Ordinal))
                        problems.Add($"{childPath}: unknown field (the apiserver would drop it)");
                }
                return;
            case "array" when value.ValueKind != JsonValueKind.Array:
                problems.Add($"{where}: expected an array, got {value.ValueKind}");
                return;
            case "array":
                CheckCount(value.GetArrayLength(), schema, "Items", where, problems);
                var i = 0;
                foreach (var item in value.EnumerateArray()) Check(item, Map(schema["items"]), $"{path}[{i++}]", problems);
                return;
            case "string" when value.ValueKind != JsonValueKind.String:
                problems.Add($"{where}: expected a string, got {value.ValueKind}");
                return;
            case "string":
                CheckString(value.GetString()!, schema, where, problems);
                return;
            case "integer" when value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out _):
                problems.Add($"{where}: expected an integer, got {value}");
                return;
            case "integer":
                var number = value.GetInt64();
                if (schema.TryGetValue("minimum", out var min) && number < long.Parse((string)min, CultureInfo.InvariantCulture)) problems.Add($"{where}: {number} < {min}");
                if (schema.TryGetValue("maximum", out var max) && number > long.Parse((string)max, CultureInfo.InvariantCulture)) problems.Add($"{where}: {number} > {max}");
                return;
            case "boolean" when value.ValueKind is not (JsonValueKind.True or JsonValueKind.False):
                problems.Add($"{where}: expected a boolean, got {value.ValueKind}");
                return;
        }
    }

    private static void CheckString(string text, Dictionary<object, object> schema, string where, List<string> problems)
    {
        if (schema.TryGetValue("enum", out var values) && !((List<object>)values).Contains(text)) problems.Add($"{where}: '{text}' is not one of the enum");
        if (schema.TryGetValue("pattern", out var pattern) && !Regex.IsMatch(text, (string)pattern)) problems.Add($"{where}: '{text}' does not match {pattern}");
        if (schema.TryGetValue("minLength", out var min) && text.Length < int.Parse((string)min, CultureInfo.InvariantCulture)) problems.Add($"{where}: shorter than {min}");
        if (schema.TryGetValue("maxLength", out var max) && text.Length > int.Parse((string)max, CultureInfo.InvariantCulture)) problems.Add($"{where}: longer than {max}");
    }

    private static void CheckCount(int count, Dictionary<object, object> schema, string what, string where, List<string> problems)
    {
        if (schema.TryGetValue("min" + what, out var min) && count < int.Parse((string)min, CultureInfo.InvariantCulture)) problems.Add($"{where}: fewer than {min}");
        if (schema.TryGetValue("max" + what, out var max) && count > int.Parse((string)max, CultureInfo.InvariantCulture)) problems.Add($"{where}: more than {max}");
    }
}
