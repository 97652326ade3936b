using System.Collections.Concurrent;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace NetTune.ControllerRuntime;

public sealed record InformerOptions
{
    /// <summary>Items per list page.</summary>
    public int PageSize { get; init; } = 500;
    /// <summary>The server ends each watch after a random time in [min, 2*min), so the watches of many clients do not line up.</summary>
    public TimeSpan WatchTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>How long past the server's timeout a silent watch is given before it is taken as hung and dropped.</summary>
    public TimeSpan HangGrace { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The first wait after a failed list or watch; it doubles per failure up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(5);
}

public enum CacheEvent { Added, Updated, Deleted }

/// <summary>
/// Keeps an in-memory copy of every object of one kind: lists, then watches from the list's resourceVersion;
/// re-watches from the last seen version when a watch ends, fails or hangs; lists anew on 410 Gone (the version was
/// compacted away), telling handlers about whatever changed meanwhile.
/// </summary>
public sealed class Informer<T> where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly IListWatch<T> _source;
    private readonly InformerOptions _options;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, T> _cache = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _resourceVersion;

    private readonly Func<T, T> _transform;

    /// <param name="transform">
    /// Trims each object before it is cached (the cache holds every object of the kind for the process's life): by
    /// default only managedFields go; a Node informer can keep just its metadata.
    /// </param>
    public Informer(IListWatch<T> source, InformerOptions options, ILogger log, Func<T, T>? transform = null)
    {
        _source = source;
        _options = options;
        _log = log;
        _transform = transform ?? DropManagedFields;
    }

    public static T DropManagedFields(T obj)
    {
        obj.Metadata.ManagedFields = null;
        return obj;
    }

    public string Kind => _source.Kind;

    /// <summary>Called for every change of the cache: (event, old object or null, new object or null).</summary>
    public event Action<CacheEvent, T?, T?>? Changed;

    /// <summary>Called when a watch is restarted, with the reason: closed, error, hung or gone (410, so a relist).</summary>
    public event Action<string>? WatchRestarted;

    public Task Synced => _synced.Task;

    public bool HasSynced => _synced.Task.IsCompleted;

    public static string KeyOf(T obj) =>
        string.IsNullOrEmpty(obj.Metadata.NamespaceProperty) ? obj.Metadata.Name : obj.Metadata.NamespaceProperty + "/" + obj.Metadata.Name;

    public T? Get(string key) => _cache.TryGetValue(key, out var value) ? value : null;

    public IReadOnlyList<T> List() => [.. _cache.Values];

    public int Count => _cache.Count;

    /// <summary>
    /// Puts an object the caller just wrote into the cache, unless the cache already holds a newer version: the next
    /// reconcile then sees its own writes even before their watch events arrive.
    /// </summary>
    public void Remember(T written)
    {
        written = _transform(written);
        var key = KeyOf(written);
        while (true)
        {
            if (!_cache.TryGetValue(key, out var current))
            {
                if (_cache.TryAdd(key, written)) return;
                continue;
            }
            if (!IsNewer(written, current) || _cache.TryUpdate(key, written, current)) return;
        }
    }

    /// <summary>Drops an object the caller just deleted.</summary>
    public void Forget(string key) => _cache.TryRemove(key, out _);

