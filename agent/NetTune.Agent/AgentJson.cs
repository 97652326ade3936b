using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent;

/// <summary>
/// The JSON the agent reads and writes, generated at build time (no reflection, so it runs under NativeAOT): the
/// NodeState and its status patch as the Kubernetes client writes them (camelCase, nulls left out, RFC 3339 times),
/// and the once command's report.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    Converters = new[] { typeof(Rfc3339DateTimeConverter) })]
[JsonSerializable(typeof(NetworkTuningNodeState))]
[JsonSerializable(typeof(NodeStateSpec))]
[JsonSerializable(typeof(NodeStateStatusPatch))]
internal sealed partial class AgentJson : JsonSerializerContext;

/// <summary>The body of the merge patch that replaces a NodeState's status.</summary>
internal sealed record NodeStateStatusPatch(NodeStateStatus Status);

/// <summary>
/// Times as the API server writes and reads them (RFC 3339, UTC): a DateTime of unspecified kind would otherwise go out
/// without a zone, which the server refuses.
/// </summary>
internal sealed class Rfc3339DateTimeConverter : JsonConverter<DateTime>
{
    public override DateTime Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        DateTimeOffset.Parse(reader.GetString() ?? throw new JsonException("a time is a string"), CultureInfo.InvariantCulture).UtcDateTime;

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
}
