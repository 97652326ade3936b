using System.Globalization;
using NetTune.Http;

namespace NetTune.DataPlane;

public enum IoEngineKind { Auto, IoUring, Epoll }

/// <summary>How large bodies that are not held in memory leave the process.</summary>
public enum ZeroCopyMode
{
    /// <summary>read + send through a per-worker buffer (fastest over loopback, where the receiver copies anyway).</summary>
    Off,
    /// <summary>splice (io_uring) or sendfile (epoll) for every body of at least --zero-copy-min-bytes.</summary>
    On,
    /// <summary>As <see cref="On"/>, except that big bodies to loopback peers are copied (see --loopback-copy-min-bytes).</summary>
    Auto,
}

/// <summary>Whether bodies held in the memory cache leave through zero-copy sends (IORING_OP_SENDMSG_ZC / MSG_ZEROCOPY).</summary>
public enum ZeroCopySendMode
{
    /// <summary>Plain sendmsg: the kernel copies the body into socket buffers.</summary>
    Off,
    /// <summary>Every cached body of at least --zero-copy-send-min-bytes, whatever the peer.</summary>
    On,
    /// <summary>As <see cref="On"/> for non-loopback peers only: loopback delivery copies anyway, so there it only adds notifications.</summary>
    Auto,
}

public sealed record ServerOptions
{
    /// <summary>Static-file mode: the folder served. Empty in proxy mode.</summary>
    public required string Root { get; init; }
    /// <summary>Proxy mode: upstreams as host:port; requests are forwarded to them round robin.</summary>
    public IReadOnlyList<string> Upstreams { get; init; } = [];
    public bool IsProxy => Upstreams.Count > 0;
    /// <summary>Workers to run (pinned round robin over the CPUs); 0 = one per CPU.</summary>
    public int Workers { get; init; }
    public int UpstreamConnectTimeoutSeconds { get; init; } = 5;
    /// <summary>Proxy mode: peers whose X-Forwarded-* headers are carried on; everyone else's are replaced or dropped.</summary>
    public TrustedProxies TrustedProxies { get; init; } = TrustedProxies.None;
    /// <summary>Seconds between lookups of upstream names (0: only at start-up and after failed connects).</summary>
    public int UpstreamResolveIntervalSeconds { get; init; } = 10;
    /// <summary>A file in /etc/hosts format consulted before the system resolver for upstream names, re-read at each lookup.</summary>
    public string? HostsFile { get; init; }
    public int UpstreamTimeoutSeconds { get; init; } = 60;
    /// <summary>Per connection: how much of an upstream response is held at once.</summary>
    public int ProxyBufferBytes { get; init; } = 64 * 1024;
    /// <summary>Idle upstream connections a worker keeps per upstream for later clients (0: none).</summary>
    public int UpstreamKeepAlive { get; init; } = 32;
    /// <summary>
    /// Proxy mode: a Content-Length response body with at least this many bytes still to come after the first
    /// read is relayed upstream socket → pipe → client socket by splice, never copied through user space (0: never).
    /// </summary>
    public long ProxySpliceMinBytes { get; init; } = 16 * 1024;
    public string Address { get; init; } = "0.0.0.0";
    public int Port { get; init; } = 8080;
    public IReadOnlyList<int> Cpus { get; init; } = [];
    /// <summary>Bind every worker's memory to this node; -1: each worker's CPU's own node, from sysfs.</summary>
    public int NumaNode { get; init; } = -1;
    /// <summary>Where sysfs is mounted (a fixture tree in tests).</summary>
    public string SysfsRoot { get; init; } = "/sys";
    public IoEngineKind Engine { get; init; } = IoEngineKind.Auto;
    public int AdminPort { get; init; } = -1;
    /// <summary>Loopback unless told: the admin port answers whoever reaches it, so it is opened only where asked.</summary>
    public string AdminAddress { get; init; } = "127.0.0.1";
    /// <summary>--max-connections as given; null: from the memory budget (see <see cref="WithMemoryBudget"/>).</summary>
    public int? MaxConnectionsRequested { get; init; }
    /// <summary>--memory-cache-bytes as given; null: from the memory budget.</summary>
    public long? MemoryCacheBytesRequested { get; init; }
    /// <summary>--upstream-max-connections as given; null: from the memory budget.</summary>
    public int? UpstreamConnectionsRequested { get; init; }
    /// <summary>--memory-limit: the budget in bytes instead of the cgroup's limit; 0: unlimited.</summary>
    public long? MemoryLimitRequested { get; init; }
    /// <summary>The limits in force: the flags given, the rest derived from the memory budget at start-up.</summary>
    public MemoryLimits Memory { get; init; } = MemoryBudget.Derive(null, 1, 1, proxy: false);
    public int MaxConnectionsPerWorker => Memory.MaxConnectionsPerWorker;
    public long MemoryCacheBytesPerWorker => Memory.MemoryCacheBytesPerWorker;
    public int UpstreamConnectionsPerWorker => Memory.UpstreamConnectionsPerWorker;
    public int HeaderTimeoutSeconds { get; init; } = 10;
    public int KeepAliveTimeoutSeconds { get; init; } = 75;
    public int SendTimeoutSeconds { get; init; } = 60;
    /// <summary>Kestrel's MinResponseDataRate default: 240 bytes/s, after a 5 s grace, in each 5 s a response waits on its client (0: off).</summary>
    public int MinResponseBytesPerSecond { get; init; } = 240;
    public int MinResponseRatePeriodSeconds { get; init; } = 5;
    public int DrainTimeoutSeconds { get; init; } = 25;
    public ZeroCopyMode ZeroCopy { get; init; } = ZeroCopyMode.Auto;
    public long ZeroCopyMinBytes { get; init; } = 64 * 1024;
    /// <summary>In auto mode, loopback bodies at least this big are copied (read+send) rather than spliced.</summary>
    public long LoopbackCopyMinBytes { get; init; } = 1 << 20;
    public ZeroCopySendMode ZeroCopySend { get; init; } = ZeroCopySendMode.Auto;
    /// <summary>Smallest cached body sent zero-copy: below it pinning pages and the completion cost more than the copy.</summary>
    public long ZeroCopySendMinBytes { get; init; } = 16 * 1024;
    public int FileCacheValidMs { get; init; } = 1000;
    public int FileCacheMaxEntries { get; init; } = 10000;
    public long MemoryCacheMaxFileBytes { get; init; } = 256 * 1024;
    public bool HugePages { get; init; }
    /// <summary>Static mode: serve names starting with a dot (.env, .git/); by default they are 404.</summary>
    public bool AllowDotfiles { get; init; }
    /// <summary>io_uring task running: DEFER_TASKRUN+SINGLE_ISSUER (true) or COOP_TASKRUN (false).</summary>
    public bool DeferTaskrun { get; init; } = true;
    /// <summary>io_uring: one multishot receive per connection over a provided-buffer ring, instead of one recv per request.</summary>
    public bool MultishotRecv { get; init; } = true;
    /// <summary>
    /// io_uring: zero-copy bodies by sendfile from the worker thread on a non-blocking socket (true), or by
    /// IORING_OP_SPLICE, which the kernel always runs on an io-wq thread (false).
    /// </summary>
    public bool IoUringInlineSendfile { get; init; } = true;
    /// <summary>
    /// io_uring: how long (µs) a busy worker may wait to reap completions in a batch (0 = wake for each); null = the
    /// mode's default, <see cref="EffectiveBatchWaitUsec"/>.
    /// </summary>
    public uint? BatchWaitUsec { get; init; }
    /// <summary>
    /// 200 µs for the static server; 0 for the proxy, whose every request waits on the ring several times in a row
    /// (client, upstream, upstream, client, and the splices' readiness): a bounded wait at each step piles up. Measured
    /// at 64 KiB, -c50: a p99 of 17–23 ms with 200 µs against 4.5 ms without, and no CPU saved.
    /// </summary>
    public uint EffectiveBatchWaitUsec => BatchWaitUsec ?? (IsProxy ? 0u : 200u);
    public int StreamChunkBytes { get; init; } = 256 * 1024;
    public HttpLimits Limits { get; init; } = HttpLimits.Default;
    /// <summary>
    /// Fault injection for tests only (environment NETTUNE_DATAPLANE_TEST_FAIL_AFTER_ACCEPTS=N): every worker throws
    /// from its loop at its Nth accept, as a worker whose ring broke would. 0: never.
    /// </summary>
    public long TestFailAfterAccepts { get; init; } =
        long.TryParse(Environment.GetEnvironmentVariable("NETTUNE_DATAPLANE_TEST_FAIL_AFTER_ACCEPTS"), out long n) ? n : 0;

