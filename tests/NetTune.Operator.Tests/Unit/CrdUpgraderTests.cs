using k8s;
using Xunit;

namespace NetTune.Operator.Tests.Unit;

/// <summary>`nettune-operator apply-crds` refuses a folder it should not apply before it calls any API server.</summary>
public sealed class CrdUpgraderTests
{
    private const string OtherGroupCrd = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          names: {kind: Widget, plural: widgets}
          scope: Cluster
          versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
        """;

    public static TheoryData<string, string?, string> Refused => new()
    {
        { "an empty folder", null, "no CRD" },
        { "another group's CRD", OtherGroupCrd, "only NetTune's CustomResourceDefinitions" },
        { "something else", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "only NetTune's CustomResourceDefinitions" },
        { "no YAML", "{{ not: yaml", "is not a CustomResourceDefinition" },
    };

    [Theory, MemberData(nameof(Refused))]
    public async Task RefusesAFolderOfAnythingButNetTunesCrds(string what, string? file, string message)
    {
        var dir = Directory.CreateTempSubdirectory("nettune-crds-").FullName;
        try
        {
            if (file is not null) File.WriteAllText(Path.Combine(dir, "x.yaml"), file);
            // Nothing listens there: a call would fail with another code and message.
            using var client = new Kubernetes(new KubernetesClientConfiguration { Host = "https://127.0.0.1:9" });
            var log = new StringWriter();
            Assert.Equal(2, await new CrdUpgrader(client, log).RunAsync(dir, TimeSpan.FromSeconds(5)));
            Assert.True(log.ToString().Contains(message, StringComparison.Ordinal), $"{what}: {log}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
