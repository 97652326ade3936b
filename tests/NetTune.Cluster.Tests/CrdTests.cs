using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Cluster.Tests;

/// <summary>The generated CRDs, installed with kubectl into the real apiserver, behave as the API promises.</summary>
[Collection("cluster")]
public sealed class CrdTests(ClusterFixture fixture)
{
    private KubeCluster Cluster => fixture.Cluster;
    private GenericClient Tunings => new(Cluster.Client, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, disposeClient: false);
    private GenericClient NodeStates => new(Cluster.Client, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, disposeClient: false);

    [Fact]
    public async Task BothCrdsAreEstablishedClusterScopedWithAStatusSubresource()
    {
        foreach (var plural in new[] { NetworkTuning.Plural, NetworkTuningNodeState.Plural })
        {
            var crd = await Cluster.Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync($"{plural}.{ApiGroup.Name}");
            Assert.Equal("Cluster", crd.Spec.Scope);
            Assert.Contains(crd.Status.Conditions, c => c.Type == "Established" && c.Status == "True");
            var version = Assert.Single(crd.Spec.Versions);
            Assert.Equal(ApiGroup.Version, version.Name);
            Assert.NotNull(version.Subresources?.Status);
            Assert.NotEmpty(version.AdditionalPrinterColumns);
        }
    }

    [Fact]
    public async Task PlainKubectlApplyOnAPre125ServerIsRefusedOnlyForTheCelRules()
    {
        if (await Cluster.ServerSupportsCelAsync())
        {
            var (ok, _, err) = await Cluster.KubectlAsync("apply", "--dry-run=server", "-f", Path.Combine(KubeCluster.RepoRoot, "crds"));
            Assert.True(ok == 0, err);
            return;
        }
        // kubectl checks CRDs against the server's own OpenAPI; a 1.20 server has no x-kubernetes-validations there.
        var (code, _, stderr) = await Cluster.KubectlAsync("apply", "--dry-run=client", "-f", Path.Combine(KubeCluster.RepoRoot, "crds"));
        Assert.NotEqual(0, code);
        var unknownFields = System.Text.RegularExpressions.Regex.Matches(stderr, "unknown field \"([^\"]+)\"").Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Equal(["x-kubernetes-validations"], unknownFields);
    }

    [Fact]
    public async Task KubectlAppliesTheSampleAndShowsThePrinterColumns()
    {
        var sample = Path.Combine(KubeCluster.RepoRoot, "samples", "networktuning-basic.yaml");
        var (code, stdout, stderr) = await Cluster.KubectlAsync("apply", "-f", sample);
        Assert.True(code == 0, stderr);
        Assert.Contains("networktuning.nettune.io/web-tier", stdout);

        (code, stdout, stderr) = await Cluster.KubectlAsync("get", "networktunings", "web-tier");
        Assert.True(code == 0, stderr);
        var header = stdout.Split('\n')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["NAME", "MATCHED", "APPLIED", "FAILED", "PODS-READY", "PODS-DESIRED", "READY", "AGE"], header);

        (code, stdout, stderr) = await Cluster.KubectlAsync("get", "nt", "web-tier", "-o", "wide");
        Assert.True(code == 0, stderr);
        Assert.Contains("REASON", stdout.Split('\n')[0]);

