using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Cluster.Tests;

/// <summary>The test cluster behaves like a real one: TLS and token auth, RBAC, garbage collection, DaemonSets.</summary>
[Collection("cluster")]
public sealed class ControlPlaneTests(ClusterFixture fixture)
{
    private KubeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task ServesTheApiOverTlsToTheAdminToken()
    {
        var version = await Cluster.Client.Version.GetCodeAsync();
        Assert.Equal("1", version.Major);
        var namespaces = await Cluster.Client.CoreV1.ListNamespaceAsync();
        Assert.Contains(namespaces.Items, n => n.Metadata.Name == "kube-system");
    }

    [Fact]
    public async Task RefusesAnUnknownToken()
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(
            Cluster.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.kubeconfig"), "not-a-token", "nobody"));
        using var client = new Kubernetes(config);
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ListNamespaceAsync());
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, e.Response.StatusCode);
    }

    [Fact]
    public async Task EnforcesRbacForServiceAccounts()
    {
        var ns = await CreateNamespaceAsync("rbac");
        await Cluster.Client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new() { Name = "reader" } }, ns);
        var token = await WaitForServiceAccountTokenAsync(ns, "reader");
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(
            Cluster.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"sa-{Guid.NewGuid():N}.kubeconfig"), token, "reader"));
        using var client = new Kubernetes(config);

        var denied = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ListNamespacedConfigMapAsync(ns));
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, denied.Response.StatusCode);

        await Cluster.Client.RbacAuthorizationV1.CreateNamespacedRoleAsync(new V1Role
        {
            Metadata = new() { Name = "cm-reader" },
            Rules = [new V1PolicyRule { ApiGroups = [""], Resources = ["configmaps"], Verbs = ["list"] }],
        }, ns);
        await Cluster.Client.RbacAuthorizationV1.CreateNamespacedRoleBindingAsync(new V1RoleBinding
        {
            Metadata = new() { Name = "cm-reader" },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "Role", Name = "cm-reader" },
            Subjects = [new Rbacv1Subject { Kind = "ServiceAccount", Name = "reader", NamespaceProperty = ns }],
        }, ns);
        var list = await Eventually(() => client.CoreV1.ListNamespacedConfigMapAsync(ns));
        Assert.NotNull(list);
    }

    [Fact]
    public async Task CollectsGarbageOfDeletedOwners()
    {
        var ns = await CreateNamespaceAsync("gc");
        var owner = await Cluster.Client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new() { Name = "owner" } }, ns);
        await Cluster.Client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap
        {
            Metadata = new()
            {
                Name = "dependent",
                OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "owner", Uid = owner.Metadata.Uid }],
            },
        }, ns);
        await Cluster.Client.CoreV1.DeleteNamespacedConfigMapAsync("owner", ns);
        await WaitUntilAsync(async () =>
        {
            var left = await Cluster.Client.CoreV1.ListNamespacedConfigMapAsync(ns);
            return left.Items.All(c => c.Metadata.Name != "dependent");
        }, "the garbage collector to delete the dependent");
    }

    [Fact]
    public async Task RunsTheDaemonSetControllerForRegisteredNodes()
    {
        var ns = await CreateNamespaceAsync("ds");
        var node = $"ds-node-{Guid.NewGuid():N}"[..20];
        await Cluster.Client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new() { Name = node, Labels = new Dictionary<string, string> { ["nettune-test/ds"] = ns } } });
        try
        {
            var labels = new Dictionary<string, string> { ["app"] = "probe" };
            await Cluster.Client.AppsV1.CreateNamespacedDaemonSetAsync(new V1DaemonSet
            {
                Metadata = new() { Name = "probe" },
                Spec = new V1DaemonSetSpec
                {
                    Selector = new V1LabelSelector { MatchLabels = labels },
                    Template = new V1PodTemplateSpec
                    {
                        Metadata = new() { Labels = labels },
                        Spec = new V1PodSpec
                        {
                            NodeSelector = new Dictionary<string, string> { ["nettune-test/ds"] = ns },
                            AutomountServiceAccountToken = false,
                            // New Node objects carry the not-ready taint until a kubelet reports Ready; none ever will.
                            Tolerations = [new V1Toleration { Key = "node.kubernetes.io/not-ready", OperatorProperty = "Exists" }],
                            Containers = [new V1Container { Name = "c", Image = "example.invalid/probe:1" }],
                        },
                    },
                },
            }, ns);
            await WaitUntilAsync(async () =>
            {
                var pods = await Cluster.Client.CoreV1.ListNamespacedPodAsync(ns);
                return pods.Items.Any(p => p.Spec.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution?.NodeSelectorTerms
                    .Any(t => t.MatchFields?.Any(f => f.Values.Contains(node)) == true) == true);
            }, "the DaemonSet controller to create a pod for the node");
        }
        finally
        {
            await Cluster.Client.CoreV1.DeleteNodeAsync(node);
        }
    }

    private async Task<string> CreateNamespaceAsync(string prefix)
    {
        var name = $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)];
        await Cluster.Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new() { Name = name } });
        return name;
    }

    private async Task<string> WaitForServiceAccountTokenAsync(string ns, string serviceAccount)
    {
        string? token = null;
        await WaitUntilAsync(async () =>
        {
            var secrets = await Cluster.Client.CoreV1.ListNamespacedSecretAsync(ns);
            var secret = secrets.Items.FirstOrDefault(s => s.Type == "kubernetes.io/service-account-token"
                && s.Metadata.Annotations is { } a && a.TryGetValue("kubernetes.io/service-account.name", out var owner) && owner == serviceAccount
                && s.Data?.ContainsKey("token") == true);
            if (secret is not null) token = System.Text.Encoding.UTF8.GetString(secret.Data["token"]);
            return token is not null;
        }, "the token controller to issue a service-account token");
        return token!;
    }

    // RBAC changes reach the authorizer's cache within a moment, not at once.
    private static async Task<T> Eventually<T>(Func<Task<T>> call)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Forbidden && attempt < 50)
            {
                await Task.Delay(200);
            }
        }
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(250);
        }
        Assert.Fail($"timed out after {seconds}s waiting for {what}");
    }
}
