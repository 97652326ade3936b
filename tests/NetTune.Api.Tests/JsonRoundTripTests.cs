using System.Text.Json;
using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using static NetTune.Api.Tests.CrdDocuments;

namespace NetTune.Api.Tests;

public class JsonRoundTripTests
{
    private static readonly DateTime When = new(2026, 3, 1, 12, 30, 0, DateTimeKind.Utc);

    internal static NetworkTuning FullTuning(IntOrString maxUnavailable) => new()
    {
        Metadata = new V1ObjectMeta { Name = "web-tier", Generation = 3, Labels = new Dictionary<string, string> { ["team"] = "edge" } },
        Spec = new NetworkTuningSpec
        {
            NodeSelector = new V1LabelSelector
            {
                MatchLabels = new Dictionary<string, string> { ["nettune.io/role"] = "web" },
                MatchExpressions = [new V1LabelSelectorRequirement { Key = "kubernetes.io/os", OperatorProperty = "In", Values = ["linux"] }],
            },
            Priority = 100,
            Nic = new NicSpec
            {
                Interfaces = new InterfaceSelector { Names = ["eth*"], Drivers = ["mlx5_core"] },
                Channels = new ChannelsSpec { MatchLocalCpus = true },
                IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.Spread, ReservedCpus = "0-1" },
                Rps = new RpsSpec { Enabled = true, FlowEntries = 32768 },
                Xps = new XpsSpec { Enabled = true },
            },
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 128 }] }],
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "65535" },
            Rollout = new RolloutSpec { MaxUnavailable = maxUnavailable, PauseOnFailure = false, DryRun = true },
            DataPlane = new DataPlaneSpec
            {
                Enabled = true,
                Image = "nettune/dataplane:0.1.0",
                Mode = DataPlaneMode.Proxy,
                Port = 8443,
                AdminPort = 9443,
                Proxy = new ProxySpec { Upstreams = ["10.0.0.5:8080", "[fd00::1]:80"] },
                WorkersPerSocket = 2,
                IoEngine = IoEngine.IoUring,
            },
        },
        Status = new NetworkTuningStatus
        {
            ObservedGeneration = 3,
            Conditions =
            [
                new V1Condition { Type = ConditionTypes.Ready, Status = ConditionStatus.False, Reason = ConditionReasons.RolloutInProgress, Message = "2 of 5 nodes applied", LastTransitionTime = When, ObservedGeneration = 3 },
            ],
            MatchedNodes = 5,
            AppliedNodes = 2,
            FailedNodes = 0,
            PendingNodes = 3,
            RevertingNodes = ["node-9"],
        },
    };

    internal static NetworkTuningNodeState FullNodeState() => new()
    {
        Metadata = new V1ObjectMeta { Name = "node-1" },
        Spec = new NodeStateSpec
        {
            NodeName = "node-1",
            Revert = false,
            DryRun = true,
            Sources = [new TuningSource { Name = "web-tier", Generation = 3, Priority = 100, Knobs = ["nic.channels", "sysctl/net.core.somaxconn"] }],
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth0"] }, Channels = new ChannelsSpec { Combined = 2 } },
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64 }],
            HugepagesBudget = new HugepagesBudget { MaxBytes = 6442450944, Basis = "allocatable memory 8Gi less 2Gi requested by 7 pods, plus 0 of hugepages the kubelet counts already" },
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "65535" },
        },
        Status = new NodeStateStatus
        {
            ObservedGeneration = 4,
            LastAppliedGeneration = 4,
            AgentVersion = "0.1.0",
            Conditions = [new V1Condition { Type = ConditionTypes.Applied, Status = ConditionStatus.True, Reason = ConditionReasons.Applied, Message = "", LastTransitionTime = When }],
            Topology = new NodeTopology
            {
                OnlineCpus = "0-1",
                IsolatedCpus = "",
                NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1", MemoryBytes = 25769803776, Distances = [10], Hugepages = [new HugepagesInfo { Size = "2Mi", Total = 64, Free = 60 }] }],
                Nics =
                [
                    new NicInfo
                    {
                        Name = "eth0", Driver = "virtio_net", PciAddress = "0000:00:03.0", NumaNode = -1, LocalCpus = "0-1", RxQueues = 2, TxQueues = 2,
                        Channels = new ChannelInfo { Combined = 2, MaxCombined = 2 },
                        Irqs = [new IrqInfo { Irq = 35, Name = "virtio2-input.0", Queue = 0, Cpus = "0", Managed = false }],
                    },
                ],
            },
            PlannedChanges = [new PlannedChange { Knob = "sysctl/net.core.somaxconn", Path = "proc/sys/net/core/somaxconn", Current = "4096", Target = "65535" }],
            Knobs = [new KnobResult { Knob = "hugepages/node0/2Mi", Value = "60", Result = KnobOutcome.Shortfall, Message = "asked 64, got 60" }],
            Drift = [new DriftCounter { Knob = "irq/35/affinity", Detected = 2, Repaired = 2 }],
        },
    };

    [Fact]
    public void ANetworkTuningSurvivesTheRoundTrip()
    {
        var json = KubernetesJson.Serialize(FullTuning("40%"));
        var back = KubernetesJson.Deserialize<NetworkTuning>(json);
        Assert.Equal(json, KubernetesJson.Serialize(back));
        Assert.Equal("40%", back.Spec.Rollout!.MaxUnavailable!.Value);
        Assert.Equal(IrqAffinityPolicy.Spread, back.Spec.Nic!.IrqAffinity!.Policy);
        Assert.Equal(IoEngine.IoUring, back.Spec.DataPlane!.IoEngine);
        Assert.Equal(When, back.Status!.Conditions![0].LastTransitionTime.ToUniversalTime());
    }

    [Fact]
    public void ANodeStateSurvivesTheRoundTrip()
    {
        var json = KubernetesJson.Serialize(FullNodeState());
        var back = KubernetesJson.Deserialize<NetworkTuningNodeState>(json);
        Assert.Equal(json, KubernetesJson.Serialize(back));
        Assert.Equal(KnobOutcome.Shortfall, back.Status!.Knobs![0].Result);
        Assert.Equal(25769803776, back.Status.Topology!.NumaNodes![0].MemoryBytes);
        Assert.Equal(6442450944, back.Spec.HugepagesBudget!.MaxBytes);
    }

    [Fact]
    public void JsonUsesCamelCaseNamesEnumStringsAndIntOrString()
    {
        var json = KubernetesJson.Serialize(FullTuning("40%"));
        Assert.Contains("\"apiVersion\":\"nettune.io/v1alpha1\"", json);
        Assert.Contains("\"kind\":\"NetworkTuning\"", json);
        Assert.Contains("\"maxUnavailable\":\"40%\"", json);
        Assert.Contains("\"policy\":\"Spread\"", json);
        Assert.Contains("\"mode\":\"Proxy\"", json);
        Assert.Contains("\"ioEngine\":\"IoUring\"", json);
        Assert.Contains("\"matchLocalCpus\":true", json);
        Assert.Contains("\"pagesPerNumaNode\":512", json);
        Assert.Contains("\"perNumaNode\":[{\"numaNode\":1,\"pages\":128}]", json);
        Assert.Contains("\"workersPerSocket\":2", json);
        Assert.Contains("\"operator\":\"In\"", json);
        Assert.Contains("\"lastTransitionTime\":\"2026-03-01T12:30:00", json);
        Assert.Contains("\"result\":\"Shortfall\"", KubernetesJson.Serialize(FullNodeState()));

        var asCount = KubernetesJson.Serialize(FullTuning(1));
        Assert.Contains("\"maxUnavailable\":1", asCount);
        Assert.Equal("1", KubernetesJson.Deserialize<NetworkTuning>(asCount).Spec.Rollout!.MaxUnavailable!.Value);
    }

    [Fact]
    public void UnsetOptionalFieldsAreLeftOutSoServerDefaultsApply()
    {
        var json = KubernetesJson.Serialize(new NetworkTuning { Metadata = new V1ObjectMeta { Name = "x" }, Spec = new NetworkTuningSpec { Nic = new NicSpec() } });
        Assert.DoesNotContain("null", json);
        Assert.DoesNotContain("status", json);
        Assert.Contains("\"nic\":{}", json);
    }

    [Fact]
    public void EnumsReadTheirNamesAndRefuseOthers()
    {
        const string good = """{"apiVersion":"nettune.io/v1alpha1","kind":"NetworkTuning","metadata":{"name":"x"},"spec":{"nic":{"irqAffinity":{"policy":"Unmanaged"}},"dataPlane":{"mode":"StaticFiles","ioEngine":"Epoll"}}}""";
        var tuning = KubernetesJson.Deserialize<NetworkTuning>(good);
        Assert.Equal(IrqAffinityPolicy.Unmanaged, tuning.Spec.Nic!.IrqAffinity!.Policy);
        Assert.Equal(IoEngine.Epoll, tuning.Spec.DataPlane!.IoEngine);
        Assert.ThrowsAny<JsonException>(() => KubernetesJson.Deserialize<NetworkTuning>(good.Replace("Unmanaged", "Sometimes")));
    }

    [Theory]
    [InlineData("40%")]
    [InlineData(1)]
    public void SerializedNetworkTuningFitsTheCrdSchema(object maxUnavailable)
    {
        IntOrString value = maxUnavailable is int i ? i : (string)maxUnavailable;
        using var json = JsonDocument.Parse(KubernetesJson.Serialize(FullTuning(value)));
        Assert.Empty(SchemaConformance.Problems(json.RootElement, OpenApiSchema("networktunings")));
    }

    [Fact]
    public void SerializedNodeStateFitsTheCrdSchema()
    {
        using var json = JsonDocument.Parse(KubernetesJson.Serialize(FullNodeState()));
        Assert.Empty(SchemaConformance.Problems(json.RootElement, OpenApiSchema("networktuningnodestates")));
    }

    [Fact]
    public void TheSchemaCheckCatchesUnknownFieldsAndBadValues()
    {
        // Proves SchemaConformance can fail, so the two tests above mean something.
        const string bad = """{"apiVersion":"nettune.io/v1alpha1","kind":"NetworkTuning","metadata":{"name":"x"},"spec":{"priority":5000,"colour":"red","rollout":{"maxUnavailable":"abc"},"hugepages":[{"size":"4Mi"}]}}""";
        using var json = JsonDocument.Parse(bad);
        var problems = SchemaConformance.Problems(json.RootElement, OpenApiSchema("networktunings"));
        Assert.Contains(problems, p => p.StartsWith("spec.priority: 5000 > 1000", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.colour: unknown field", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.rollout.maxUnavailable: 'abc' does not match", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("spec.hugepages[0].size: '4Mi' does not match", StringComparison.Ordinal));
        Assert.Contains(problems, p => p == "spec.hugepages[0]: required pagesPerNumaNode is missing");
        Assert.Equal(5, problems.Count);
    }
}