    public const string Usage = """
        usage: dataplane (--root DIR | --upstream HOST:PORT...) [options]
          --root DIR                 static-file mode: directory to serve
          --upstream HOST:PORT       proxy mode: forward requests to this upstream (repeat, or comma-separate,
                                     for several: round robin, skipping one that refused a connect for 10 s)
          --workers N                workers to run, pinned round robin over --cpus (default: one per CPU)
          --upstream-connect-timeout S  seconds to connect to an upstream before trying the next (default 5)
          --trusted-proxies CIDRS    proxy mode: peers (comma-separated CIDRs or addresses) whose X-Forwarded-For
                                     gets the peer appended and whose X-Forwarded-Host/-Proto and Forwarded pass;
                                     from any other peer X-Forwarded-For is replaced by the peer's address and the
                                     others dropped (default: none, as nginx's set_real_ip_from)
          --upstream-resolve-interval S  look upstream names up again every S seconds, and after a connect to one
                                     fails (default 10; 0 = only after failures); a lookup that fails keeps the
                                     last address, as nginx's resolve
          --hosts-file PATH          /etc/hosts-format file consulted first for upstream names, re-read at every
                                     lookup (default: none; the system resolver only)
          --upstream-timeout S       seconds to wait for upstream response bytes before 504 (default 60)
          --proxy-buffer-bytes N     per-connection buffer for upstream responses (default 65536); upstream heads may
                                     be as large as --max-header-bytes
          --proxy-splice-min-bytes N  relay a response body by splice (socket → pipe → socket, no copy through
                                     the process) when this many bytes of it are still to come after the
                                     first read (default 16384; 0 = always copy)
          --max-body-bytes N         proxy mode: largest request body (default 67108864; 413 above)
          --upstream-keepalive N     idle upstream connections each worker keeps per upstream for the next
                                     client connections (default 32; 0 = none; closed after 60 s idle)
          --port N                   listen port (default 8080; 0 = ephemeral, printed at start)
          --address IP               listen IPv4 address (default 0.0.0.0)
          --cpus LIST                CPUs to run one worker each on, e.g. 0-1,4 (default: every CPU of this
                                     process's affinity, as the kubelet's CPU manager set it)
          --numa-node N              bind worker memory to this NUMA node (default: each worker's CPU's own node,
                                     read from sysfs; unbound when the kernel shows no nodes)
          --sysfs-root DIR           where sysfs is mounted (default /sys)
          --io-engine auto|iouring|epoll   (default auto: io_uring when the kernel allows it)
          --admin-port N             /metrics, /healthz, /readyz (default: off; 0 = ephemeral)
          --admin-address IP         where the admin port listens (default 127.0.0.1: this host only; give the
                                     address probes and scrapers reach, e.g. the pod IP)
          --max-connections N        client connections per worker; more are closed at accept (default: from the
                                     memory budget, below; 16384 without a memory limit)
          --memory-limit N           the memory budget in bytes (default: this process's cgroup limit, v1
                                     memory.limit_in_bytes or v2 memory.max; 0 = unlimited). Connections, file cache
                                     and upstream connections not given by their flags are derived from it
          --upstream-max-connections N  proxy: upstream connections each worker keeps open, pooled ones included;
                                     at the cap an idle one is reused or closed, else the request gets 503 (default:
                                     half of --max-connections, at most 1024)
          --header-timeout S         seconds to receive a request head (default 10)
          --keepalive-timeout S      idle keep-alive seconds (default 75)
          --min-response-rate N      bytes per second a client must take a response at, in every period of
                                     --min-response-rate-period seconds the response waits on it (default 240,
                                     as Kestrel's MinResponseDataRate; 0 = off); slower clients are reset
          --min-response-rate-period S  the grace and the measuring period of the rate (default 5)
          --drain-timeout S          seconds to finish in-flight requests after SIGTERM (default 25)
          --zero-copy off|on|auto    splice (io_uring) / sendfile (epoll) for bodies of at least
                                     --zero-copy-min-bytes (default auto: as on, except that loopback
                                     peers get bodies of --loopback-copy-min-bytes or more copied)
          --zero-copy-min-bytes N    smallest body sent zero-copy (default 65536)
          --loopback-copy-min-bytes N  auto mode: loopback bodies this big are read+sent (default 1048576)
          --zero-copy-send off|on|auto  send bodies held in the memory cache without copying them
                                     (io_uring SENDMSG_ZC / epoll MSG_ZEROCOPY); the buffer is held
                                     until the kernel's completion notice (default auto: on for
                                     non-loopback peers only, as loopback delivery copies anyway)
          --zero-copy-send-min-bytes N  smallest cached body sent zero-copy (default 16384)
          --file-cache-valid-ms N    how long file metadata is trusted before re-checking (default 1000)
          --memory-cache-max-file N  largest file kept in memory (default 262144; 0 disables)
          --memory-cache-bytes N     memory cache budget per worker (default: from the memory budget; 67108864
                                     without a memory limit)
          --allow-dotfiles           static mode: serve paths with a segment starting with a dot (/.env,
                                     /.git/config, /.well-known/...); by default they are 404, percent-encoded
                                     dots included
          --hugepages                back buffers with 2 MiB hugepages when available
          --io-uring-recv multishot|single  multishot recv over a provided-buffer ring (default) or one recv per request
          --io-uring-batch-usec N    wait up to N µs to reap completions in batches (default 200, proxy 0; 0 = off; Linux 6.12+)
          --io-uring-taskrun defer|coop  completion mode: DEFER_TASKRUN+SINGLE_ISSUER (default) or COOP_TASKRUN
          --io-uring-zero-copy sendfile|splice  zero-copy bodies by sendfile on the worker thread (default) or by
                                     IORING_OP_SPLICE (runs on io-wq kernel threads: a context switch per response)
          --max-header-bytes N       request head limit (default 16384)
          --max-request-line N       request line limit (default 8192)
        """;

