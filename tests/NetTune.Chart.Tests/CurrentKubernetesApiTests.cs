using NetTune.Chart.Tests.Support;
using NetTune.Testing.Cluster;

namespace NetTune.Chart.Tests;

/// <summary>
/// Every object the chart renders (its CRDs too), with default and non-default values and both certificate sources,
/// is an object of the current Kubernetes API (<see cref="CurrentKubernetesApi.Release"/>), not only of the v1.20 test
/// cluster's: no kind or field removed or renamed since.
/// </summary>
public sealed class CurrentKubernetesApiTests
{
    /// <summary>Groups that are not Kubernetes' own (prometheus-operator, cert-manager): their typed models check them.</summary>
    private static bool OfKubernetes(Manifest m) => !m.ApiVersion.StartsWith("monitoring.coreos.com/", StringComparison.Ordinal)
                                                   && !m.ApiVersion.StartsWith("cert-manager.io/", StringComparison.Ordinal);

    [Fact]
    public async Task EveryObjectTheChartRendersIsOfTheCurrentApi()
    {
        var valueSets = new Dictionary<string, string[]>
        {
            ["default"] = ["--include-crds"],
            ["non-default"] = ["-f", TheChart.NonDefaultValues],
            ["upgrade"] = ["-f", Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "values", "upgrade.yaml")],
            ["cert-manager"] = ["--set", "operator.webhook.certificate.source=certManager"],
            ["no-webhook"] = ["--set", "operator.webhook.enabled=false"],
        };
        var objects = new List<(string, object)>();
        foreach (var (set, args) in valueSets)
            foreach (var m in (await TheChart.RenderAsync("3", args)).Where(OfKubernetes))
                objects.Add(($"{set}: {m.Kind} {m.Name}", m.Json));
        Assert.Contains(objects, o => o.Item1.StartsWith("default: CustomResourceDefinition", StringComparison.Ordinal));
        Assert.Contains(objects, o => o.Item1.StartsWith("default: Deployment", StringComparison.Ordinal));
        var problems = CurrentKubernetesApi.Check(objects).Where(p => p.Value.Count > 0).Select(p => $"{p.Key}: {string.Join("; ", p.Value)}").ToList();
        Assert.Empty(problems);
    }

    public static TheoryData<string, string, string> Removed => new()
    {
        // Kinds removed since v1.20 (all served by a v1.20 server).
        { "policy/v1beta1 PodSecurityPolicy (removed in 1.25)", """{"apiVersion":"policy/v1beta1","kind":"PodSecurityPolicy","metadata":{"name":"p"},"spec":{}}""", "not in this Kubernetes release's API" },
        { "batch/v1beta1 CronJob (removed in 1.25)", """{"apiVersion":"batch/v1beta1","kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"* * * * *"}}""", "not in this Kubernetes release's API" },
        { "policy/v1beta1 PodDisruptionBudget (removed in 1.25)", """{"apiVersion":"policy/v1beta1","kind":"PodDisruptionBudget","metadata":{"name":"p"},"spec":{"minAvailable":1}}""", "not in this Kubernetes release's API" },
        // Fields removed or renamed since v1.20.
        { "metadata.clusterName (removed in 1.25)", """{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"a","clusterName":"c"}}""", ".metadata.clusterName: no such field" },
        { "Service spec.topologyKeys (removed in 1.22)", """{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"topologyKeys":["*"],"ports":[{"port":80}]}}""", ".spec.topologyKeys: no such field" },
        { "Ingress spec.backend (renamed defaultBackend in networking.k8s.io/v1)", """{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i"},"spec":{"backend":{"serviceName":"s","servicePort":80}}}""", ".spec.backend: no such field" },
        // A misplaced field deep in a pod template, and a value outside its enum.
        { "a misspelt container field", """{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"d"},"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c","image":"i","resource":{}}]}}}}""", ".spec.template.spec.containers[0].resource: no such field" },
        { "a restartPolicy outside the enum", """{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"restartPolicy":"Sometimes","containers":[{"name":"c","image":"i"}]}}""", "restartPolicy must be equal to one of the allowed values" },
    };

    [Theory, MemberData(nameof(Removed))]
    public void KindsAndFieldsRemovedSinceV120AreRefused(string what, string json, string expected)
    {
        var problems = CurrentKubernetesApi.Check([(what, System.Text.Json.Nodes.JsonNode.Parse(json)!)])[what];
        Assert.Contains(problems, p => p.Contains(expected, StringComparison.Ordinal));
    }
}
