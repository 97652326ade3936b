using System.Reflection;
using NetTune.Api.Schema;
using NetTune.Api.V1Alpha1;
using NetTune.CrdGen;
using static NetTune.Api.Tests.CrdDocuments;

namespace NetTune.Api.Tests;

public class CrdGeneratorTests
{
    [Fact]
    public void CommittedCrdsMatchTheGeneratorOutputByteForByte()
    {
        var committed = Directory.GetFiles(RepoFiles.PathOf("crds"), "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(Generated.Keys.Order(StringComparer.Ordinal), committed);
        foreach (var (name, yaml) in Generated)
        {
            var onDisk = File.ReadAllBytes(RepoFiles.PathOf("crds", name));
            Assert.True(onDisk.AsSpan().SequenceEqual(System.Text.Encoding.UTF8.GetBytes(yaml)),
                $"crds/{name} is stale: the API types changed since it was generated. Run `make crds` and commit crds/.");
        }
    }

    [Fact]
    public void CommittedApiReferenceMatchesTheGeneratorOutput()
    {
        var onDisk = File.ReadAllText(RepoFiles.PathOf("docs", ApiReference.FileName));
        Assert.True(onDisk == ApiReference.Generate(),
            $"docs/{ApiReference.FileName} is stale: the API types changed since it was generated. Run `make crds` and commit docs/.");
    }

    [Fact]
    public void ApiReferenceListsEveryFieldWithItsConstraints()
    {
        var reference = ApiReference.Generate();
        Assert.Contains("| `spec.rollout.maxUnavailable` | int or string |", reference);
        Assert.Contains("| `spec.nic.irqAffinity.policy` | `NumaLocalSpread` \\| `Spread` \\| `Unmanaged` \\| `AlignWithDataPlane` |", reference);
        Assert.Contains("| `spec.hugepages[].size` | string | Page size: 2Mi or 1Gi. (required; pattern `^(2Mi\\|1Gi)$`) |", reference);
        Assert.Contains("| `spec.priority` | integer |", reference);
        Assert.Contains("(default `0`; 0–1000)", reference);
        Assert.Contains("rule: combined excludes rx and tx", reference);
        Assert.Contains("| `status.topology.cpus[].threadSiblings` | string |", reference);
        Assert.Contains("## NetworkTuningNodeState", reference);
    }

    [Fact]
    public void GeneratingTwiceGivesTheSameText()
    {
        var again = CrdGenerator.Generate();
        Assert.Equal(Generated, again);
    }

    [Fact]
    public void OneCrdPerEntityNamedAfterGroupAndPlural()
    {
        Assert.Equal(["nettune.io_networktuningnodestates.yaml", "nettune.io_networktunings.yaml"], Generated.Keys);
        Assert.Equal([typeof(NetworkTuning), typeof(NetworkTuningNodeState)],
            CrdGenerator.EntityTypes(typeof(NetworkTuning).Assembly).OrderBy(t => t.Name));
    }

    [Theory]
    [InlineData("networktunings", "NetworkTuning", "networktuning", "nt")]
    [InlineData("networktuningnodestates", "NetworkTuningNodeState", "networktuningnodestate", "ntns")]
    public void CrdHeadIsClusterScopedV1Alpha1WithStatusSubresource(string plural, string kind, string singular, string shortName)
    {
        var crd = Crd(plural);
        Assert.Equal("apiextensions.k8s.io/v1", crd["apiVersion"]);
        Assert.Equal("CustomResourceDefinition", crd["kind"]);
        Assert.Equal($"{plural}.nettune.io", Map(crd["metadata"])["name"]);
        var spec = Map(crd["spec"]);
        Assert.Equal("nettune.io", spec["group"]);
        Assert.Equal("Cluster", spec["scope"]);
        var names = Map(spec["names"]);
        Assert.Equal(kind, names["kind"]);
        Assert.Equal(kind + "List", names["listKind"]);
        Assert.Equal(plural, names["plural"]);
        Assert.Equal(singular, names["singular"]);
        Assert.Equal([shortName], (List<object>)names["shortNames"]);
        Assert.Equal(["nettune"], (List<object>)names["categories"]);

        Assert.Single((List<object>)spec["versions"]);
        var version = Version(crd);
        Assert.Equal("v1alpha1", version["name"]);
        Assert.Equal("true", version["served"]);
        Assert.Equal("true", version["storage"]);
        Assert.Empty(Map(Map(version["subresources"])["status"]));
    }

    [Theory]
    [InlineData("networktunings", typeof(NetworkTuning))]
    [InlineData("networktuningnodestates", typeof(NetworkTuningNodeState))]
    public void PrinterColumnsFollowTheAttributesAndPointAtSchemaFields(string plural, Type entity)
    {
        var columns = ((List<object>)Version(Crd(plural))["additionalPrinterColumns"]).Select(Map).ToList();
        var attributes = entity.GetCustomAttributes<PrinterColumnAttribute>().ToList();
        Assert.Equal(attributes.Select(a => a.Name), columns.Select(c => (string)c["name"]));
        Assert.Equal(attributes.Select(a => a.JsonPath), columns.Select(c => (string)c["jsonPath"]));
        Assert.Equal(attributes.Select(a => a.Type), columns.Select(c => (string)c["type"]));
        Assert.Equal(attributes.Select(a => a.Priority.ToString()), columns.Select(c => c.TryGetValue("priority", out var p) ? (string)p : "0"));

        var schema = OpenApiSchema(plural);
        foreach (var path in attributes.Select(a => a.JsonPath).Where(p => !p.StartsWith(".metadata.", StringComparison.Ordinal)))
        {
            // .status.conditions[?(@.type=="Ready")].status → status.conditions.[].status
            var dotted = System.Text.RegularExpressions.Regex.Replace(path.TrimStart('.'), @"\[\?\(.*?\)\]", ".[]");
            var node = At(schema, dotted);
            Assert.True(node.ContainsKey("type"), $"column {path} points at a schema node without a type");
        }
    }

    [Theory]
    [InlineData("networktunings")]
    [InlineData("networktuningnodestates")]
    public void EveryFieldHasADescription(string plural)
    {
        var schema = OpenApiSchema(plural);
        var missing = new List<string>();
        foreach (var (path, node) in Walk(schema))
        {
            // Only property nodes are fields (items and map values belong to their field); metadata may only hold a type.
            var isProperty = path.Length == 0 || !(path.EndsWith("[]", StringComparison.Ordinal) || path.EndsWith("{}", StringComparison.Ordinal));
            if (!isProperty || path == "metadata") continue;
            if (!node.TryGetValue("description", out var d) || string.IsNullOrWhiteSpace((string)d)) missing.Add(path.Length == 0 ? "(root)" : path);
        }
        Assert.True(missing.Count == 0, $"{plural}: fields without a description: {string.Join(", ", missing)}");
    }

    [Theory]
    [InlineData("networktunings")]
    [InlineData("networktuningnodestates")]
    public void SchemaIsStructural(string plural)
    {
        var schema = OpenApiSchema(plural);
        string[] types = ["object", "array", "string", "integer", "number", "boolean"];
        foreach (var (path, node) in Walk(schema))
        {
            var where = path.Length == 0 ? "(root)" : path;
            Assert.False(node.ContainsKey("nullable") && path.Length == 0, "the root may not be nullable");
            if (node.TryGetValue("x-kubernetes-int-or-string", out var intOrString))
            {
                Assert.Equal("true", intOrString);
                Assert.False(node.ContainsKey("type"), $"{where}: int-or-string must not have a type");
                continue;
            }
            Assert.True(node.TryGetValue("type", out var type), $"{where}: no type");
            Assert.Contains((string)type, types);
            if ((string)type == "array") Assert.True(node.ContainsKey("items"), $"{where}: an array needs items");
            if (node.TryGetValue("required", out var required))
                foreach (var name in (List<object>)required)
                    Assert.True(Map(node["properties"]).ContainsKey(name), $"{where}: required {name} is not a property");
            foreach (var junctor in new[] { "anyOf", "allOf", "oneOf", "not" })
                Assert.False(node.ContainsKey(junctor), $"{where}: {junctor} is not used by this generator");
        }
        var root = schema;
        Assert.Equal("object", root["type"]);
        Assert.Equal(new Dictionary<object, object> { ["type"] = "object" }, Map(Map(root["properties"])["metadata"]));
        Assert.Equal(["spec"], (List<object>)root["required"]);
        Assert.Equal("object", At(root, "status")["type"]);
    }

    [Fact]
    public void AttributesBecomeTheirOpenApiKeywords()
    {
        var schema = OpenApiSchema("networktunings");

        var priority = At(schema, "spec.priority");
        Assert.Equal(("integer", "int32", "0", "1000", "0"),
            ((string)priority["type"], (string)priority["format"], (string)priority["minimum"], (string)priority["maximum"], (string)priority["default"]));

        // [Pattern] on a list of strings constrains each item; [Items] bounds the list.
        var names = At(schema, "spec.nic.interfaces.names");
        Assert.Equal("array", names["type"]);
        Assert.Equal("32", names["maxItems"]);
        Assert.False(names.ContainsKey("pattern"));
        Assert.Equal(@"^[A-Za-z0-9_.:@*?\[\]-]{1,32}$", Map(names["items"])["pattern"]);

        // [Items] on a map bounds its properties; values are strings.
        var sysctls = At(schema, "spec.sysctls");
        Assert.Equal(("object", "0", "64"), ((string)sysctls["type"], (string)sysctls["minProperties"], (string)sysctls["maxProperties"]));
        Assert.Equal("string", Map(sysctls["additionalProperties"])["type"]);

        var maxUnavailable = At(schema, "spec.rollout.maxUnavailable");
        Assert.Equal("true", maxUnavailable["x-kubernetes-int-or-string"]);
        Assert.Equal("1", maxUnavailable["default"]);
        Assert.Equal(@"^(100|[1-9]?[0-9])%$|^[0-9]+$", maxUnavailable["pattern"]);

        var policy = At(schema, "spec.nic.irqAffinity.policy");
        Assert.Equal("string", policy["type"]);
        Assert.Equal(["NumaLocalSpread", "Spread", "Unmanaged", "AlignWithDataPlane"], (List<object>)policy["enum"]);
        Assert.Equal("NumaLocalSpread", policy["default"]);

        var hostPath = At(schema, "spec.dataPlane.staticFiles.hostPath");
        Assert.Equal(("1", "4096", "^/.*"), ((string)hostPath["minLength"], (string)hostPath["maxLength"], (string)hostPath["pattern"]));
        Assert.Equal(["hostPath"], (List<object>)At(schema, "spec.dataPlane.staticFiles")["required"]);
        Assert.Equal(["pagesPerNumaNode", "size"], (List<object>)At(schema, "spec.hugepages.[]")["required"]);

        Assert.Equal(("integer", "int64"), ((string)At(schema, "status.observedGeneration")["type"], (string)At(schema, "status.observedGeneration")["format"]));
        Assert.Equal("boolean", At(schema, "spec.rollout.pauseOnFailure")["type"]);
        Assert.Equal("true", At(schema, "spec.rollout.pauseOnFailure")["default"]);
    }

    [Fact]
    public void CelRulesSitOnTheNodeTheyWereDeclaredOn()
    {
        var schema = OpenApiSchema("networktunings");
        string Rules(string path) => string.Join(" | ", ((List<object>)At(schema, path)["x-kubernetes-validations"]).Select(r => (string)Map(r)["rule"]));

        Assert.Equal(3, ((List<object>)At(schema, "spec.nic.channels")["x-kubernetes-validations"]).Count);
        Assert.Contains("!(has(self.combined) && (has(self.rx) || has(self.tx)))", Rules("spec.nic.channels"));
        Assert.Equal("self.all(x, self.exists_one(y, y.size == x.size))", Rules("spec.hugepages"));
        Assert.Equal(SysctlAllowList.CelRule, Rules("spec.sysctls"));
        var sysctlRule = Map(((List<object>)At(schema, "spec.sysctls")["x-kubernetes-validations"])[0]);
        Assert.Equal(SysctlAllowList.CelMessage, sysctlRule["message"]);
        Assert.StartsWith("has(self.interfaces) | !(has(self.irqAffinity)", Rules("spec.nic"), StringComparison.Ordinal);
        Assert.False(At(schema, "spec.nic.irqAffinity").ContainsKey("x-kubernetes-validations"));
    }

    [Fact]
    public void EveryCelRuleAttributeAppearsInTheCrds()
    {
        var attributes = ApiTypes.CelRules().Select(r => r.Rule).Order(StringComparer.Ordinal).ToList();
        // NodeState reuses NicSpec and HugepagesSpec, so their class rules appear in both CRDs.
        var emitted = Plurals.SelectMany(p => Walk(OpenApiSchema(p)))
            .Where(n => n.Node.ContainsKey("x-kubernetes-validations"))
            .SelectMany(n => (List<object>)n.Node["x-kubernetes-validations"])
            .Select(r => (string)Map(r)["rule"])
            .Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(attributes.Distinct().Order(StringComparer.Ordinal), emitted);
    }

    [Fact]
    public void ConditionsAreListMapsOfMetaV1Condition()
    {
        foreach (var plural in Plurals)
        {
            var conditions = At(OpenApiSchema(plural), "status.conditions");
            Assert.Equal("map", conditions["x-kubernetes-list-type"]);
            Assert.Equal(["type"], (List<object>)conditions["x-kubernetes-list-map-keys"]);
            var item = Map(conditions["items"]);
            Assert.Equal(["lastTransitionTime", "message", "reason", "status", "type"], (List<object>)item["required"]);
            Assert.Equal(["True", "False", "Unknown"], (List<object>)At(item, "status")["enum"]);
            Assert.Equal("date-time", At(item, "lastTransitionTime")["format"]);
            Assert.Equal("1024", At(item, "reason")["maxLength"]);
            Assert.Equal("32768", At(item, "message")["maxLength"]);
            Assert.Equal("316", At(item, "type")["maxLength"]);
        }
    }

    [Fact]
    public void NodeSelectorIsALabelSelector()
    {
        var selector = At(OpenApiSchema("networktunings"), "spec.nodeSelector");
        Assert.Equal("string", Map(At(selector, "matchLabels")["additionalProperties"])["type"]);
        var requirement = At(selector, "matchExpressions.[]");
        Assert.Equal(["key", "operator"], (List<object>)requirement["required"]);
        Assert.Equal(["In", "NotIn", "Exists", "DoesNotExist"], (List<object>)At(requirement, "operator")["enum"]);
        Assert.Equal("string", At(requirement, "values.[]")["type"]);
    }
}