    public async Task RunAsync(CancellationToken ct)
    {
        var failures = 0;
        var needList = true;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (needList)
                {
                    await RelistAsync(ct).ConfigureAwait(false);
                    needList = false;
                }
                var started = DateTime.UtcNow;
                var outcome = await WatchOnceAsync(ct).ConfigureAwait(false);
                // A watch the server closes at once is no success: back off rather than spin.
                var quick = DateTime.UtcNow - started < TimeSpan.FromSeconds(1);
                failures = outcome == "closed" && !quick ? 0 : failures + 1;
                if (outcome == "gone") needList = true;
                WatchRestarted?.Invoke(outcome);
                if (outcome is "error" or "hung" || quick) await DelayAsync(failures, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                failures++;
                if (IsGone(e)) needList = true;
                _log.LogWarning("{Kind}: {Stage} failed ({Failures} in a row): {Error}", Kind, needList ? "list" : "watch", failures, e.Message);
                WatchRestarted?.Invoke(IsGone(e) ? "gone" : "error");
                await DelayAsync(failures, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task DelayAsync(int failures, CancellationToken ct)
    {
        var delay = Backoff.Delay(_options.RetryDelay, _options.MaxRetryDelay, failures);
        try { await Task.Delay(delay, ct).ConfigureAwait(false); }
        catch (OperationCanceledException) { }
    }

    private async Task RelistAsync(CancellationToken ct)
    {
        var fresh = new Dictionary<string, T>(StringComparer.Ordinal);
        string? cont = null;
        string? version;
        do
        {
            var page = await _source.ListAsync(cont, _options.PageSize, ct).ConfigureAwait(false);
            foreach (var item in page.Items) fresh[KeyOf(item)] = _transform(item);
            version = page.ResourceVersion;
            cont = page.Continue;
        } while (cont is not null);

        foreach (var (key, old) in _cache)
        {
            if (!fresh.ContainsKey(key) && _cache.TryRemove(key, out _)) Changed?.Invoke(CacheEvent.Deleted, old, null);
        }
        foreach (var (key, item) in fresh)
        {
            if (_cache.TryGetValue(key, out var old))
            {
                _cache[key] = item;
                if (old.Metadata.ResourceVersion != item.Metadata.ResourceVersion) Changed?.Invoke(CacheEvent.Updated, old, item);
            }
            else
            {
                _cache[key] = item;
                Changed?.Invoke(CacheEvent.Added, null, item);
            }
        }
        _resourceVersion = version;
        _log.LogInformation("{Kind}: listed {Count} objects at resourceVersion {Version}", Kind, fresh.Count, version);
        _synced.TrySetResult();
    }

    /// <summary>One watch, until the server ends it, it fails, or it hangs. Returns why it ended.</summary>
    private async Task<string> WatchOnceAsync(CancellationToken ct)
    {
        var timeout = _options.WatchTimeout + TimeSpan.FromSeconds(Random.Shared.NextDouble() * _options.WatchTimeout.TotalSeconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout + _options.HangGrace);
        Exception? streamError = null;
        try
        {
#pragma warning disable CS0618 // the client marks its watch helpers obsolete for a successor it does not ship yet
            var events = _source.StartWatchAsync(_resourceVersion ?? "0", (int)timeout.TotalSeconds, deadline.Token)
                .WatchAsync<T, object>(e => streamError ??= e, deadline.Token);
#pragma warning restore CS0618
            await foreach (var (type, item) in events.ConfigureAwait(false))
            {
                Apply(type, item);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            _log.LogWarning("{Kind}: watch silent for {Seconds:0}s past its timeout; reconnecting", Kind, _options.HangGrace.TotalSeconds);
            return "hung";
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            streamError ??= e;
        }
        if (streamError is null) return "closed";
        if (IsGone(streamError))
        {
            _log.LogInformation("{Kind}: resourceVersion {Version} is gone (410); listing again", Kind, _resourceVersion);
            return "gone";
        }
        _log.LogWarning("{Kind}: watch failed: {Error}", Kind, streamError.Message);
        return "error";
    }

    private void Apply(WatchEventType type, T item)
    {
        if (item?.Metadata is null) return;
        if (!string.IsNullOrEmpty(item.Metadata.ResourceVersion)) _resourceVersion = item.Metadata.ResourceVersion;
        if (type == WatchEventType.Bookmark) return;
        item = _transform(item);
        var key = KeyOf(item);
        switch (type)
        {
            case WatchEventType.Added:
            case WatchEventType.Modified:
                _cache.TryGetValue(key, out var old);
                if (old is not null && StrictlyNewer(old, item)) return; // our own newer write is already there
                _cache[key] = item;
                Changed?.Invoke(old is null ? CacheEvent.Added : CacheEvent.Updated, old, item);
                break;
            case WatchEventType.Deleted:
                _cache.TryRemove(key, out var removed);
                Changed?.Invoke(CacheEvent.Deleted, removed ?? item, null);
                break;
        }
    }

    private static bool StrictlyNewer(T candidate, T than) =>
        long.TryParse(candidate.Metadata.ResourceVersion, out var a) && long.TryParse(than.Metadata.ResourceVersion, out var b) && a > b;

    private static bool IsGone(Exception e) => e switch
    {
        KubernetesException k => k.Status?.Code == 410,
        HttpOperationException h => h.Response?.StatusCode == HttpStatusCode.Gone,
        _ => e.InnerException is not null && IsGone(e.InnerException),
    };

    /// <summary>
    /// resourceVersions are opaque, but every server this operator meets (etcd-backed) issues increasing integers; when
    /// either is not one, the candidate is taken as newer.
    /// </summary>
    private static bool IsNewer(T candidate, T than) =>
        !long.TryParse(candidate.Metadata.ResourceVersion, out var a) || !long.TryParse(than.Metadata.ResourceVersion, out var b) || a > b;
}
