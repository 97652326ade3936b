namespace NetTune.Api.Schema;

// Attributes the CRD generator (tools/NetTune.CrdGen) reads to write the OpenAPI v3 schema of each field.
// Descriptions come from System.ComponentModel.DescriptionAttribute so `kubectl explain` has text for every field.

/// <summary>The field must be present (OpenAPI `required` on the parent object).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RequiredAttribute : Attribute;

/// <summary>Inclusive numeric bounds (OpenAPI `minimum`/`maximum`).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RangeAttribute(long minimum, long maximum) : Attribute
{
    public long Minimum { get; } = minimum;
    public long Maximum { get; } = maximum;
}

/// <summary>A regular expression a string (or each string of a list) must match (OpenAPI `pattern`).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class PatternAttribute(string pattern) : Attribute
{
    public string Pattern { get; } = pattern;
}

/// <summary>String length bounds (OpenAPI `minLength`/`maxLength`).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class LengthAttribute(int minimum, int maximum) : Attribute
{
    public int Minimum { get; } = minimum;
    public int Maximum { get; } = maximum;
}

/// <summary>List or map size bounds (OpenAPI `minItems`/`maxItems` or `minProperties`/`maxProperties`).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ItemsAttribute(int minimum, int maximum) : Attribute
{
    public int Minimum { get; } = minimum;
    public int Maximum { get; } = maximum;
}

/// <summary>The value the API server fills in when the field is absent (OpenAPI `default`).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DefaultAttribute(object value) : Attribute
{
    public object Value { get; } = value;
}

/// <summary>The field holds either an integer or a string such as "40%" (`x-kubernetes-int-or-string`).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class IntOrStringAttribute : Attribute;

/// <summary>
/// A cross-field rule (`x-kubernetes-validations`). Servers from 1.25 enforce the CEL expression; older servers ignore
/// it, so every rule has an <see cref="Id"/> that names its C# twin in <c>NetworkTuningValidator</c>, and a test checks
/// that each rule has one.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property, AllowMultiple = true)]
public sealed class CelRuleAttribute(string id, string rule, string message) : Attribute
{
    public string Id { get; } = id;
    public string Rule { get; } = rule;
    public string Message { get; } = message;
}

/// <summary>A column for `kubectl get` (`additionalPrinterColumns`).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class PrinterColumnAttribute(string name, string type, string jsonPath) : Attribute
{
    public string Name { get; } = name;
    public string Type { get; } = type;
    public string JsonPath { get; } = jsonPath;
    public string? Description { get; init; }
    /// <summary>0 shows in plain `kubectl get`; higher shows only with `-o wide`.</summary>
    public int Priority { get; init; }
}

/// <summary>Short names and categories for `kubectl get`.</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ResourceNamesAttribute(params string[] shortNames) : Attribute
{
    public IReadOnlyList<string> ShortNames { get; } = shortNames;
    public string[] Categories { get; init; } = [];
}
