// One source, two assemblies: the operator compiles this file too (NetTune.Operator.Core.csproj links it), so the
// limits it passes to a pod are the ones the data plane would derive from that pod's memory limit.
#if NETTUNE_OPERATOR
namespace NetTune.Operator.Core.Builders;
#else
namespace NetTune.DataPlane;
#endif

/// <summary>Per-worker limits that keep the process inside a memory budget.</summary>
/// <param name="MaxConnectionsPerWorker">Client connections a worker serves at once; more are closed at accept.</param>
/// <param name="MemoryCacheBytesPerWorker">File bytes a worker holds in memory (static mode).</param>
/// <param name="UpstreamConnectionsPerWorker">Upstream connections a worker keeps open at once, pooled ones included (proxy mode).</param>
public readonly record struct MemoryLimits(int MaxConnectionsPerWorker, long MemoryCacheBytesPerWorker, int UpstreamConnectionsPerWorker);

/// <summary>
/// Turns a memory limit (the cgroup's, or the pod's as the operator sees it) into connection and cache limits: pure,
/// so the data plane and the operator compute the same numbers. A quarter of the limit is left to the kernel (socket
/// buffers and page cache are charged to the cgroup too), a fixed reserve to the runtime and to each worker's engine,
/// and the rest is shared by the workers: in static mode a quarter of a worker's share (at most the 64 MiB default)
/// caches files and the remainder pays for sessions; a proxy session's block is paid with two sockets' overhead.
/// </summary>
public static class MemoryBudget
{
    /// <summary>The limits when memory is not limited (and the most any limit yields).</summary>
    public const int MaxConnectionsDefault = 16384;
    public const long MemoryCacheBytesDefault = 64L << 20;
    /// <summary>Upstream connections per worker at most, as Envoy's default circuit breaker (max_connections 1024).</summary>
    public const int UpstreamConnectionsDefault = 1024;

    /// <summary>The runtime, code, managed heap, admin server and metrics: an idle 2-worker process measured 32-34 MB RSS.</summary>
    public const long ProcessReserveBytes = 48L << 20;
    /// <summary>A worker's engine: ring and its provided receive buffers (8 MiB once all are touched), stream chunks, pipes.</summary>
    public const long WorkerReserveBytes = 12L << 20;
    /// <summary>What a connection costs besides its session block: the managed session object and the kernel's socket.</summary>
    public const long ConnectionOverheadBytes = 8L << 10;
    /// <summary>A worker serves at least this many connections, however small the limit (a start-up warning says so).</summary>
    public const int MinConnections = 16;

    /// <summary>
    /// A session's block at the default --max-header-bytes (and --proxy-buffer-bytes), as HttpSession.BlockSizeFor and
    /// ProxySession.BlockSizeFor lay it out (a data-plane test pins them): what the operator budgets with.
    /// </summary>
    public const int DefaultStaticSessionBytes = 28 << 10;
    public const int DefaultProxySessionBytes = 116 << 10;

    /// <summary>Limits at or above this are no limit (cgroup v1 writes "unlimited" as LONG_MAX rounded down to a page).</summary>
    public const long UnlimitedBytes = 1L << 62;

    /// <summary>
    /// The limits for <paramref name="workers"/> workers in <paramref name="limitBytes"/> (null or huge: unlimited), whose
    /// sessions take <paramref name="sessionBlockBytes"/> each (see HttpSession/ProxySession.BlockSizeFor).
    /// </summary>
    public static MemoryLimits Derive(long? limitBytes, int workers, int sessionBlockBytes, bool proxy)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(sessionBlockBytes, 1);
        if (limitBytes is not { } limit || limit >= UnlimitedBytes)
            return new MemoryLimits(MaxConnectionsDefault, proxy ? 0 : MemoryCacheBytesDefault, UpstreamsFor(MaxConnectionsDefault));
        long available = limit - limit / 4 - ProcessReserveBytes - workers * WorkerReserveBytes;
        long perWorker = Math.Max(0, available / workers);
        long cache = proxy ? 0 : Math.Min(MemoryCacheBytesDefault, perWorker / 4);
        long perConnection = sessionBlockBytes + (proxy ? 2 : 1) * ConnectionOverheadBytes;
        int connections = (int)Math.Clamp((perWorker - cache) / perConnection, MinConnections, MaxConnectionsDefault);
        return new MemoryLimits(connections, cache, UpstreamsFor(connections));
    }

    /// <summary>
    /// Half the client connections: an upstream connection is held only while a request is on it when others wait
    /// (idle clients give theirs up), and at most Envoy's default.
    /// </summary>
    private static int UpstreamsFor(int connections) => Math.Clamp(connections / 2, 1, UpstreamConnectionsDefault);
}
