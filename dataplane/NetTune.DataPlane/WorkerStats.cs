namespace NetTune.DataPlane;

/// <summary>
/// Plain counters owned and written by one worker; the metrics thread reads them racily, which is
/// fine for monotonic 64-bit counters and keeps the hot path free of interlocked operations.
/// </summary>
internal sealed class WorkerStats
{
    /// <summary>Every status the server can produce has its own slot, as do common upstream ones; "other" (0) catches the rest.</summary>
    public static readonly int[] TrackedStatuses =
        [200, 206, 304, 400, 403, 404, 405, 408, 413, 414, 416, 431, 500, 503, 505, 0, 201, 204, 301, 302, 401, 417, 501, 502, 504];
    public const int OtherStatus = 0;
    public readonly long[] RequestsByStatus = new long[TrackedStatuses.Length];
    public long BytesCopied, BytesZeroCopy, Accepts, ActiveConnections, RejectedConnections;
    /// <summary>Accepts that failed for want of file descriptors (EMFILE/ENFILE); each pauses accepting briefly.</summary>
    public long AcceptErrors;
    public long EnterCalls, SubmittedSqes, ReapedCqes;
    /// <summary>Completion notices of zero-copy sends: data left without a copy, or the kernel reported it copied after all (loopback does).</summary>
    public long ZeroCopySendUncopied, ZeroCopySendCopied;
    /// <summary>Times a connection's receive was paused because the client pipelined faster than we parse.</summary>
    public long RecvPauses;
    /// <summary>Proxy mode: upstream connects that failed, and requests retried on a fresh connection after a reused one failed.</summary>
    public long UpstreamConnectFailures, UpstreamRetries;
    /// <summary>Proxy mode: requests that found an idle pooled upstream connection instead of connecting.</summary>
    public long UpstreamPoolHits;
    /// <summary>Proxy mode: requests answered 503 because the worker had --upstream-max-connections open and none idle.</summary>
    public long UpstreamCapRefusals;
    /// <summary>Proxy mode: upstream connections open (sessions' and pooled), as of the worker's last whole second.</summary>
    public long UpstreamConnections;
    /// <summary>Connections reset because their client took a response more slowly than --min-response-rate.</summary>
    public long SlowResponseAborts;
    /// <summary>Bytes the worker thread has allocated on the managed heap: flat in steady state.</summary>
    public long AllocatedBytes;
    /// <summary>Environment.TickCount64 of the last loop iteration, for /healthz.</summary>
    public long HeartbeatMs;
    /// <summary>
    /// Request durations as a histogram in Stopwatch ticks: per bucket (not cumulative) the count and the
    /// summed ticks, so the admin thread can rebuild exact counts and sums without the worker taking a lock.
    /// </summary>
    public readonly long[] DurationCounts = new long[RequestDuration.BucketCount];
    public readonly long[] DurationTicks = new long[RequestDuration.BucketCount];
    public volatile bool Running;
    public volatile bool Finished;

    public void CountStatus(int status)
    {
        int i = status switch
        {
            200 => 0, 206 => 1, 304 => 2, 400 => 3, 403 => 4, 404 => 5, 405 => 6, 408 => 7, 413 => 8,
            414 => 9, 416 => 10, 431 => 11, 500 => 12, 503 => 13, 505 => 14,
            // Statuses a proxied upstream commonly answers, and the proxy's own 417/501/502/504.
            201 => 16, 204 => 17, 301 => 18, 302 => 19, 401 => 20, 417 => 21, 501 => 22, 502 => 23, 504 => 24,
            _ => 15,
        };
        RequestsByStatus[i]++;
    }

    /// <summary><paramref name="requests"/> responses that each took <paramref name="ticks"/> (they shared one send).</summary>
    public void RecordDuration(long ticks, int requests)
    {
        int b = RequestDuration.BucketOf(ticks);
        DurationTicks[b] += ticks * requests;
        DurationCounts[b] += requests;
    }
}
