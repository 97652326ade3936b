using System.Text.Json;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.ControllerRuntime;
using NetTune.Operator;
using NetTune.Operator.Core.Builders;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests;

/// <summary>
/// The chart's RBAC is enough and no more: the operator, running with its ServiceAccount's token, reconciles a
/// NetworkTuning (NodeStates, agent DaemonSet and ServiceAccount, status, finalizer, Lease, events); the agent's token
/// reads its NodeState and writes its status but cannot touch the spec, secrets or other kinds.
/// </summary>
[Collection("helm-cluster")]
public sealed class RbacTests(BareClusterFixture fixture, ITestOutputHelper output)
{
    private KubeCluster Cluster => fixture.Cluster;
    private const string Group = ApiGroup.Name;
    private const string Version = ApiGroup.Version;

    [Fact]
    public async Task TheOperatorReconcilesWithItsTokenAndTheAgentMayOnlyReport()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var ns = $"rbac-{id}";
        // The chart makes the node components' namespace (nodeNamespace), labelled for Pod Security level privileged.
        var nodes = ns + "-node";
        const string release = "nettune";
        var admin = Cluster.Client;
        // As `make demo` does: the chart without the operator Deployment; the operator runs here with the chart's token.
        var notes = await Tool.HelmOkAsync("3", "install", release, Tool.ChartDir, "-n", ns, "--create-namespace", "--kubeconfig", Cluster.KubeconfigPath,
            "--set", "operator.enabled=false");
        Assert.Contains("The operator Deployment is off", notes);
        Assert.Empty((await admin.AppsV1.ListNamespacedDeploymentAsync(ns)).Items);
        Assert.Equal("privileged", (await admin.CoreV1.ReadNamespaceAsync(nodes)).Metadata.Labels["pod-security.kubernetes.io/enforce"]);
        await ClusterSupport.WaitUntilAsync(async () =>
            (await admin.ApiextensionsV1.ReadCustomResourceDefinitionAsync("networktunings.nettune.io")).Status?.Conditions?
                .Any(c => c.Type == "Established" && c.Status == "True") == true, "the CRDs");