        var stored = await Tunings.ReadAsync<NetworkTuning>("web-tier");
        Assert.Equal(100, stored.Spec.Priority);
        Assert.Equal("40%", stored.Spec.Rollout?.MaxUnavailable?.Value);
        Assert.Equal(IrqAffinityPolicy.NumaLocalSpread, stored.Spec.Nic?.IrqAffinity?.Policy);
        await DeleteAsync(NetworkTuning.Plural, "web-tier");
    }

    [Fact]
    public async Task KubectlExplainShowsTheFieldDescriptions()
    {
        var (code, stdout, stderr) = await Cluster.KubectlAsync("explain", "networktuning.spec.nic");
        Assert.True(code == 0, stderr);
        Assert.Contains("NIC channels, IRQ affinity, RPS/RFS, XPS, rings, coalescing", stdout);
        Assert.Contains("irqAffinity", stdout);
        Assert.Contains("Where each queue's interrupt is handled.", stdout);

        (code, stdout, stderr) = await Cluster.KubectlAsync("explain", "networktuningnodestate.status.topology.nics.irqs");
        Assert.True(code == 0, stderr);
        Assert.Contains("True when the kernel manages its affinity", stdout);
    }

    [Fact]
    public async Task TheServerFillsInDefaults()
    {
        var name = Unique("defaults");
        await Tunings.CreateAsync(new NetworkTuning
        {
            Metadata = new() { Name = name },
            Spec = new() { Rollout = new(), Nic = new() { Interfaces = new() { Names = ["eth0"] }, IrqAffinity = new() } },
        }, default);
        // Read the raw JSON: C# defaults of the types must not be mistaken for server defaults.
        var raw = (JsonElement)await Cluster.Client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
        var rollout = raw.GetProperty("spec").GetProperty("rollout");
        Assert.Equal(1, rollout.GetProperty("maxUnavailable").GetInt32());
        Assert.True(rollout.GetProperty("pauseOnFailure").GetBoolean());
        Assert.False(rollout.GetProperty("dryRun").GetBoolean());
        Assert.Equal(0, raw.GetProperty("spec").GetProperty("priority").GetInt32());
        await DeleteAsync(NetworkTuning.Plural, name);
    }

    [Fact]
    public async Task CreateGetListUpdateWithTheClientAndOptimisticConcurrency()
    {
        var name = Unique("crud");
        var created = await Tunings.CreateAsync(new NetworkTuning
        {
            Metadata = new() { Name = name, Labels = new Dictionary<string, string> { ["suite"] = "crud" } },
            Spec = new() { Priority = 5, Sysctls = new() { ["net.core.somaxconn"] = "4096" } },
        }, default);
        Assert.Equal(1, created.Metadata.Generation);

        var list = await Tunings.ListAsync<NetworkTuningList>(labelSelector: "suite=crud");
        Assert.Contains(list.Items, t => t.Metadata.Name == name);

        var read = await Tunings.ReadAsync<NetworkTuning>(name);
        read.Spec.Priority = 6;
        var updated = await Tunings.ReplaceAsync(read, name, default);
        Assert.Equal(6, updated.Spec.Priority);
        Assert.Equal(2, updated.Metadata.Generation);

        // The copy read before the update is stale now: the server refuses it instead of losing the update.
        read.Spec.Priority = 7;
        var conflict = await Assert.ThrowsAsync<HttpOperationException>(() => Tunings.ReplaceAsync(read, name, default));
        Assert.Equal(HttpStatusCode.Conflict, conflict.Response.StatusCode);

        var duplicate = await Assert.ThrowsAsync<HttpOperationException>(() => Tunings.CreateAsync(new NetworkTuning { Metadata = new() { Name = name } }, default));
        Assert.Equal(HttpStatusCode.Conflict, duplicate.Response.StatusCode);

        await DeleteAsync(NetworkTuning.Plural, name);
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => Tunings.ReadAsync<NetworkTuning>(name));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
    }

    [Fact]
    public async Task KubectlCreatesGetsAndUpdatesANetworkTuning()
    {
        var name = Unique("kubectl");
        var file = Path.Combine(Path.GetTempPath(), $"{name}.yaml");
        await File.WriteAllTextAsync(file, $$"""
            apiVersion: nettune.io/v1alpha1
            kind: NetworkTuning
            metadata:
              name: {{name}}
            spec:
              priority: 10
              sysctls:
                net.core.somaxconn: "8192"
            """);
        var (code, _, stderr) = await Cluster.KubectlAsync("create", "-f", file);
        Assert.True(code == 0, stderr);
        (code, _, stderr) = await Cluster.KubectlAsync("patch", "networktuning", name, "--type=merge", "-p", "{\"spec\":{\"priority\":20}}");
        Assert.True(code == 0, stderr);
        (code, var stdout, stderr) = await Cluster.KubectlAsync("get", "networktuning", name, "-o", "jsonpath={.spec.priority}");
        Assert.True(code == 0, stderr);
        Assert.Equal("20", stdout);
        (code, _, stderr) = await Cluster.KubectlAsync("delete", "-f", file);
        Assert.True(code == 0, stderr);
        File.Delete(file);
    }

    // v1.20 names list items without their index (spec.hugepages.size); newer servers add it, so indexes are ignored.
    public static TheoryData<string, string> InvalidSpecs => new()
    {
        { """{"priority":"high"}""", "spec.priority" },
        { """{"priority":5000}""", "spec.priority" },
        { """{"rollout":{"maxUnavailable":"lots"}}""", "spec.rollout.maxUnavailable" },
        { """{"hugepages":[{"size":"4Mi","pagesPerNumaNode":1}]}""", "spec.hugepages.size" },
        { """{"hugepages":[{"size":"2Mi"}]}""", "spec.hugepages.pagesPerNumaNode" },
        { """{"nic":{"interfaces":{"names":["eth0"]},"irqAffinity":{"policy":"Everywhere"}}}""", "spec.nic.irqAffinity.policy" },
        { """{"nic":{"interfaces":{"names":["eth0"]},"channels":{"combined":0}}}""", "spec.nic.channels.combined" },
        { """{"nic":{"interfaces":{"names":["eth0"]},"irqAffinity":{"reservedCpus":"zero"}}}""", "spec.nic.irqAffinity.reservedCpus" },
        { """{"dataPlane":{"port":70000}}""", "spec.dataPlane.port" },
        { """{"dataPlane":{"staticFiles":{"hostPath":"relative/path"}}}""", "spec.dataPlane.staticFiles.hostPath" },
    };

    [Theory]
    [MemberData(nameof(InvalidSpecs))]
    public async Task WrongTypesAndOutOfRangeValuesAreRejectedWith422NamingTheField(string specJson, string field)
    {
        var body = JsonDocument.Parse($$"""{"apiVersion":"nettune.io/v1alpha1","kind":"NetworkTuning","metadata":{"name":"{{Unique("bad")}}"},"spec":{{specJson}}}""").RootElement;
        var e = await Assert.ThrowsAsync<HttpOperationException>(() =>
            Cluster.Client.CustomObjects.CreateClusterCustomObjectAsync(body, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        var withoutIndexes = System.Text.RegularExpressions.Regex.Replace(e.Response.Content, @"\[\d+\]", "");
        Assert.True(withoutIndexes.Contains(field, StringComparison.Ordinal), e.Response.Content);
    }

    [Fact]
    public async Task StatusIsOnlyWritableThroughTheStatusSubresource()
    {
        var name = Unique("status");
        var created = await Tunings.CreateAsync(new NetworkTuning
        {
            Metadata = new() { Name = name },
            Spec = new() { Priority = 1 },
            Status = new() { MatchedNodes = 99 },
        }, default);
        Assert.Null(created.Status);

        created.Status = new() { MatchedNodes = 42 };
        var replaced = await Tunings.ReplaceAsync(created, name, default);
        Assert.Null(replaced.Status);

        var patch = new V1Patch("""{"status":{"matchedNodes":3,"appliedNodes":2}}""", V1Patch.PatchType.MergePatch);
        var patched = KubernetesJson.Deserialize<NetworkTuning>(((JsonElement)await Cluster.Client.CustomObjects.PatchClusterCustomObjectStatusAsync(
            patch, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name)).GetRawText());
        Assert.Equal(3, patched.Status?.MatchedNodes);
        Assert.Equal(2, patched.Status?.AppliedNodes);
        // A status write is not a spec change: the generation stays.
        Assert.Equal(replaced.Metadata.Generation, patched.Metadata.Generation);

        // And the status subresource ignores spec changes.
        var sneaky = new V1Patch("""{"spec":{"priority":500},"status":{"failedNodes":1}}""", V1Patch.PatchType.MergePatch);
        await Cluster.Client.CustomObjects.PatchClusterCustomObjectStatusAsync(sneaky, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
        var final = await Tunings.ReadAsync<NetworkTuning>(name);
        Assert.Equal(1, final.Spec.Priority);
        Assert.Equal(1, final.Status?.FailedNodes);
        await DeleteAsync(NetworkTuning.Plural, name);
    }

    [Fact]
    public async Task NodeStateStatusRoundTripsTopologyAndConditions()
    {
        var name = Unique("node");
        await NodeStates.CreateAsync(new NetworkTuningNodeState
        {
            Metadata = new() { Name = name },
            Spec = new() { NodeName = name, Sysctls = new() { ["net.core.somaxconn"] = "1024" } },
        }, default);
        var status = new NodeStateStatus
        {
            ObservedGeneration = 1,
            LastAppliedGeneration = 1,
            Conditions = [new V1Condition { Type = ConditionTypes.Applied, Status = ConditionStatus.True, Reason = ConditionReasons.Applied, Message = "3 knobs applied", LastTransitionTime = DateTime.UtcNow, ObservedGeneration = 1 }],
            Topology = new NodeTopology
            {
                OnlineCpus = "0-3",
                NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-3", MemoryBytes = 1L << 34, Hugepages = [new HugepagesInfo { Size = "2Mi", Total = 512, Free = 500 }] }],
                Nics = [new NicInfo { Name = "eth0", Driver = "virtio_net", NumaNode = -1, RxQueues = 2, TxQueues = 2, Irqs = [new IrqInfo { Irq = 35, Name = "virtio2-input.0", Queue = 0, Cpus = "1" }] }],
            },
            PlannedChanges = [new PlannedChange { Knob = "sysctl/net.core.somaxconn", Path = "proc/sys/net/core/somaxconn", Current = "4096", Target = "1024" }],
            Knobs = [new KnobResult { Knob = "sysctl/net.core.somaxconn", Value = "1024", Result = KnobOutcome.Applied }],
        };
        var patch = new V1Patch(KubernetesJson.Serialize(new { status }), V1Patch.PatchType.MergePatch);
        await Cluster.Client.CustomObjects.PatchClusterCustomObjectStatusAsync(patch, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, name);

        var read = await NodeStates.ReadAsync<NetworkTuningNodeState>(name);
        Assert.Equal("virtio2-input.0", read.Status?.Topology?.Nics?[0].Irqs?[0].Name);
        Assert.Equal(-1, read.Status?.Topology?.Nics?[0].NumaNode);
        Assert.Equal(KnobOutcome.Applied, read.Status?.Knobs?[0].Result);
        Assert.Equal(ConditionReasons.Applied, read.Status?.Conditions?[0].Reason);

        var (code, stdout, stderr) = await Cluster.KubectlAsync("get", "networktuningnodestates", name);
        Assert.True(code == 0, stderr);
        Assert.Equal(["NAME", "APPLIED", "DEGRADED", "GENERATION", "REVERT", "AGE"], stdout.Split('\n')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Matches($@"{name}\s+True\s+1\s+false", stdout);
        await DeleteAsync(NetworkTuningNodeState.Plural, name);
    }

    private Task DeleteAsync(string plural, string name) =>
        Cluster.Client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, plural, name);

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)];
}
