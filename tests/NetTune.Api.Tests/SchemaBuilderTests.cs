using System.ComponentModel;
using System.Text.Json.Serialization;
using k8s.Models;
using NetTune.Api.Schema;
using NetTune.CrdGen;

namespace NetTune.Api.Tests;

/// <summary>Mappings the API types do not exercise yet, on small fixture types.</summary>
public class SchemaBuilderTests
{
    [JsonConverter(typeof(JsonStringEnumConverter<Colour>))]
    public enum Colour { Red = 2, [JsonStringEnumMemberName("deep-blue")] Blue = 1 }

    [Description("A fixture.")]
    public sealed class Fixture
    {
        [Description("Named by JSON.")]
        [JsonPropertyName("custom_name")] public string? Renamed { get; set; }

        [Items(1, 4)]
        [Description("Counts by key.")]
        public Dictionary<string, long>? Counts { get; set; }

        [Length(1, 8)]
        [Description("Short strings.")]
        public List<string>? Tags { get; set; }

        [Description("An enum.")]
        public Colour Colour { get; set; }

        [JsonIgnore]
        public string Hidden { get; set; } = "";

        [CelRule("fixture-rule", "self.size() > 0", "not empty")]
        [Description("A nested object with its own class rule plus one from the property.")]
        public Nested? Nested { get; set; }
    }

    [Description("Nested.")]
    [CelRule("nested-rule", "has(self.x)", "x is required")]
    public sealed class Nested
    {
        [Description("X.")]
        public int? X { get; set; }
    }

    public sealed class WithPodSpec
    {
        [Description("A pod spec has no hand-written schema.")]
        public V1PodSpec? Pod { get; set; }
    }

    public sealed class MisplacedIntOrString
    {
        [IntOrString]
        [Description("Must be IntOrString to carry the attribute.")]
        public string? Value { get; set; }
    }

    private static SchemaNode Property(SchemaNode root, string name) => (SchemaNode)((SchemaNode)root["properties"])[name];

    [Fact]
    public void MapsRenamesListItemsEnumsAndRules()
    {
        var root = SchemaBuilder.ForResource(typeof(Fixture));
        Assert.Equal(["apiVersion", "colour", "counts", "custom_name", "kind", "metadata", "nested", "tags"], ((SchemaNode)root["properties"]).Keys);

        var counts = Property(root, "counts");
        Assert.Equal(("object", 1, 4), ((string)counts["type"], (int)counts["minProperties"], (int)counts["maxProperties"]));
        Assert.Equal("int64", ((SchemaNode)counts["additionalProperties"])["format"]);

        var tags = Property(root, "tags");
        Assert.False(tags.ContainsKey("minLength"));
        Assert.Equal((1, 8), ((int)((SchemaNode)tags["items"])["minLength"], (int)((SchemaNode)tags["items"])["maxLength"]));

        Assert.Equal(["deep-blue", "Red"], (List<object>)Property(root, "colour")["enum"]);

        var nested = Property(root, "nested");
        Assert.Equal("A nested object with its own class rule plus one from the property.", nested["description"]);
        var rules = ((List<object>)nested["x-kubernetes-validations"]).Cast<SchemaNode>().Select(r => (string)r["rule"]);
        Assert.Equal(["has(self.x)", "self.size() > 0"], rules);
    }

    [Fact]
    public void AnUnknownKubernetesTypeIsRefusedByName()
    {
        var error = Assert.Throws<NotSupportedException>(() => SchemaBuilder.ForResource(typeof(WithPodSpec)));
        Assert.Contains("V1PodSpec", error.Message);
        Assert.Contains("Pod", error.Message);
    }

    [Fact]
    public void IntOrStringOnAnotherTypeIsRefused()
    {
        var error = Assert.Throws<NotSupportedException>(() => SchemaBuilder.ForResource(typeof(MisplacedIntOrString)));
        Assert.Contains("MisplacedIntOrString.Value", error.Message);
    }
}
