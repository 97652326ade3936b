using System.Collections;
using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s.Models;
using NetTune.Api.Schema;

namespace NetTune.CrdGen;

/// <summary>Turns a C# API type and the attributes of its properties into a structural OpenAPI v3 schema.</summary>
public static class SchemaBuilder
{
    private const string ApiVersionDescription =
        "The versioned schema of this representation of an object, such as nettune.io/v1alpha1.";
    private const string KindDescription = "The REST resource this object represents, in CamelCase.";

    /// <summary>The openAPIV3Schema of a top-level resource: apiVersion, kind, metadata, spec and status.</summary>
    public static SchemaNode ForResource(Type entity)
    {
        var root = ForObject(entity, Describe(entity));
        var properties = (SchemaNode)root["properties"];
        // The apiserver owns metadata: it refuses a CRD whose metadata schema says more than its type, even a description.
        properties["metadata"] = new SchemaNode { ["type"] = "object" };
        properties["apiVersion"] = new SchemaNode { ["type"] = "string", ["description"] = ApiVersionDescription };
        properties["kind"] = new SchemaNode { ["type"] = "string", ["description"] = KindDescription };
        return root;
    }

    private static SchemaNode ForObject(Type type, string? description)
    {
        var node = new SchemaNode { ["type"] = "object" };
        if (description is not null) node["description"] = description;
        var properties = new SchemaNode();
        var required = new List<string>();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is not null || property.GetIndexParameters().Length > 0) continue;
            var name = JsonName(property);
            if (name is "apiVersion" or "kind" or "metadata") continue; // described by ForResource
            properties[name] = ForProperty(property);
            if (property.GetCustomAttribute<RequiredAttribute>() is not null) required.Add(name);
        }
        node["properties"] = properties;
        if (required.Count > 0) node["required"] = required.Order(StringComparer.Ordinal).Cast<object>().ToList();
        AddRules(node, type.GetCustomAttributes<CelRuleAttribute>());
        return node;
    }

    private static SchemaNode ForProperty(PropertyInfo property)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var description = property.GetCustomAttribute<DescriptionAttribute>()?.Description ?? Describe(type);
        var node = ForType(type, description, property.Name);

        if (property.GetCustomAttribute<IntOrStringAttribute>() is not null)
        {
            if (type != typeof(IntOrString)) throw new NotSupportedException($"{property.DeclaringType?.Name}.{property.Name}: [IntOrString] needs an IntOrString property");
            node.Remove("type");
            node["x-kubernetes-int-or-string"] = true;
        }

        // String constraints on a list of strings apply to each item.
        var stringTarget = node.TryGetValue("items", out var items) ? (SchemaNode)items : node;
        if (property.GetCustomAttribute<PatternAttribute>() is { } pattern) stringTarget["pattern"] = pattern.Pattern;
        if (property.GetCustomAttribute<LengthAttribute>() is { } length)
        {
            stringTarget["minLength"] = length.Minimum;
            stringTarget["maxLength"] = length.Maximum;
        }
        if (property.GetCustomAttribute<RangeAttribute>() is { } range)
        {
            node["minimum"] = range.Minimum;
            node["maximum"] = range.Maximum;
        }
        if (property.GetCustomAttribute<ItemsAttribute>() is { } count)
        {
            var isMap = (string)node["type"] == "object";
            node[isMap ? "minProperties" : "minItems"] = count.Minimum;
            node[isMap ? "maxProperties" : "maxItems"] = count.Maximum;
        }
        if (property.GetCustomAttribute<DefaultAttribute>() is { } fallback)
            node["default"] = fallback.Value is Enum e ? e.ToString() : fallback.Value;
        AddRules(node, property.GetCustomAttributes<CelRuleAttribute>());
        return node;
    }

    private static SchemaNode ForType(Type type, string? description, string context)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(V1LabelSelector)) return KnownSchemas.LabelSelector(description ?? "A label selector.");
        if (type == typeof(IntOrString)) return Described(new SchemaNode { ["type"] = "string" }, description);
        if (type == typeof(string)) return Described(new SchemaNode { ["type"] = "string" }, description);
        if (type == typeof(bool)) return Described(new SchemaNode { ["type"] = "boolean" }, description);
        if (type == typeof(int)) return Described(new SchemaNode { ["type"] = "integer", ["format"] = "int32" }, description);
        if (type == typeof(long)) return Described(new SchemaNode { ["type"] = "integer", ["format"] = "int64" }, description);
        if (type == typeof(DateTime) || type == typeof(DateTimeOffset))
            return Described(new SchemaNode { ["type"] = "string", ["format"] = "date-time" }, description);
        if (type.IsEnum)
            return Described(new SchemaNode { ["type"] = "string", ["enum"] = EnumNames(type).Cast<object>().ToList() }, description);

        if (DictionaryValueType(type) is { } valueType)
            return Described(new SchemaNode { ["type"] = "object", ["additionalProperties"] = ForType(valueType, null, context) }, description);

        if (ListItemType(type) is { } itemType)
        {
            var list = new SchemaNode { ["type"] = "array" };
            if (itemType == typeof(V1Condition))
            {
                // Conditions are keyed by type, so server-side apply merges them one by one.
                list["items"] = KnownSchemas.Condition();
                list["x-kubernetes-list-type"] = "map";
                list["x-kubernetes-list-map-keys"] = new List<object> { "type" };
            }
            else
            {
                list["items"] = ForType(itemType, Describe(itemType), context);
            }
            return Described(list, description);
        }

        if (type.Namespace?.StartsWith("k8s", StringComparison.Ordinal) == true)
            throw new NotSupportedException($"{context}: no schema for Kubernetes type {type.Name}; add one to KnownSchemas");
        if (type.IsClass) return ForObject(type, description);
        throw new NotSupportedException($"{context}: no schema for type {type.FullName}");
    }

    private static SchemaNode Described(SchemaNode node, string? description)
    {
        if (description is not null) node["description"] = description;
        return node;
    }

    private static void AddRules(SchemaNode node, IEnumerable<CelRuleAttribute> rules)
    {
        var entries = rules.Select(r => (object)new SchemaNode { ["rule"] = r.Rule, ["message"] = r.Message }).ToList();
        if (entries.Count == 0) return;
        if (node.TryGetValue("x-kubernetes-validations", out var existing)) entries.InsertRange(0, (List<object>)existing);
        node["x-kubernetes-validations"] = entries;
    }

    private static string? Describe(Type type) => type.GetCustomAttribute<DescriptionAttribute>()?.Description;

    public static string JsonName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static IEnumerable<string> EnumNames(Type enumType) =>
        enumType.GetFields(BindingFlags.Public | BindingFlags.Static)
            .OrderBy(f => Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture))
            .Select(f => f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? f.Name);

    private static Type? DictionaryValueType(Type type)
    {
        var dictionary = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        if (dictionary is null) return null;
        var args = dictionary.GetGenericArguments();
        if (args[0] != typeof(string)) throw new NotSupportedException($"{type}: map keys must be strings");
        return args[1];
    }

    private static Type? ListItemType(Type type)
    {
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type)) return null;
        if (type.IsArray) return type.GetElementType();
        var enumerable = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IEnumerable<>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable?.GetGenericArguments()[0];
    }
}
