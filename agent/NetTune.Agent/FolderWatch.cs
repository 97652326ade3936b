namespace NetTune.Agent;

/// <summary>
/// Wakes a loop when an entry of one folder is created, written, renamed or deleted (inotify, through
/// <see cref="FileSystemWatcher"/>), so that a loop waiting on the kubelet's files costs nothing at rest. A folder that
/// does not exist (yet) or a watch the kernel refuses (inotify limits) leaves the caller polling: <see cref="WaitAsync"/>
/// then returns after the poll interval, and <see cref="Ensure"/> tries to watch again.
/// </summary>
public sealed class FolderWatch(string folder) : IDisposable
{
    private readonly SemaphoreSlim _changed = new(0, 1);
    private FileSystemWatcher? _watcher;

    public bool Watching => _watcher is not null;

    /// <summary>Starts watching when not watching yet and the folder exists; returns why it cannot, or null.</summary>
    public string? Ensure()
    {
        if (_watcher is not null) return null;
        if (!Directory.Exists(folder)) return $"{folder} does not exist";
        FileSystemWatcher? watcher = null;
        try
        {
            watcher = new FileSystemWatcher(folder)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.CreationTime,
                IncludeSubdirectories = false,
            };
            watcher.Created += (_, _) => Signal();
            watcher.Changed += (_, _) => Signal();
            watcher.Deleted += (_, _) => Signal();
            watcher.Renamed += (_, _) => Signal();
            // A lost event (queue overflow) or a folder that went away: look now, and watch anew next time.
            watcher.Error += (_, _) => Drop();
            watcher.EnableRaisingEvents = true;
            _watcher = watcher;
            return null;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            watcher?.Dispose();
            return e.Message;
        }
    }

    /// <summary>Returns once something in the folder changed, or after <paramref name="fallback"/> (the poll of a caller that is not watching, or a safety net).</summary>
    public async Task WaitAsync(TimeSpan fallback, CancellationToken ct) => await _changed.WaitAsync(fallback, ct).ConfigureAwait(false);

    private void Signal()
    {
        // Full: a wake-up is pending already. Disposed: an event that raced the owner's shutdown.
        try { _changed.Release(); }
        catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException) { }
    }

    private void Drop()
    {
        Interlocked.Exchange(ref _watcher, null)?.Dispose();
        Signal();
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _changed.Dispose();
    }
}
