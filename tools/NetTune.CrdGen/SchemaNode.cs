namespace NetTune.CrdGen;

/// <summary>One node of an OpenAPI v3 schema. Keys are kept in ordinal order so the YAML comes out the same every run.</summary>
public sealed class SchemaNode() : SortedDictionary<string, object>(StringComparer.Ordinal);
