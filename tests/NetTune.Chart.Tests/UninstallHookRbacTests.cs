using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.Operator;
using NetTune.Operator.Core.Builders;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests;

/// <summary>
/// The pre-delete hook's ServiceAccount and RBAC, as the chart renders them, are enough for `nettune-operator
/// uninstall` against a real API server (no kubelet here runs the Job itself: the same command runs in-process with
/// the hook's token).
/// </summary>
[Collection("helm-cluster")]
public sealed class UninstallHookRbacTests(BareClusterFixture fixture, ITestOutputHelper output)
{
    private KubeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task TheHooksTokenMayDeleteTheTuningsAndReadTheRest()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var ns = $"hook-{id}";
        var admin = Cluster.Client;
        await Cluster.InstallCrdsAsync();
        // The hook reads the node components' namespace (the chart's nodeNamespace), which another template makes.
        var nodes = ns + "-node";
        await admin.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        await admin.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = nodes } });
        var rendered = await Tool.HelmOkAsync("3", "template", "hook", Tool.ChartDir, "--namespace", ns, "--show-only", "templates/uninstall-hook.yaml");
        // Everything but the Job, which needs a kubelet.
        var rbac = string.Join("\n---\n", rendered.Split("\n---\n").Where(d => !d.Contains("kind: Job\n", StringComparison.Ordinal)));
        var applied = await Tool.RunAsync("kubectl", ["--kubeconfig", Cluster.KubeconfigPath, "apply", "-f", "-"], stdin: rbac);
        Assert.True(applied.ExitCode == 0, applied.Output);
        const string account = "hook-nettune-uninstall";
        try
        {
            // What the hook finds: a tuning (its finalizer already gone, as after the revert) and a reverted NodeState.
            var tuning = $"hook-{id}";
            await admin.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
            {
                Metadata = new V1ObjectMeta { Name = tuning },
                Spec = new NetworkTuningSpec { NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["hook"] = id } } },
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
            var node = $"hook-{id}-node";
            await admin.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuningNodeState
            {
                Metadata = new V1ObjectMeta { Name = node },
                Spec = new NodeStateSpec { NodeName = node, Revert = true },
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);

            var token = await ClusterSupport.ServiceAccountTokenAsync(admin, ns, account);
            using var hook = ClusterSupport.ClientFor(Cluster, token, "uninstall");
            var log = new StringWriter();
            var code = await new Uninstaller(hook, nodes, log) { PollInterval = TimeSpan.FromMilliseconds(200) }.RunAsync(TimeSpan.FromSeconds(30));
            output.WriteLine(log.ToString());
            Assert.True(code == 0, log.ToString());
            Assert.Contains($"deleted NetworkTuning {tuning}", log.ToString());
            Assert.Contains($"deleted NetworkTuningNodeState {node} (reverted)", log.ToString());

            // And nothing beyond that: no NetworkTuning writes, no DaemonSet deletes, nothing in other namespaces.
            await ClusterSupport.ForbiddenAsync(() => hook.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
            {
                Metadata = new V1ObjectMeta { Name = $"hook-{id}-new" },
                Spec = new NetworkTuningSpec(),
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural), "creating a NetworkTuning");
            await ClusterSupport.ForbiddenAsync(() => hook.AppsV1.DeleteNamespacedDaemonSetAsync(Names.AgentDaemonSet, nodes), "deleting the agent DaemonSet");
            await ClusterSupport.ForbiddenAsync(() => hook.CoreV1.ListNamespacedPodAsync("default"), "listing pods elsewhere");
        }
        finally
        {
            await Tool.RunAsync("kubectl", ["--kubeconfig", Cluster.KubeconfigPath, "delete", "--ignore-not-found", "-f", "-"], stdin: rbac);
            await admin.CoreV1.DeleteNamespaceAsync(ns);
            await admin.CoreV1.DeleteNamespaceAsync(nodes);
        }
    }
}