    /// <summary>
    /// Fills the limits not given by flags from <paramref name="limitBytes"/> (the cgroup's limit, unless --memory-limit
    /// named one) for <paramref name="workers"/> workers; the flags given always win.
    /// </summary>
    public ServerOptions WithMemoryBudget(long? limitBytes, int workers)
    {
        var limit = MemoryLimitRequested is { } requested ? (requested == 0 ? null : requested) : limitBytes;
        int block = IsProxy ? ProxySession.BlockSizeFor(Limits, ProxyBufferBytes) : HttpSession.BlockSizeFor(Limits);
        var derived = MemoryBudget.Derive(limit, workers, block, IsProxy);
        int connections = MaxConnectionsRequested ?? derived.MaxConnectionsPerWorker;
        return this with
        {
            Memory = new MemoryLimits(
                connections,
                MemoryCacheBytesRequested ?? derived.MemoryCacheBytesPerWorker,
                // An explicit --max-connections below the derived cap lowers the cap with it.
                UpstreamConnectionsRequested ?? Math.Min(derived.UpstreamConnectionsPerWorker, Math.Max(1, connections / 2))),
        };
    }

    /// <summary>Parses flags; throws <see cref="OptionsException"/> with a message fit for the user.</summary>
    public static ServerOptions Parse(IReadOnlyList<string> args)
    {
        string? root = null;
        var upstreams = new List<string>();
        long maxBody = 64L << 20;
        var o = new ServerOptions { Root = "" };
        int maxHeader = HttpLimits.Default.MaxHeaderBytes, maxLine = HttpLimits.Default.MaxRequestLineBytes;
        for (int i = 0; i < args.Count; i++)
        {
            string flag = args[i];
            string Value()
            {
                if (i + 1 >= args.Count) throw new OptionsException($"{flag} needs a value");
                return args[++i];
            }
            switch (flag)
            {
                case "--root": root = Value(); break;
                case "--upstream" or "--upstreams":
                    foreach (var u in Value().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (!UpstreamAddress.TrySplit(u, out _, out _))
                            throw new OptionsException($"{flag} must be host:port, not '{u}'");
                        upstreams.Add(u);
                    }
                    break;
                case "--workers": o = o with { Workers = Int(flag, Value(), 1, 4096) }; break;
                case "--upstream-connect-timeout": o = o with { UpstreamConnectTimeoutSeconds = Int(flag, Value(), 1, 3600) }; break;
                case "--trusted-proxies": o = o with { TrustedProxies = TrustedProxies.Parse(Value()) }; break;
                case "--upstream-resolve-interval": o = o with { UpstreamResolveIntervalSeconds = Int(flag, Value(), 0, 86400) }; break;
                case "--hosts-file": o = o with { HostsFile = Value() }; break;
                case "--upstream-timeout": o = o with { UpstreamTimeoutSeconds = Int(flag, Value(), 1, 86400) }; break;
                case "--proxy-buffer-bytes": o = o with { ProxyBufferBytes = Int(flag, Value(), 4096, 16 << 20) }; break;
                case "--max-body-bytes": maxBody = Long(flag, Value(), 1); break;
                case "--upstream-keepalive": o = o with { UpstreamKeepAlive = Int(flag, Value(), 0, 65536) }; break;
                case "--proxy-splice-min-bytes": o = o with { ProxySpliceMinBytes = Long(flag, Value(), 0) }; break;
                case "--port": o = o with { Port = Int(flag, Value(), 0, 65535) }; break;
                case "--address": o = o with { Address = Value() }; break;
                case "--cpus": o = o with { Cpus = CpuList.Parse(Value()) }; break;
                case "--numa-node": o = o with { NumaNode = Int(flag, Value(), 0, 1023) }; break;
                case "--sysfs-root": o = o with { SysfsRoot = Value() }; break;
                case "--io-engine":
                    o = o with
                    {
                        Engine = Value() switch
                        {
                            "auto" => IoEngineKind.Auto,
                            "iouring" or "io_uring" => IoEngineKind.IoUring,
                            "epoll" => IoEngineKind.Epoll,
                            var v => throw new OptionsException($"--io-engine must be auto, iouring or epoll, not '{v}'"),
                        },
                    };
                    break;
                case "--admin-port": o = o with { AdminPort = Int(flag, Value(), 0, 65535) }; break;
                case "--admin-address": o = o with { AdminAddress = Value() }; break;
                case "--max-connections": o = o with { MaxConnectionsRequested = Int(flag, Value(), 1, 1_000_000) }; break;
                case "--header-timeout": o = o with { HeaderTimeoutSeconds = Int(flag, Value(), 1, 3600) }; break;
                case "--keepalive-timeout": o = o with { KeepAliveTimeoutSeconds = Int(flag, Value(), 1, 86400) }; break;
                case "--min-response-rate": o = o with { MinResponseBytesPerSecond = Int(flag, Value(), 0, 1 << 30) }; break;
                case "--min-response-rate-period": o = o with { MinResponseRatePeriodSeconds = Int(flag, Value(), 1, 3600) }; break;
                case "--drain-timeout": o = o with { DrainTimeoutSeconds = Int(flag, Value(), 0, 3600) }; break;
                case "--zero-copy":
                    o = o with
                    {
                        ZeroCopy = Value() switch
                        {
                            "off" => ZeroCopyMode.Off,
                            "on" => ZeroCopyMode.On,
                            "auto" => ZeroCopyMode.Auto,
                            var v => throw new OptionsException($"--zero-copy must be off, on or auto, not '{v}'"),
                        },
                    };
                    break;
                case "--zero-copy-min-bytes": o = o with { ZeroCopyMinBytes = Long(flag, Value(), 0) }; break;
                case "--loopback-copy-min-bytes": o = o with { LoopbackCopyMinBytes = Long(flag, Value(), 0) }; break;
                case "--zero-copy-send":
                    o = o with
                    {
                        ZeroCopySend = Value() switch
                        {
                            "off" => ZeroCopySendMode.Off,
                            "on" => ZeroCopySendMode.On,
                            "auto" => ZeroCopySendMode.Auto,
                            var v => throw new OptionsException($"--zero-copy-send must be off, on or auto, not '{v}'"),
                        },
                    };
                    break;
                case "--zero-copy-send-min-bytes": o = o with { ZeroCopySendMinBytes = Long(flag, Value(), 1) }; break;
                case "--file-cache-valid-ms": o = o with { FileCacheValidMs = Int(flag, Value(), 0, 86_400_000) }; break;
                case "--memory-cache-max-file": o = o with { MemoryCacheMaxFileBytes = Long(flag, Value(), 0) }; break;
                case "--memory-cache-bytes": o = o with { MemoryCacheBytesRequested = Long(flag, Value(), 0) }; break;
                case "--memory-limit": o = o with { MemoryLimitRequested = Long(flag, Value(), 0) }; break;
                case "--upstream-max-connections": o = o with { UpstreamConnectionsRequested = Int(flag, Value(), 1, 1 << 20) }; break;
                case "--hugepages": o = o with { HugePages = true }; break;
                case "--allow-dotfiles": o = o with { AllowDotfiles = true }; break;
                case "--io-uring-batch-usec": o = o with { BatchWaitUsec = (uint)Int(flag, Value(), 0, 10_000) }; break;
                case "--io-uring-recv":
                    o = o with
                    {
                        MultishotRecv = Value() switch
                        {
                            "multishot" => true,
                            "single" => false,
                            var v => throw new OptionsException($"--io-uring-recv must be multishot or single, not '{v}'"),
                        },
                    };
                    break;
                case "--io-uring-zero-copy":
                    o = o with
                    {
                        IoUringInlineSendfile = Value() switch
                        {
                            "sendfile" => true,
                            "splice" => false,
                            var v => throw new OptionsException($"--io-uring-zero-copy must be sendfile or splice, not '{v}'"),
                        },
                    };
                    break;
                case "--io-uring-taskrun":
                    o = o with
                    {
                        DeferTaskrun = Value() switch
                        {
                            "defer" => true,
                            "coop" => false,
                            var v => throw new OptionsException($"--io-uring-taskrun must be defer or coop, not '{v}'"),
                        },
                    };
                    break;
                case "--max-header-bytes": maxHeader = Int(flag, Value(), 1024, 1 << 20); break;
                case "--max-request-line": maxLine = Int(flag, Value(), 256, 1 << 20); break;
                case "-h" or "--help": throw new OptionsException(Usage, isHelp: true);
                default: throw new OptionsException($"unknown option '{flag}'\n{Usage}");
            }
        }
        if (root is null && upstreams.Count == 0) throw new OptionsException($"--root or --upstream is required\n{Usage}");
        if (root is not null && upstreams.Count > 0) throw new OptionsException("--root (static files) and --upstream (proxy) are exclusive: pick one mode");
        if (maxLine > maxHeader) throw new OptionsException("--max-request-line cannot exceed --max-header-bytes");
        // A static-file server reads no request bodies; the proxy forwards them up to the limit.
        return o with
        {
            Root = root ?? "",
            Upstreams = upstreams,
            Limits = new HttpLimits(maxLine, maxHeader, MaxBodyBytes: upstreams.Count > 0 ? maxBody : 0),
        };
    }

