using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests;

/// <summary>helm install, upgrade and uninstall into the real (v1.20) test cluster, with both helm majors.</summary>
[Collection("helm-cluster")]
public sealed class HelmInstallTests(BareClusterFixture fixture, ITestOutputHelper output)
{
    private KubeCluster Cluster => fixture.Cluster;
    private static string UpgradeValues => Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "values", "upgrade.yaml");
    private static string MonitoringCrds => Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "fixtures", "monitoring-crds.yaml");

    public static TheoryData<string> Helms => new(TheChart.HelmMajors);

    private Task<string> HelmAsync(string major, params string[] args) =>
        Tool.HelmOkAsync(major, [.. args, "--kubeconfig", Cluster.KubeconfigPath]);

    /// <summary>
    /// helm 4 applies server-side by default, and a v1.20 apiserver refuses the CRDs' x-kubernetes-validations in an
    /// apply patch ("field not declared in schema"; servers before 1.25 do not know the field). Client-side apply sends
    /// them as a plain create, which such servers accept and prune. The chart's NOTES say the same to users.
    /// </summary>
    private static string[] ApplyMode(string major) => major == "4" ? ["--server-side=false"] : [];

    [Theory, MemberData(nameof(Helms))]
    public async Task InstallsUpgradesAndUninstallsWithoutLeftovers(string major)
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var release = $"nt{major}-{id}";
        var ns = $"helm{major}-{id}";
        var client = Cluster.Client;
        var clusterScopedBefore = await ClusterScopedAsync();

        // Install: helm sends the chart's crds/ first (no client-side validation), then the templates.
        if (major == "4")
        {
            var refused = await Tool.HelmRunAsync(major, "install", release, Tool.ChartDir, "-n", ns, "--create-namespace", "--kubeconfig", Cluster.KubeconfigPath);
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("x-kubernetes-validations: field not declared in schema", refused.Stderr);
        }
        var installed = await HelmAsync(major, ["install", release, Tool.ChartDir, "-n", ns, "--create-namespace", .. ApplyMode(major)]);
        output.WriteLine(installed);
        Assert.Contains("NetTune", installed); // NOTES.txt
        foreach (var crd in new[] { "networktunings.nettune.io", "networktuningnodestates.nettune.io" })
        {
            await ClusterSupport.WaitUntilAsync(async () =>
            {
                var got = await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(crd);
                return got.Status?.Conditions?.Any(c => c.Type == "Established" && c.Status == "True") == true;
            }, $"CRD {crd} to be Established");
        }
        var fullname = $"{release}-nettune";
        var deployment = await client.AppsV1.ReadNamespacedDeploymentAsync($"{fullname}-operator", ns);
        Assert.Equal(2, deployment.Spec.Replicas);
        Assert.Equal($"nettune/operator:{TheChart.AppVersion}", deployment.Spec.Template.Spec.Containers[0].Image);
        await client.CoreV1.ReadNamespacedServiceAccountAsync($"{fullname}-operator", ns);
        await client.CoreV1.ReadNamespacedServiceAsync($"{fullname}-operator-metrics", ns);
        await client.CoreV1.ReadNamespacedServiceAsync($"{fullname}-agent-metrics", ns + "-node");
        Assert.Equal("privileged", (await client.CoreV1.ReadNamespaceAsync(ns + "-node")).Metadata.Labels["pod-security.kubernetes.io/enforce"]);
        await client.CoreV1.ReadNamespacedConfigMapAsync($"{fullname}-dashboard", ns);
        await client.RbacAuthorizationV1.ReadClusterRoleAsync($"{fullname}-operator");
        await client.RbacAuthorizationV1.ReadClusterRoleBindingAsync($"{fullname}-agent");
        await client.RbacAuthorizationV1.ReadNamespacedRoleAsync($"{fullname}-operator-events", "default");
        await client.PolicyV1beta1PodDisruptionBudgetExistsAsync(Cluster, ns, $"{fullname}-operator");

        // Upgrade: the monitoring objects need prometheus-operator's CRDs (stand-ins here).
        var crds = await Cluster.KubectlAsync("apply", "-f", MonitoringCrds);
        Assert.True(crds.ExitCode == 0, crds.Stderr);
        await ClusterSupport.WaitUntilAsync(async () =>
        {
            var list = await client.ApiextensionsV1.ListCustomResourceDefinitionAsync();
            return list.Items.Count(c => c.Spec.Group == "monitoring.coreos.com"
                && c.Status?.Conditions?.Any(x => x.Type == "Established" && x.Status == "True") == true) == 3;
        }, "the monitoring CRDs to be Established");
        output.WriteLine(await HelmAsync(major, ["upgrade", release, Tool.ChartDir, "-n", ns, "-f", UpgradeValues, .. ApplyMode(major)]));
        deployment = await client.AppsV1.ReadNamespacedDeploymentAsync($"{fullname}-operator", ns);
        Assert.Equal(1, deployment.Spec.Replicas);
        var container = deployment.Spec.Template.Spec.Containers[0];
        Assert.Equal("nettune/operator:upgraded", container.Image);
        Assert.Equal("Debug", container.Env("NETTUNE_LOG_LEVEL"));
        Assert.NotNull(deployment.Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution);
        foreach (var (plural, name) in new[] { ("servicemonitors", $"{fullname}-operator"), ("servicemonitors", $"{fullname}-agent"),
                     ("podmonitors", $"{fullname}-dataplane"), ("prometheusrules", fullname) })
            await client.CustomObjects.GetNamespacedCustomObjectAsync("monitoring.coreos.com", "v1", ns, plural, name);
        var status = await HelmAsync(major, "status", release, "-n", ns);
        Assert.Matches("(?m)^REVISION: 2$", status);
        Assert.Matches("(?m)^STATUS: deployed$", status);
        // With replicas 1 the budget goes (minAvailable 1 would block every eviction).
        Assert.Equal(1, deployment.Spec.Replicas);
        Assert.False(await PdbExistsAsync(ns, $"{fullname}-operator"));

        // Uninstall: nothing of the release is left but the CRDs (Helm never deletes those). No kubelet runs the
        // pre-delete Job here (helm would wait for it until its timeout); the operator's UninstallTests run its
        // command against a live operator, and the real-node suite runs the hook itself.
        output.WriteLine(await HelmAsync(major, "uninstall", release, "-n", ns, "--no-hooks"));
        await ClusterSupport.WaitUntilAsync(async () =>
            (await ClusterSupport.NamespaceObjectsAsync(Cluster, ns)).All(ClusterSupport.IsNamespaceFurniture), $"namespace {ns} to be empty");
        await ClusterSupport.WaitUntilAsync(async () => !(await client.CoreV1.ListNamespaceAsync()).Items.Any(n => n.Metadata.Name == ns + "-node"),
            $"the node namespace {ns}-node to go with the release");
        Assert.Empty(await ClusterSupport.LabelledObjectsAsync(Cluster, $"app.kubernetes.io/instance={release}"));
        var clusterScopedAfter = await ClusterScopedAsync();
        var added = clusterScopedAfter.Except(clusterScopedBefore).Where(n => !n.Contains("monitoring.coreos.com")).ToList();
        var removed = clusterScopedBefore.Except(clusterScopedAfter).ToList();
        Assert.Empty(removed);
        Assert.All(added, n => Assert.EndsWith(".nettune.io", n));
        await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("networktunings.nettune.io");
        await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("networktuningnodestates.nettune.io");
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => client.RbacAuthorizationV1.ReadNamespacedRoleAsync($"{fullname}-operator-events", "default"));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
        await client.CoreV1.DeleteNamespaceAsync(ns);
    }

    private async Task<bool> PdbExistsAsync(string ns, string name)
    {
        var got = await Cluster.KubectlAsync("get", "poddisruptionbudgets.policy", name, "-n", ns, "-o", "name", "--ignore-not-found");
        Assert.True(got.ExitCode == 0, got.Stderr);
        return got.Stdout.Trim().Length > 0;
    }

    /// <summary>Cluster-scoped objects a chart could leave: RBAC and CRDs.</summary>
    private async Task<HashSet<string>> ClusterScopedAsync()
    {
        var got = await Cluster.KubectlAsync("get", "clusterroles,clusterrolebindings,customresourcedefinitions", "-o", "name");
        Assert.True(got.ExitCode == 0, got.Stderr);
        return got.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
    }
}

internal static class PdbChecks
{
    /// <summary>On a v1.20 server the chart falls back to policy/v1beta1 (policy/v1 came in 1.21).</summary>
    public static async Task PolicyV1beta1PodDisruptionBudgetExistsAsync(this IKubernetes _, KubeCluster cluster, string ns, string name)
    {
        var got = await cluster.KubectlAsync("get", "poddisruptionbudgets.v1beta1.policy", name, "-n", ns, "-o", "jsonpath={.apiVersion} {.spec.minAvailable}");
        Assert.True(got.ExitCode == 0, got.Stderr);
        Assert.Equal("policy/v1beta1 1", got.Stdout.Trim());
    }
}
