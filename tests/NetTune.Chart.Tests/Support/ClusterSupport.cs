using System.Net;
using System.Text;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests.Support;

/// <summary>A real cluster without the NetTune CRDs: the chart brings them (helm sends its crds/ folder on install).</summary>
public sealed class BareClusterFixture : IAsyncLifetime
{
    private KubeCluster? _cluster;

    public KubeCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster has not started");

    public async Task InitializeAsync() => _cluster = await KubeCluster.StartAsync();

    public async Task DisposeAsync()
    {
        if (_cluster is not null) await _cluster.DisposeAsync();
    }
}

[CollectionDefinition("helm-cluster")]
public sealed class HelmClusterCollection : ICollectionFixture<BareClusterFixture>;

public static class ClusterSupport
{
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(250);
        }
        Assert.Fail($"timed out after {seconds}s waiting for {what}");
    }

    /// <summary>The token the token controller issued for a ServiceAccount (a v1.20 cluster: a Secret per account).</summary>
    public static async Task<string> ServiceAccountTokenAsync(IKubernetes admin, string ns, string serviceAccount)
    {
        string? token = null;
        await WaitUntilAsync(async () =>
        {
            var secrets = await admin.CoreV1.ListNamespacedSecretAsync(ns);
            var secret = secrets.Items.FirstOrDefault(s => s.Type == "kubernetes.io/service-account-token"
                && s.Metadata.Annotations is { } a && a.TryGetValue("kubernetes.io/service-account.name", out var owner) && owner == serviceAccount
                && s.Data?.ContainsKey("token") == true);
            if (secret is not null) token = Encoding.UTF8.GetString(secret.Data["token"]);
            return token is not null;
        }, $"a token for ServiceAccount {ns}/{serviceAccount}");
        return token!;
    }

    public static Kubernetes ClientFor(KubeCluster cluster, string token, string user) =>
        new(KubernetesClientConfiguration.BuildConfigFromConfigFile(
            cluster.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"{user}-{Guid.NewGuid():N}.kubeconfig"), token, user)));

    /// <summary>A call that RBAC allows; new bindings reach the authorizer's cache within a moment, so 403 is retried a while.</summary>
    public static async Task<T> AllowedAsync<T>(Func<Task<T>> call, string what)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden && attempt < 40)
            {
                await Task.Delay(250);
            }
            catch (HttpOperationException e)
            {
                throw new Xunit.Sdk.XunitException($"{what}: {(int)e.Response.StatusCode} {e.Response.Content}");
            }
        }
    }

    public static Task AllowedAsync(Func<Task> call, string what) => AllowedAsync(async () => { await call(); return 0; }, what);

    public static async Task ForbiddenAsync(Func<Task> call, string what)
    {
        try
        {
            await call();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden)
        {
            return;
        }
        catch (HttpOperationException e)
        {
            throw new Xunit.Sdk.XunitException($"{what}: expected 403 Forbidden, got {(int)e.Response.StatusCode} {e.Response.Content}");
        }
        throw new Xunit.Sdk.XunitException($"{what}: expected 403 Forbidden, but it was allowed");
    }

    /// <summary>Every object of every listable namespaced kind in a namespace, as kind/name.</summary>
    public static async Task<List<string>> NamespaceObjectsAsync(KubeCluster cluster, string ns)
    {
        var kinds = await cluster.KubectlAsync("api-resources", "--namespaced=true", "--verbs=list", "-o", "name");
        Assert.True(kinds.ExitCode == 0, kinds.Stderr);
        var listable = kinds.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(k => k is not ("events" or "events.events.k8s.io")).ToList();
        var got = await cluster.KubectlAsync("get", string.Join(',', listable), "-n", ns, "-o", "name", "--ignore-not-found");
        Assert.True(got.ExitCode == 0, got.Stderr);
        return got.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>What every namespace holds without anyone asking: the default ServiceAccount, its token, the root CA.</summary>
    public static bool IsNamespaceFurniture(string kindName) =>
        kindName is "serviceaccount/default" or "configmap/kube-root-ca.crt" || kindName.StartsWith("secret/default-token-", StringComparison.Ordinal);

    /// <summary>Every object anywhere that carries a label, as kind/name (namespaced ones with their namespace).</summary>
    public static async Task<List<string>> LabelledObjectsAsync(KubeCluster cluster, string selector)
    {
        var kinds = await cluster.KubectlAsync("api-resources", "--verbs=list", "-o", "name");
        var listable = kinds.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(k => k is not ("events" or "events.events.k8s.io")).ToList();
        var got = await cluster.KubectlAsync("get", string.Join(',', listable), "-A", "-l", selector, "-o",
            "custom-columns=KIND:.kind,NS:.metadata.namespace,NAME:.metadata.name", "--no-headers", "--ignore-not-found");
        Assert.True(got.ExitCode == 0, got.Stderr);
        return got.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
    }
}