    private static int Int(string flag, string v, int min, int max)
    {
        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
            throw new OptionsException($"{flag} must be an integer in [{min}, {max}], not '{v}'");
        return n;
    }

    private static long Long(string flag, string v, long min)
    {
        if (!long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n < min)
            throw new OptionsException($"{flag} must be an integer >= {min}, not '{v}'");
        return n;
    }
}

public sealed class OptionsException(string message, bool isHelp = false) : Exception(message)
{
    public bool IsHelp { get; } = isHelp;
}

public static class CpuList
{
    /// <summary>Parses the kernel's list format ("0-3,8,10-11"), as in /sys/devices/system/cpu/online.</summary>
    public static IReadOnlyList<int> Parse(string text)
    {
        var cpus = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (part.Length == 0) throw new OptionsException($"bad CPU list '{text}': empty element");
            int dash = part.IndexOf('-');
            if (dash < 0)
            {
                cpus.Add(Cpu(part, text));
                continue;
            }
            int lo = Cpu(part[..dash], text), hi = Cpu(part[(dash + 1)..], text);
            if (hi < lo) throw new OptionsException($"bad CPU list '{text}': range {part} is backwards");
            for (int c = lo; c <= hi; c++) cpus.Add(c);
        }
        return cpus.ToArray();
    }

    private static int Cpu(string s, string text)
    {
        if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int c) || c > 4095)
            throw new OptionsException($"bad CPU list '{text}': '{s}' is not a CPU number");
        return c;
    }
}
