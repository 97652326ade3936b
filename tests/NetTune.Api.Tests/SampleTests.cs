using System.Text.Json;
using k8s;
using NetTune.Api.V1Alpha1;
using NetTune.Api.Validation;
using static NetTune.Api.Tests.CrdDocuments;

namespace NetTune.Api.Tests;

public class SampleTests
{
    private static readonly Dictionary<string, Type> Kinds = new()
    {
        [$"{ApiGroup.GroupVersion}/{NetworkTuning.KindName}"] = typeof(NetworkTuning),
        [$"{ApiGroup.GroupVersion}/{NetworkTuningNodeState.KindName}"] = typeof(NetworkTuningNodeState),
    };

    public static TheoryData<string> SampleFiles()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(RepoFiles.PathOf("samples"), "*.yaml").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(SampleFiles))]
    public void EverySampleIsAValidNetTuneObject(string file)
    {
        var objects = KubernetesYaml.LoadAllFromString(File.ReadAllText(RepoFiles.PathOf("samples", file)), Kinds, strict: true);
        Assert.NotEmpty(objects);
        foreach (var obj in objects)
        {
            switch (obj)
            {
                case NetworkTuning tuning:
                    Assert.Empty(NetworkTuningValidator.Validate(tuning.Spec).Select(e => e.ToString()));
                    Assert.Empty(Problems(tuning, "networktunings"));
                    break;
                case NetworkTuningNodeState state:
                    Assert.Empty(NetworkTuningValidator.Validate(state.Spec).Select(e => e.ToString()));
                    Assert.Empty(Problems(state, "networktuningnodestates"));
                    break;
                default:
                    Assert.Fail($"{file}: {obj.GetType().Name} is not a NetTune kind");
                    break;
            }
        }
    }

    [Fact]
    public void TheBasicSampleSaysWhatItShould()
    {
        var tuning = KubernetesYaml.Deserialize<NetworkTuning>(File.ReadAllText(RepoFiles.PathOf("samples", "networktuning-basic.yaml")), strict: true);
        var spec = tuning.Spec;
        Assert.Equal("web-tier", tuning.Metadata.Name);
        Assert.Equal("web", spec.NodeSelector!.MatchLabels["nettune.io/role"]);
        Assert.Equal(["eth*", "ens*"], spec.Nic!.Interfaces!.Names!);
        Assert.True(spec.Nic.Channels!.MatchLocalCpus);
        Assert.Equal(IrqAffinityPolicy.NumaLocalSpread, spec.Nic.IrqAffinity!.Policy);
        Assert.True(spec.Nic.Rps!.Enabled);
        Assert.True(spec.Nic.Xps!.Enabled);
        var pages = Assert.Single(spec.Hugepages!);
        Assert.Equal(("2Mi", 512), (pages.Size, pages.PagesPerNumaNode));
        Assert.Equal("65535", spec.Sysctls!["net.core.somaxconn"]);
        Assert.Equal("40%", spec.Rollout!.MaxUnavailable!.Value);
        Assert.True(spec.DataPlane!.Enabled);
        Assert.Equal(DataPlaneMode.StaticFiles, spec.DataPlane.Mode);
        Assert.Equal("/srv/www", spec.DataPlane.StaticFiles!.HostPath);
    }

    [Fact]
    public void StrictLoadingRefusesAFieldTheTypesDoNotHave()
    {
        // The sample test relies on strict loading to catch misspelt fields; show that it does.
        const string yaml = "apiVersion: nettune.io/v1alpha1\nkind: NetworkTuning\nmetadata: {name: x}\nspec:\n  priorty: 3\n";
        var error = Assert.ThrowsAny<YamlDotNet.Core.YamlException>(() => KubernetesYaml.Deserialize<NetworkTuning>(yaml, strict: true));
        Assert.Contains("priorty", error.Message);
        Assert.Equal(0, KubernetesYaml.Deserialize<NetworkTuning>(yaml, strict: false).Spec.Priority);
    }

    private static List<string> Problems(object obj, string plural)
    {
        using var json = JsonDocument.Parse(KubernetesJson.Serialize(obj));
        return SchemaConformance.Problems(json.RootElement, OpenApiSchema(plural));
    }
}
