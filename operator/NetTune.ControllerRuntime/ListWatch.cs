using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace NetTune.ControllerRuntime;

/// <summary>One page of a list: the items and the list's resourceVersion to watch from.</summary>
public sealed record ListPage<T>(IReadOnlyList<T> Items, string? ResourceVersion, string? Continue);

/// <summary>How to list and watch one kind of object through the official client.</summary>
public interface IListWatch<T> where T : IKubernetesObject<V1ObjectMeta>
{
    string Kind { get; }

    Task<ListPage<T>> ListAsync(string? continueToken, int limit, CancellationToken ct);

    /// <summary>Watch from <paramref name="resourceVersion"/>; the server ends the watch after <paramref name="timeoutSeconds"/>.</summary>
    Task<HttpOperationResponse<object>> StartWatchAsync(string resourceVersion, int timeoutSeconds, CancellationToken ct);
}

/// <summary>List/watch adapters for the kinds the operator uses.</summary>
public static class ListWatch
{
    public static IListWatch<V1Node> Nodes(IKubernetes client, string? labelSelector = null) => new Typed<V1Node, V1NodeList>("Node",
        async (cont, limit, ct) => await client.CoreV1.ListNodeWithHttpMessagesAsync(continueParameter: cont, limit: limit, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false),
        async (rv, timeout, ct) => Untyped(await client.CoreV1.ListNodeWithHttpMessagesAsync(watch: true, resourceVersion: rv, timeoutSeconds: timeout,
            allowWatchBookmarks: true, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false)),
        l => (l.Items, l.Metadata));

    public static IListWatch<V1Pod> Pods(IKubernetes client, string ns, string? labelSelector = null) => new Typed<V1Pod, V1PodList>("Pod",
        async (cont, limit, ct) => await client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(ns, continueParameter: cont, limit: limit, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false),
        async (rv, timeout, ct) => Untyped(await client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(ns, watch: true, resourceVersion: rv, timeoutSeconds: timeout,
            allowWatchBookmarks: true, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false)),
        l => (l.Items, l.Metadata));

    public static IListWatch<V1DaemonSet> DaemonSets(IKubernetes client, string ns, string? labelSelector = null) => new Typed<V1DaemonSet, V1DaemonSetList>("DaemonSet",
        async (cont, limit, ct) => await client.AppsV1.ListNamespacedDaemonSetWithHttpMessagesAsync(ns, continueParameter: cont, limit: limit, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false),
        async (rv, timeout, ct) => Untyped(await client.AppsV1.ListNamespacedDaemonSetWithHttpMessagesAsync(ns, watch: true, resourceVersion: rv, timeoutSeconds: timeout,
            allowWatchBookmarks: true, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false)),
        l => (l.Items, l.Metadata));

    /// <summary>A cluster-scoped custom resource.</summary>
    public static IListWatch<T> ClusterCustom<T, TList>(IKubernetes client, string kind, string group, string version, string plural)
        where T : IKubernetesObject<V1ObjectMeta>
        where TList : IKubernetesObject<V1ListMeta>, IItems<T> => new Typed<T, TList>(kind,
        async (cont, limit, ct) =>
        {
            var response = await client.CustomObjects.ListClusterCustomObjectWithHttpMessagesAsync(group, version, plural,
                continueParameter: cont, limit: limit, cancellationToken: ct).ConfigureAwait(false);
            var list = KubernetesJson.Deserialize<TList>((JsonElement)response.Body);
            return new HttpOperationResponse<TList> { Body = list, Request = response.Request, Response = response.Response };
        },
        (rv, timeout, ct) => client.CustomObjects.ListClusterCustomObjectWithHttpMessagesAsync(group, version, plural, watch: true,
            resourceVersion: rv, timeoutSeconds: timeout, allowWatchBookmarks: true, cancellationToken: ct),
        l => ((IList<T>)l.Items, l.Metadata));

    private static HttpOperationResponse<object> Untyped<TList>(HttpOperationResponse<TList> typed) =>
        new() { Body = typed.Body!, Request = typed.Request, Response = typed.Response };

    private sealed class Typed<T, TList>(
        string kind,
        Func<string?, int, CancellationToken, Task<HttpOperationResponse<TList>>> list,
        Func<string, int, CancellationToken, Task<HttpOperationResponse<object>>> watch,
        Func<TList, (IList<T> Items, V1ListMeta Meta)> split) : IListWatch<T>
        where T : IKubernetesObject<V1ObjectMeta>
    {
        public string Kind => kind;

        public async Task<ListPage<T>> ListAsync(string? continueToken, int limit, CancellationToken ct)
        {
            using var response = await list(continueToken, limit, ct).ConfigureAwait(false);
            var (items, meta) = split(response.Body);
            return new ListPage<T>([.. items], meta?.ResourceVersion, string.IsNullOrEmpty(meta?.ContinueProperty) ? null : meta.ContinueProperty);
        }

        public Task<HttpOperationResponse<object>> StartWatchAsync(string resourceVersion, int timeoutSeconds, CancellationToken ct) =>
            watch(resourceVersion, timeoutSeconds, ct);
    }
}