        var node = $"rbac-{id}-node";
        var other = $"rbac-{id}-other";
        // The sample selects nodes labelled nettune.io/role=web on Linux; the other node is not one.
        var web = new Dictionary<string, string> { ["nettune.io/role"] = "web", ["kubernetes.io/os"] = "linux" };
        await admin.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node, Labels = web } });
        await admin.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = other, Labels = new Dictionary<string, string> { ["kubernetes.io/os"] = "linux" } } });
        const string tuning = "web-tier";
        using var loggers = LoggerFactory.Create(b => b.AddProvider(new OutputLoggerProvider(output)).SetMinimumLevel(LogLevel.Information));
        OperatorHost? host = null;
        try
        {
            // The operator, as the chart's Deployment would run it, with the chart's ServiceAccount token.
            var operatorToken = await ClusterSupport.ServiceAccountTokenAsync(admin, ns, "nettune-operator");
            using var operatorClient = ClusterSupport.ClientFor(Cluster, operatorToken, "operator");
            host = new OperatorHost(operatorClient, new OperatorOptions
            {
                Namespace = ns,
                NodeNamespace = nodes,
                AgentImage = $"nettune/agent:{TheChart.AppVersion}",
                LeaderElect = true,
                LeaseName = "nettune-operator",
                Identity = $"chart-test-{id}",
                RevertTimeout = TimeSpan.FromSeconds(3),
                // No kubelet here finishes a graceful pod deletion.
                PodDeleteGraceSeconds = 0,
                ResyncPeriod = TimeSpan.FromSeconds(20),
                Informer = new InformerOptions { RetryDelay = TimeSpan.FromMilliseconds(200), MaxRetryDelay = TimeSpan.FromSeconds(1) },
                Queue = new WorkQueueOptions { BaseRetryDelay = TimeSpan.FromMilliseconds(100), MaxRetryDelay = TimeSpan.FromSeconds(1) },
            }, loggers);
            await host.StartAsync();

            var applied = await Cluster.KubectlAsync("apply", "-f", Path.Combine(Tool.RepoRoot, "samples", "networktuning-basic.yaml"));
            Assert.True(applied.ExitCode == 0, applied.Stderr);

            await ClusterSupport.WaitUntilAsync(async () => (await NodeStateAsync(admin, node)) is not null, "the operator to write the node's NodeState", 90);
            await ClusterSupport.WaitUntilAsync(async () => (await admin.AppsV1.ListNamespacedDaemonSetAsync(nodes)).Items.Any(d => d.Metadata.Name == Names.AgentDaemonSet),
                "the operator to create the agent DaemonSet");
            // The agents are placed by a node label the operator sets (nodes: patch).
            await ClusterSupport.WaitUntilAsync(async () => (await admin.CoreV1.ReadNodeAsync(node)).Metadata.Labels.TryGetValue(Names.AgentNodeLabel, out var on) && on == "true",
                "the operator to label the node for its agent");
            Assert.False((await admin.CoreV1.ReadNodeAsync(other)).Metadata.Labels.ContainsKey(Names.AgentNodeLabel));
            await ClusterSupport.WaitUntilAsync(async () =>
            {
                var t = await TuningAsync(admin, tuning);
                return t?.Metadata.Finalizers?.Contains(Names.Finalizer) == true && t.Status is not null;
            }, "the operator to put its finalizer and a status on the NetworkTuning");
            var lease = await admin.CoordinationV1.ReadNamespacedLeaseAsync("nettune-operator", ns);
            Assert.Equal($"chart-test-{id}", lease.Spec.HolderIdentity);
            await admin.CoreV1.ReadNamespacedServiceAccountAsync(Names.AgentServiceAccount, nodes);

            // What the operator's token may not do.
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.ListNamespacedSecretAsync(ns), "operator lists secrets");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.ListNamespacedConfigMapAsync("kube-system"), "operator lists kube-system configmaps");
            // It lists the pods of a node (cluster-wide, for the memory they request) but makes and deletes pods only in its namespace.
            await operatorClient.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={other}");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.DeleteNamespacedPodAsync("any", "default"), "operator deletes pods outside its namespace");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.ReadNamespacedPodAsync("any", "default"), "operator reads a pod outside its namespace");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.CreateNamespacedPodAsync(new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = "x" },
                Spec = new V1PodSpec { Containers = [new V1Container { Name = "x", Image = "x" }] },
            }, ns), "operator creates a pod in the release namespace, which holds only the operator");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.DeleteNodeAsync(other), "operator deletes a node");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.RbacAuthorizationV1.CreateClusterRoleAsync(new V1ClusterRole { Metadata = new V1ObjectMeta { Name = $"x-{id}" } }),
                "operator creates a ClusterRole");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "x" } }, "default"),
                "operator creates a ServiceAccount outside its namespace");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.DeleteNamespacedServiceAccountAsync("default", ns),
                "operator deletes a ServiceAccount that is not the agent's");

            // The agent, with the token of the ServiceAccount the operator created for it.
            var agentToken = await ClusterSupport.ServiceAccountTokenAsync(admin, nodes, Names.AgentServiceAccount);
            using var agent = ClusterSupport.ClientFor(Cluster, agentToken, "agent");
            var state = await ClusterSupport.AllowedAsync(() => agent.CustomObjects.GetClusterCustomObjectAsync<NetworkTuningNodeState>(Group, Version, NetworkTuningNodeState.Plural, node),
                "agent reads its NodeState");
            Assert.Equal(node, state.Metadata.Name);
            var listed = await ClusterSupport.AllowedAsync(() => agent.CustomObjects.ListClusterCustomObjectAsync<NetworkTuningNodeStateList>(Group, Version, NetworkTuningNodeState.Plural,
                fieldSelector: $"metadata.name={node}"), "agent lists its NodeState by name");
            Assert.Equal(node, Assert.Single(listed.Items).Metadata.Name);
            await ClusterSupport.AllowedAsync(async () =>
            {
                // A watch that ends by itself after a second: the server lets it open.
                await foreach (var _ in agent.CustomObjects.WatchListClusterCustomObjectAsync(Group, Version, NetworkTuningNodeState.Plural,
                                   fieldSelector: $"metadata.name={node}", timeoutSeconds: 1)) { }
            }, "agent watches its NodeState");
            var statusPatch = new V1Patch(JsonSerializer.Serialize(new { status = new { agentVersion = "chart-rbac-test" } }), V1Patch.PatchType.MergePatch);
            await ClusterSupport.AllowedAsync(() => agent.CustomObjects.PatchClusterCustomObjectStatusAsync(statusPatch, Group, Version, NetworkTuningNodeState.Plural, node),
                "agent patches its NodeState status");
            Assert.Equal("chart-rbac-test", (await NodeStateAsync(admin, node))!.Status?.AgentVersion);
            var read = await ClusterSupport.AllowedAsync(() => agent.CoreV1.ReadNodeAsync(node), "agent reads its Node");
            Assert.Equal(node, read.Metadata.Name);

            // The agent reports the node applied, with a two-socket topology: the operator then starts one data-plane
            // pod per socket (pods create in its namespace).
            var generation = (await NodeStateAsync(admin, node))!.Metadata.Generation;
            var now = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
            var report = new V1Patch(JsonSerializer.Serialize(new
            {
                status = new
                {
                    observedGeneration = generation,
                    lastAppliedGeneration = generation,
                    conditions = new[] { new { type = "Applied", status = "True", reason = "Applied", message = "chart test", lastTransitionTime = now, observedGeneration = generation } },
                    topology = new { onlineCpus = "0-7", numaNodes = new[] { new { id = 0, cpus = "0-3" }, new { id = 1, cpus = "4-7" } } },
                },
            }), V1Patch.PatchType.MergePatch);
            await ClusterSupport.AllowedAsync(() => agent.CustomObjects.PatchClusterCustomObjectStatusAsync(report, Group, Version, NetworkTuningNodeState.Plural, node),
                "agent reports Applied with its topology");
            // As the node's kubelet would after counting the sample's hugepages (512 × 2 MiB per socket) and the agent's
            // device plugin registered each NUMA node's resource.
            var pages = new Dictionary<string, string>
            {
                ["cpu"] = "8", ["hugepages-2Mi"] = "2Gi", [NumaResources.ResourceName(0)] = "4", [NumaResources.ResourceName(1)] = "4",
            };
            await admin.CoreV1.PatchNodeStatusAsync(new V1Patch(JsonSerializer.Serialize(new { status = new { allocatable = pages, capacity = pages } }), V1Patch.PatchType.MergePatch), node);
            await ClusterSupport.WaitUntilAsync(async () =>
                (await admin.CoreV1.ListNamespacedPodAsync(nodes, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}")).Items.Count == 2,
                "the operator to create a data-plane pod per socket", 90);

            var specPatch = new V1Patch(JsonSerializer.Serialize(new { spec = new { dryRun = true } }), V1Patch.PatchType.MergePatch);
            await ClusterSupport.ForbiddenAsync(() => agent.CustomObjects.PatchClusterCustomObjectAsync(specPatch, Group, Version, NetworkTuningNodeState.Plural, node),
                "agent patches its NodeState spec");
            var current = (await NodeStateAsync(admin, node))!;
            current.Spec.DryRun = true;
            await ClusterSupport.ForbiddenAsync(() => agent.CustomObjects.ReplaceClusterCustomObjectAsync(current, Group, Version, NetworkTuningNodeState.Plural, node),
                "agent updates its NodeState");
            await ClusterSupport.ForbiddenAsync(() => agent.CustomObjects.DeleteClusterCustomObjectAsync(Group, Version, NetworkTuningNodeState.Plural, node),
                "agent deletes its NodeState");
            await ClusterSupport.ForbiddenAsync(() => agent.CustomObjects.CreateClusterCustomObjectAsync(
                new NetworkTuningNodeState { Metadata = new V1ObjectMeta { Name = $"fake-{id}" }, Spec = new NodeStateSpec { NodeName = $"fake-{id}" } },
                Group, Version, NetworkTuningNodeState.Plural), "agent creates a NodeState");
            await ClusterSupport.ForbiddenAsync(() => agent.CustomObjects.ListClusterCustomObjectAsync(Group, Version, NetworkTuning.Plural), "agent lists NetworkTunings");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.ListNamespacedSecretAsync(nodes), "agent lists secrets in its namespace");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.ListSecretForAllNamespacesAsync(), "agent lists all secrets");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.ListNodeAsync(), "agent lists nodes");
            // The agent writes no Node, not even its own readiness label (the operator sets that from the status):
            // a stolen agent token can neither relabel nor untaint any node.
            var tunedLabel = new V1Patch("{\"metadata\":{\"labels\":{\"nettune.io/tuned\":\"true\"}}}", V1Patch.PatchType.MergePatch);
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.PatchNodeAsync(tunedLabel, node), "agent labels its own Node");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.PatchNodeAsync(tunedLabel, other), "agent labels another Node");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.PatchNodeAsync(new V1Patch("{\"metadata\":{\"labels\":{\"nettune.io/role\":\"web\"}}}", V1Patch.PatchType.MergePatch), other),
                "agent pulls another Node into a selector");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.PatchNodeAsync(new V1Patch("{\"spec\":{\"taints\":null,\"unschedulable\":false}}", V1Patch.PatchType.MergePatch), node),
                "agent removes its Node's taints");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.PatchNodeStatusAsync(new V1Patch("{\"status\":{\"allocatable\":{\"cpu\":\"64\"}}}", V1Patch.PatchType.MergePatch), node),
                "agent patches its Node's status");
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.DeleteNodeAsync(other), "agent deletes a Node");
            // The status the agent reported (Applied) is what the operator's token sets the label from.
            await ClusterSupport.WaitUntilAsync(async () => (await admin.CoreV1.ReadNodeAsync(node)).Metadata.Labels.TryGetValue(NodeLabels.Tuned, out var tuned) && tuned == NodeLabels.TunedValue,
                "the operator to set the node's tuned label from the NodeState's status");
            Assert.False((await admin.CoreV1.ReadNodeAsync(other)).Metadata.Labels.ContainsKey(NodeLabels.Tuned));
            await ClusterSupport.ForbiddenAsync(() => agent.CoreV1.ListNamespacedPodAsync(nodes), "agent lists pods");
            await ClusterSupport.ForbiddenAsync(() => agent.AppsV1.ListNamespacedDaemonSetAsync(nodes), "agent lists DaemonSets");

            // Deleting the tuning: the operator deletes the data-plane pods, asks the node to revert (the tuned label
            // goes at once), times out waiting for the agent and drops its finalizer. The node has not reported
            // Reverted, so its agent label and the agent DaemonSet stay.
            await admin.CustomObjects.DeleteClusterCustomObjectAsync(Group, Version, NetworkTuning.Plural, tuning);
            await ClusterSupport.WaitUntilAsync(async () => await TuningAsync(admin, tuning) is null, "the NetworkTuning to go", 90);
            await ClusterSupport.WaitUntilAsync(async () =>
                (await admin.CoreV1.ListNamespacedPodAsync(nodes, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}")).Items.Count == 0,
                "the operator to delete the data-plane pods");
            var asked = (await NodeStateAsync(admin, node))!;
            Assert.True(asked.Spec.Revert);
            Assert.False((await admin.CoreV1.ReadNodeAsync(node)).Metadata.Labels.ContainsKey(NodeLabels.Tuned));
            Assert.Equal("true", (await admin.CoreV1.ReadNodeAsync(node)).Metadata.Labels[Names.AgentNodeLabel]);
            Assert.Single((await admin.AppsV1.ListNamespacedDaemonSetAsync(nodes)).Items);

            // The agent reports the revert with its token: nothing is left to revert, so the agents go.
            var revertedAt = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
            var reverted = new V1Patch(JsonSerializer.Serialize(new
            {
                status = new
                {
                    observedGeneration = asked.Metadata.Generation,
                    conditions = new[] { new { type = "Reverted", status = "True", reason = "Reverted", message = "chart test", lastTransitionTime = revertedAt, observedGeneration = asked.Metadata.Generation } },
                },
            }), V1Patch.PatchType.MergePatch);
            await ClusterSupport.AllowedAsync(() => agent.CustomObjects.PatchClusterCustomObjectStatusAsync(reverted, Group, Version, NetworkTuningNodeState.Plural, node),
                "agent reports Reverted");
            await ClusterSupport.WaitUntilAsync(async () =>
                (await admin.AppsV1.ListNamespacedDaemonSetAsync(nodes)).Items.Count == 0
                && (await admin.CoreV1.ListNamespacedServiceAccountAsync(nodes)).Items.All(a => a.Metadata.Name != Names.AgentServiceAccount),
                "the operator to delete the agent DaemonSet and ServiceAccount");
            Assert.False((await admin.CoreV1.ReadNodeAsync(node)).Metadata.Labels.ContainsKey(Names.AgentNodeLabel));
        }
        finally
        {
            if (host is not null) await host.DisposeAsync();
            await admin.CoreV1.DeleteNodeAsync(node);
            await admin.CoreV1.DeleteNodeAsync(other);
        }

        await Tool.HelmOkAsync("3", "uninstall", release, "-n", ns, "--kubeconfig", Cluster.KubeconfigPath);
        // The chart's objects are gone; the Lease is the operator's, not the chart's, and stays with the namespace.
        await ClusterSupport.WaitUntilAsync(async () =>
            (await ClusterSupport.NamespaceObjectsAsync(Cluster, ns)).Where(o => !ClusterSupport.IsNamespaceFurniture(o))
                .SequenceEqual(["lease.coordination.k8s.io/nettune-operator"]), $"namespace {ns} to hold only the operator's Lease");
        // The node namespace the chart made goes with the release.
        await ClusterSupport.WaitUntilAsync(async () => !(await admin.CoreV1.ListNamespaceAsync()).Items.Any(n => n.Metadata.Name == nodes), $"namespace {nodes} to go");
        Assert.Empty(await ClusterSupport.LabelledObjectsAsync(Cluster, $"app.kubernetes.io/instance={release}"));
        await admin.CoreV1.DeleteNamespaceAsync(ns);
    }

    private static async Task<NetworkTuningNodeState?> NodeStateAsync(IKubernetes client, string name)
    {
        try
        {
            return await client.CustomObjects.GetClusterCustomObjectAsync<NetworkTuningNodeState>(Group, Version, NetworkTuningNodeState.Plural, name);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private static async Task<NetworkTuning?> TuningAsync(IKubernetes client, string name)
    {
        try
        {
            return await client.CustomObjects.GetClusterCustomObjectAsync<NetworkTuning>(Group, Version, NetworkTuning.Plural, name);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}
