using System.Text.Json;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using NetTune.Operator;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests;

/// <summary>
/// The CRD upgrade path: Helm installs crds/ once and never upgrades them, so after `helm upgrade` a field the new API
/// added is pruned from every write. The chart's pre-upgrade hook replaces the CRDs first. Here the hook's rendered
/// ServiceAccount, RBAC and ConfigMap go to a real API server and its command runs in-process with the hook's token (no
/// kubelet here runs the Job; the end-to-end suite runs the Job itself on the real node).
/// </summary>
[Collection("helm-cluster")]
public sealed class CrdUpgradeHookTests(BareClusterFixture fixture, ITestOutputHelper output)
{
    /// <summary>
    /// The CRDs as they were before the commit that added spec.dataPlane.seccompProfile (12104c5), a copy kept here:
    /// what a cluster that installed the chart of that time still has.
    /// </summary>
    private static string PreviousCrds => Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "fixtures", "crds-c813f43");

    private KubeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task AFieldOnlyTheNewCrdHasSurvivesAWriteAfterTheUpgrade()
    {
        Assert.DoesNotContain("seccompProfile", await File.ReadAllTextAsync(Path.Combine(PreviousCrds, "nettune.io_networktunings.yaml")));
        var id = Guid.NewGuid().ToString("N")[..6];
        var ns = $"crdup-{id}";
        var release = $"crdup-{id}";
        var tuning = $"crdup-{id}";
        var admin = Cluster.Client;
        var log = new StringWriter();

        // The cluster as the previous chart left it: its CRDs (made to be so whatever an earlier test installed), and the
        // chart of that time installed (today's templates with the previous crds/; helm leaves existing CRDs alone).
        Assert.Equal(0, await new CrdUpgrader(admin, log).RunAsync(PreviousCrds, TimeSpan.FromSeconds(60)));
        var previousChart = Directory.CreateTempSubdirectory("nettune-previous-chart-").FullName;
        CopyFolder(Tool.ChartDir, previousChart);
        foreach (var crd in Directory.EnumerateFiles(Path.Combine(previousChart, "crds"))) File.Delete(crd);
        foreach (var crd in Directory.EnumerateFiles(PreviousCrds)) File.Copy(crd, Path.Combine(previousChart, "crds", Path.GetFileName(crd)));
        // No webhook (no operator runs here to answer it) and no uninstall hook (its Job would wait for a kubelet).
        string[] values = ["--set", "operator.webhook.enabled=false", "--set", "uninstall.enabled=false"];
        await Tool.HelmOkAsync("3", ["install", release, previousChart, "-n", ns, "--create-namespace", "--kubeconfig", Cluster.KubeconfigPath, .. values]);
        var rendered = await Tool.HelmOkAsync("3", ["template", release, Tool.ChartDir, "-n", ns, "--show-only", "templates/crd-upgrade-hook.yaml", .. values]);
        var hookObjects = string.Join("\n---\n", rendered.Split("\n---\n").Where(d => !d.Contains("kind: Job\n", StringComparison.Ordinal)));
        try
        {
            // Under the previous CRD the new field is pruned: what the upgrade has to change.
            await WriteTuningAsync(admin, tuning, id);
            Assert.Null(await SeccompProfileAsync(admin, tuning));

            // The pre-upgrade hook, as helm runs it before upgrading anything: its objects, then its command with its token
            // and the CRDs of its ConfigMap (what the Job's volume holds).
            var applied = await Tool.RunAsync("kubectl", ["--kubeconfig", Cluster.KubeconfigPath, "apply", "-f", "-"], stdin: hookObjects);
            Assert.True(applied.ExitCode == 0, applied.Output);
            var name = $"{release}-nettune-crd-upgrade";
            var volume = Directory.CreateTempSubdirectory("nettune-crd-hook-").FullName;
            foreach (var (file, text) in (await admin.CoreV1.ReadNamespacedConfigMapAsync(name, ns)).Data)
                await File.WriteAllTextAsync(Path.Combine(volume, file), text);
            Assert.Equal(["nettune.io_networktuningnodestates.yaml", "nettune.io_networktunings.yaml"],
                Directory.EnumerateFiles(volume).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
            var token = await ClusterSupport.ServiceAccountTokenAsync(admin, ns, name);
            using var hook = ClusterSupport.ClientFor(Cluster, token, "crd-upgrade");
            var hookLog = new StringWriter();
            var code = await new CrdUpgrader(hook, hookLog).RunAsync(volume, TimeSpan.FromSeconds(60));
            output.WriteLine(hookLog.ToString());
            Assert.True(code == 0, hookLog.ToString());
            Assert.Contains("replaced networktunings.nettune.io", hookLog.ToString());
            Directory.Delete(volume, recursive: true);
            await Tool.HelmOkAsync("3", ["upgrade", release, Tool.ChartDir, "-n", ns, "--kubeconfig", Cluster.KubeconfigPath, "--no-hooks", .. values]);

            // The same write now keeps the field, and a read gives it back.
            await WriteTuningAsync(admin, tuning, id);
            Assert.Equal("RuntimeDefault", await SeccompProfileAsync(admin, tuning));

            // And the hook's token may do no more than that to CRDs.
            await ClusterSupport.ForbiddenAsync(() => hook.ApiextensionsV1.DeleteCustomResourceDefinitionAsync("networktunings.nettune.io"), "deleting NetTune's CRD");
            await ClusterSupport.ForbiddenAsync(() => hook.ApiextensionsV1.ListCustomResourceDefinitionAsync(), "listing every CRD");
        }
        finally
        {
            try { await admin.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, tuning); }
            catch (k8s.Autorest.HttpOperationException) { }
            await Tool.RunAsync("kubectl", ["--kubeconfig", Cluster.KubeconfigPath, "delete", "--ignore-not-found", "-f", "-"], stdin: hookObjects);
            await Tool.HelmRunAsync("3", "uninstall", release, "-n", ns, "--kubeconfig", Cluster.KubeconfigPath);
            await admin.CoreV1.DeleteNamespaceAsync(ns);
            Directory.Delete(previousChart, recursive: true);
            // Today's CRDs again for the tests after this one.
            await Cluster.InstallCrdsAsync();
        }
    }

    /// <summary>Creates the tuning, or replaces its spec, with a data plane whose seccompProfile is RuntimeDefault.</summary>
    private static async Task WriteTuningAsync(IKubernetes admin, string name, string id)
    {
        var spec = new Dictionary<string, object>
        {
            ["nodeSelector"] = new Dictionary<string, object> { ["matchLabels"] = new Dictionary<string, string> { ["crd-upgrade"] = id } },
            ["dataPlane"] = new Dictionary<string, object> { ["enabled"] = false, ["seccompProfile"] = new Dictionary<string, string> { ["type"] = "RuntimeDefault" } },
        };
        try
        {
            var current = JsonSerializer.SerializeToNode(await admin.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name))!;
            current["spec"] = JsonSerializer.SerializeToNode(spec);
            await admin.CustomObjects.ReplaceClusterCustomObjectAsync(current, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            await admin.CustomObjects.CreateClusterCustomObjectAsync(new Dictionary<string, object>
            {
                ["apiVersion"] = ApiGroup.GroupVersion,
                ["kind"] = NetworkTuning.KindName,
                ["metadata"] = new Dictionary<string, string> { ["name"] = name },
                ["spec"] = spec,
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        }
    }

    private static async Task<string?> SeccompProfileAsync(IKubernetes admin, string name)
    {
        var json = JsonSerializer.SerializeToNode(await admin.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name))!;
        return (string?)json["spec"]?["dataPlane"]?["seccompProfile"]?["type"];
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
