using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// A worker's idle upstream connections, left kept-alive by client connections that ended, so the next
/// client's first request need not connect again (nginx's upstream keepalive). Per upstream, last in
/// first out (the warmest connection), bounded; connections idle longer than the limit are closed, and
/// one the upstream closed meanwhile is noticed when taken (a non-blocking peek reads EOF) and dropped.
/// Owned by the worker thread: no locking, and nothing allocated after construction.
/// </summary>
internal sealed unsafe class UpstreamConnectionPool
{
    public const long IdleLimitMs = 60_000;
    private readonly int[][] _fds;
    private readonly long[][] _sinceMs;
    private readonly int[] _count;

    /// <summary>Idle connections held, over all upstreams.</summary>
    public int Count { get; private set; }

    public UpstreamConnectionPool(int upstreams, int maxPerUpstream)
    {
        _fds = new int[upstreams][];
        _sinceMs = new long[upstreams][];
        _count = new int[upstreams];
        for (int i = 0; i < upstreams; i++)
        {
            _fds[i] = new int[maxPerUpstream];
            _sinceMs[i] = new long[maxPerUpstream];
        }
    }

    /// <summary>Keeps an idle connection; false when the pool for that upstream is full (the caller closes it).</summary>
    public bool TryPark(int upstream, int fd, long nowMs)
    {
        int n = _count[upstream];
        if (n == _fds[upstream].Length) return false;
        _fds[upstream][n] = fd;
        _sinceMs[upstream][n] = nowMs;
        _count[upstream] = n + 1;
        Count++;
        return true;
    }

    /// <summary>A live idle connection to <paramref name="upstream"/> (the most recently parked), or -1.</summary>
    public int TryTake(int upstream, long nowMs)
    {
        while (_count[upstream] > 0)
        {
            int top = --_count[upstream];
            Count--;
            int fd = _fds[upstream][top];
            if (nowMs - _sinceMs[upstream][top] <= IdleLimitMs && StillOpen(fd)) return fd;
            Libc.close(fd);
        }
        return -1;
    }

    /// <summary>Closes connections idle past the limit: they were parked in time order, so they are the oldest, at the bottom.</summary>
    public void CloseExpired(long nowMs)
    {
        for (int u = 0; u < _count.Length; u++)
        {
            int n = _count[u], expired = 0;
            while (expired < n && nowMs - _sinceMs[u][expired] > IdleLimitMs) Libc.close(_fds[u][expired++]);
            if (expired == 0) continue;
            Array.Copy(_fds[u], expired, _fds[u], 0, n - expired);
            Array.Copy(_sinceMs[u], expired, _sinceMs[u], 0, n - expired);
            _count[u] = n - expired;
            Count -= expired;
        }
    }

    /// <summary>Closes the connection idle longest, over all upstreams, to make room for another; false when none is held.</summary>
    public bool CloseOldest()
    {
        int oldest = -1;
        for (int u = 0; u < _count.Length; u++)
            if (_count[u] > 0 && (oldest < 0 || _sinceMs[u][0] < _sinceMs[oldest][0])) oldest = u;
        if (oldest < 0) return false;
        Libc.close(_fds[oldest][0]);
        int n = --_count[oldest];
        Array.Copy(_fds[oldest], 1, _fds[oldest], 0, n);
        Array.Copy(_sinceMs[oldest], 1, _sinceMs[oldest], 0, n);
        Count--;
        return true;
    }

    public void CloseAll()
    {
        for (int u = 0; u < _count.Length; u++)
        {
            for (int i = 0; i < _count[u]; i++) Libc.close(_fds[u][i]);
            _count[u] = 0;
        }
        Count = 0;
    }

    /// <summary>An idle HTTP connection has nothing to read: EOF means the upstream closed it, bytes mean it is confused.</summary>
    private static bool StillOpen(int fd)
    {
        byte b;
        nint n = Libc.recv(fd, &b, 1, Libc.MSG_PEEK | Libc.MSG_DONTWAIT);
        return n < 0 && Libc.Errno == Libc.EAGAIN;
    }
}
