namespace NetTune.ControllerRuntime;

public sealed record WorkQueueOptions
{
    public TimeSpan BaseRetryDelay { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A queue of keys to reconcile. A key is queued at most once however often it is added; a key being processed is
/// never handed out again until it is done (an add meanwhile queues it once more after); failed keys come back after
/// a capped exponential backoff with jitter.
/// </summary>
public sealed class WorkQueue : IDisposable
{
    private readonly object _lock = new();
    private readonly WorkQueueOptions _options;
    private readonly LinkedList<string> _queue = new();
    private readonly Dictionary<string, DateTime> _queued = new(StringComparer.Ordinal); // key → when it was added
    private readonly HashSet<string> _processing = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirtyWhileProcessing = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _failures = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CancellationTokenSource> _delayed = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _available = new(0);
    private bool _shutDown;

    public WorkQueue(WorkQueueOptions? options = null) => _options = options ?? new WorkQueueOptions();

    /// <summary>How long a key waited between being added and being handed out.</summary>
    public event Action<TimeSpan>? Waited;

    public int Depth
    {
        get { lock (_lock) return _queue.Count; }
    }

    public void Add(string key)
    {
        lock (_lock)
        {
            if (_shutDown) return;
            if (_processing.Contains(key))
            {
                _dirtyWhileProcessing.Add(key);
                return;
            }
            if (_queued.ContainsKey(key)) return;
            _queued[key] = DateTime.UtcNow;
            _queue.AddLast(key);
        }
        _available.Release();
    }

    /// <summary>Adds the key after a delay (a later or earlier request for the same key replaces this one).</summary>
    public void AddAfter(string key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }
        CancellationTokenSource cts;
        lock (_lock)
        {
            if (_shutDown) return;
            if (_delayed.Remove(key, out var previous)) previous.Cancel();
            cts = new CancellationTokenSource();
            _delayed[key] = cts;
        }
        _ = Task.Delay(delay, cts.Token).ContinueWith(t =>
        {
            lock (_lock)
            {
                if (_delayed.TryGetValue(key, out var current) && current == cts) _delayed.Remove(key);
            }
            if (!t.IsCanceled) Add(key);
        }, TaskScheduler.Default);
    }

    /// <summary>Adds the key back after its next backoff delay.</summary>
    public TimeSpan AddRateLimited(string key)
    {
        int failures;
        lock (_lock) failures = _failures[key] = _failures.GetValueOrDefault(key) + 1;
        var delay = Backoff.Delay(_options.BaseRetryDelay, _options.MaxRetryDelay, failures);
        AddAfter(key, delay);
        return delay;
    }

    /// <summary>Clears the key's failure count (after a success).</summary>
    public void Forget(string key)
    {
        lock (_lock) _failures.Remove(key);
    }

    public int Failures(string key)
    {
        lock (_lock) return _failures.GetValueOrDefault(key);
    }

    /// <summary>Waits for a key; returns null once the queue is shut down.</summary>
    public async Task<string?> GetAsync(CancellationToken ct)
    {
        while (true)
        {
            try { await _available.WaitAsync(ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return null; }
            lock (_lock)
            {
                if (_shutDown) return null;
                if (_queue.First is not { } first) continue;
                _queue.RemoveFirst();
                var key = first.Value;
                var since = _queued[key];
                _queued.Remove(key);
                _processing.Add(key);
                Waited?.Invoke(DateTime.UtcNow - since);
                return key;
            }
        }
    }

    /// <summary>Marks the key processed; if it was added meanwhile it is queued again.</summary>
    public void Done(string key)
    {
        bool again;
        lock (_lock)
        {
            _processing.Remove(key);
            again = _dirtyWhileProcessing.Remove(key);
        }
        if (again) Add(key);
    }

    public void ShutDown()
    {
        lock (_lock)
        {
            _shutDown = true;
            foreach (var cts in _delayed.Values) cts.Cancel();
            _delayed.Clear();
        }
        _available.Release(1000);
    }

    public void Dispose()
    {
        ShutDown();
        _available.Dispose();
    }
}
