using System.Runtime.InteropServices;
using NetTune.Http;
using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// One pinned thread serving its own listener with its own engine, cache and buffers. Nothing here is
/// shared with other workers except read-only options and the root directory fd.
/// </summary>
internal abstract unsafe class Worker
{
    /// <summary>A streaming connection yields after this much so one big download cannot starve the others.</summary>
    protected const long StreamSliceBytes = 1 << 20;

    public readonly int Index;
    public readonly int Cpu;
    public readonly ServerOptions Options;
    /// <summary>The NUMA node this worker's memory is bound to (-1: none known, unbound).</summary>
    public int NumaNode { get; init; } = -1;
    /// <summary>Whether set_mempolicy(MPOL_BIND) to <see cref="NumaNode"/> took effect.</summary>
    public bool MemoryBound { get; private set; }
    public readonly WorkerStats Stats = new();
    protected readonly int ListenFd;
    private readonly int _rootFd;
    private readonly Thread _thread;
    private readonly byte[] _date = GC.AllocateArray<byte>(HttpDate.Length, pinned: true);
    private long _dateSecond = -1;
    // The start of every keep-alive HTTP/1.1 200 (status, Server, Date) for this second, copied whole into heads.
    private readonly byte[] _okStart = new byte[128];
    private int _okStartLength;

    /// <summary>Proxy mode: the upstreams (shared, read-only) and this worker's own choice among them.</summary>
    public IReadOnlyList<UpstreamAddress>? Upstreams { get; init; }
    public UpstreamBalancer? Balancer { get; private set; }
    public UpstreamConnectionPool? IdleUpstreams { get; private set; }
    protected bool IsProxy => Upstreams is { Count: > 0 };
    protected readonly List<ProxySession> ProxySessions = new();
    private readonly IdleStack<ProxySession> _freeProxySessions = new();

    public FileCache Files { get; private set; } = null!;
    public BlockPool ChunkPool { get; private set; } = null!;
    protected BlockPool SessionPool { get; private set; } = null!;
    protected readonly List<HttpSession> Sessions = new();
    private readonly IdleStack<HttpSession> _freeSessions = new();
    public int ActiveSessions { get; private set; }

    public ReadOnlySpan<byte> Date => _date;
    public ReadOnlySpan<byte> OkStart => _okStart.AsSpan(0, _okStartLength);
    public long NowMs;
    private volatile bool _drainRequested;
    public bool Draining { get; private set; }
    protected long DrainDeadlineMs;
    public Exception? Failure { get; private set; }
    public abstract string EngineName { get; }
    /// <summary>Set by the engine when the kernel offers zero-copy sends (SENDMSG_ZC / MSG_ZEROCOPY).</summary>
    protected bool ZeroCopySendAvailable;

    protected Worker(int index, int cpu, ServerOptions options, int listenFd, int rootFd)
    {
        Index = index;
        Cpu = cpu;
        Options = options;
        ListenFd = listenFd;
        _rootFd = rootFd;
        _thread = new Thread(ThreadMain) { Name = $"dataplane-worker-{index}-cpu{cpu}", IsBackground = true };
    }

    public void Start() => _thread.Start();
    /// <summary>An eventfd the engine watches, so a drain request wakes a sleeping worker at once.</summary>
    protected readonly int WakeFd = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);

    public void RequestDrain()
    {
        _drainRequested = true;
        ulong one = 1;
        Libc.write(WakeFd, &one, 8);
    }
    public bool Join(int timeoutMs) => _thread.Join(timeoutMs);

    private void ThreadMain()
    {
        try
        {
            if (Cpu >= 0) Platform.PinCurrentThread(Cpu);
            if (NumaNode >= 0)
            {
                MemoryBound = Platform.BindMemoryToNode(NumaNode, out int errno);
                if (!MemoryBound) Console.Error.WriteLine($"worker {Index}: set_mempolicy(node {NumaNode}) failed (errno {errno}); memory stays unbound");
            }
            // Everything below is allocated after pinning, so it is first touched on this worker's node.
            if (IsProxy)
            {
                SessionPool = new BlockPool(ProxySession.BlockSizeFor(Options.Limits, Options.ProxyBufferBytes), Options.HugePages);
                Balancer = new UpstreamBalancer(Upstreams!.Count);
                if (Options.UpstreamKeepAlive > 0) IdleUpstreams = new UpstreamConnectionPool(Upstreams.Count, Options.UpstreamKeepAlive);
            }
            else
            {
                SessionPool = new BlockPool(HttpSession.BlockSizeFor(Options.Limits), Options.HugePages);
                ChunkPool = new BlockPool(Options.StreamChunkBytes, Options.HugePages);
                Files = new FileCache(_rootFd, Options.FileCacheValidMs, Options.FileCacheMaxEntries,
                    Options.MemoryCacheMaxFileBytes, Options.MemoryCacheBytesPerWorker);
            }
            Tick();
            Run();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"worker {Index} (cpu {Cpu}) failed: {e}");
            // Stop the kernel routing new connections here before anyone hears of the failure, and end this
            // worker's connections so their clients see a close instead of a hang.
            try { Abandon(); }
            catch (Exception cleanup) { Console.Error.WriteLine($"worker {Index}: cleanup after failure: {cleanup.Message}"); }
            CloseListener();
            Failure = e;
        }
        finally
        {
            Stats.Running = false;
            Stats.Finished = true;
            Files?.Dispose();
            IdleUpstreams?.CloseAll();
            CloseIdlePipes();
        }
    }

    protected abstract void Run();

    /// <summary>After a failure: release the engine (its ring or epoll set) and close every connection it held.</summary>
    protected abstract void Abandon();

    private bool _listenerClosed;

    /// <summary>Closes this worker's SO_REUSEPORT listener once (drain or failure): the kernel then spreads new connections over the others.</summary>
    protected void CloseListener()
    {
        if (_listenerClosed) return;
        _listenerClosed = true;
        Libc.close(ListenFd);
    }

    /// <summary>Counts an accepted connection (and fires the test-only fault injection).</summary>
    protected void CountAccept()
    {
        Stats.Accepts++;
        if (Stats.Accepts == Options.TestFailAfterAccepts)
            throw new InvalidOperationException($"injected failure at accept {Stats.Accepts} (NETTUNE_DATAPLANE_TEST_FAIL_AFTER_ACCEPTS)");
    }

    /// <summary>EMFILE/ENFILE at accept: how long to stop accepting, as nginx does, instead of spinning on a listener that stays ready.</summary>
    protected const int AcceptBackoffMs = 100;

    /// <summary>Called by the engine once its listener is armed: start-up waits for this before announcing.</summary>
    protected void MarkReady() => Stats.Running = true;

    /// <summary>Once per loop: clock, Date header, heartbeat, and the drain switch.</summary>
    protected bool Tick()
    {
        NowMs = Environment.TickCount64;
        Stats.HeartbeatMs = NowMs;
        Stats.AllocatedBytes = GC.GetAllocatedBytesForCurrentThread();
        long second = NowMs / 1000;
        bool newSecond = second != _dateSecond;
        if (newSecond)
        {
            // What needs the clock only to the second stays off the per-turn path (a proxied request turns the loop
            // four times or more).
            _dateSecond = second;
            HttpDate.Format(DateTimeOffset.UtcNow, _date);
            _okStartLength = ResponseHead.WriteStart(_okStart, 200, _date, ConnectionHeader.None);
            Stats.UpstreamConnections = SessionUpstreams + (IdleUpstreams?.Count ?? 0);
            if (NowMs >= _nextTrimMs)
            {
                _nextTrimMs = NowMs + IdleTrimPeriodMs;
                TrimIdleMemory();
            }
        }
        if (_drainRequested && !Draining)
        {
            Draining = true;
            DrainDeadlineMs = NowMs + Options.DrainTimeoutSeconds * 1000L;
            BeginDrain();
        }
        return newSecond;
    }

    /// <summary>How often memory unused since the last look is given back: a flood's sessions return within two periods.</summary>
    public const long IdleTrimPeriodMs = 10_000;
    /// <summary>Free sessions kept faulted in for the next connections, so steady churn does not fault.</summary>
    private const int WarmSessions = 32;
    private long _nextTrimMs;

    /// <summary>
    /// Session blocks and stream chunks that lay free for a whole period give their pages back to the kernel; the
    /// objects stay pooled and fault their pages in again when next used.
    /// </summary>
    private void TrimIdleMemory()
    {
        var (from, to) = _freeSessions.MarkUnusedCold(WarmSessions);
        for (int i = from; i < to; i++) SessionPool.Discard(_freeSessions[i].Recv);
        (from, to) = _freeProxySessions.MarkUnusedCold(WarmSessions);
        for (int i = from; i < to; i++) SessionPool.Discard(_freeProxySessions[i].Block);
        ChunkPool?.TrimUnused(keepWarm: 2);
    }

    /// <summary>Stop accepting; idle connections are closed by the engine, busy ones after their response.</summary>
    protected abstract void BeginDrain();

    protected HttpSession? AllocateSession(int fd)
    {
        if (ActiveSessions >= Options.MaxConnectionsPerWorker) return null;
        if (!_freeSessions.TryPop(out var session))
        {
            session = new HttpSession(Sessions.Count, SessionPool.Rent(), Options.Limits);
            Sessions.Add(session);
        }
        session.Open(fd, NowMs, Platform.PeerIsLoopback(fd));
        session.CanZeroCopySend = ZeroCopySendAvailable && Options.ZeroCopySend switch
        {
            ZeroCopySendMode.On => true,
            ZeroCopySendMode.Auto => !session.PeerIsLoopback,
            _ => false,
        };
        ActiveSessions++;
        Stats.ActiveConnections = ActiveSessions;
        return session;
    }

    /// <summary>
    /// A proxy session for an accepted client socket; at the per-worker cap the socket is closed, counted and
    /// null returned. The engine registers the socket as it needs, then calls <see cref="OpenProxySession"/>.
    /// </summary>
    protected ProxySession? AdmitProxy(int fd)
    {
        if (ActiveSessions >= Options.MaxConnectionsPerWorker)
        {
            Stats.RejectedConnections++;
            Libc.close(fd);
            return null;
        }
        if (!_freeProxySessions.TryPop(out var session))
        {
            session = new ProxySession(this, ProxySessions.Count, SessionPool.Rent(), Options.Limits, Options.ProxyBufferBytes);
            ProxySessions.Add(session);
        }
        ActiveSessions++;
        Stats.ActiveConnections = ActiveSessions;
        Platform.SetNoDelay(fd);
        return session;
    }

    /// <summary>Starts a proxy session on an accepted client socket; returns its first intent.</summary>
    protected ProxyIo OpenProxySession(ProxySession session, int fd)
    {
        Span<byte> address = stackalloc byte[64];
        int length = Platform.FormatPeerAddress(fd, address, out uint peer);
        bool trusted = !Options.TrustedProxies.IsEmpty && peer != 0 && Options.TrustedProxies.Contains(new ReadOnlySpan<byte>(&peer, 4));
        return session.Open(this, fd, address[..length], trusted);
    }

    /// <summary>Proxy mode: upstream connections held by sessions (connecting, busy, or idle between a client's requests).</summary>
    public int SessionUpstreams;

    /// <summary>
    /// Whether a new upstream connection may be opened under --upstream-max-connections (sessions' and pooled ones
    /// count). At the cap the pooled connection idle longest is closed, or else one a client holds idle between
    /// requests; with neither the request is refused (counted). <paramref name="requester"/> has none of its own.
    /// </summary>
    public bool MakeRoomForUpstream(ProxySession requester)
    {
        if (SessionUpstreams + (IdleUpstreams?.Count ?? 0) < Options.UpstreamConnectionsPerWorker) return true;
        if (IdleUpstreams?.CloseOldest() == true) return true;
        foreach (var s in ProxySessions)
        {
            if (s == requester || !s.HoldsIdleUpstream) continue;
            s.DropIdleUpstream();
            return true;
        }
        Stats.UpstreamCapRefusals++;
        return false;
    }

    /// <summary>An idle upstream connection went into the pool: the engine stops watching it for its old session.</summary>
    public virtual void OnUpstreamParked(int fd) { }

    /// <summary>A pooled upstream connection now belongs to <paramref name="session"/>: the engine watches it for that session.</summary>
    public virtual void OnUpstreamAdopted(ProxySession session) { }

    protected void FreeProxySession(ProxySession session)
    {
        session.Reset(this);
        _freeProxySessions.Push(session);
        ActiveSessions--;
        Stats.ActiveConnections = ActiveSessions;
    }

    protected void FreeSession(HttpSession session)
    {
        session.Reset(this);
        _freeSessions.Push(session);
        ActiveSessions--;
        Stats.ActiveConnections = ActiveSessions;
    }

    /// <summary>Whether a session has overstayed its current wait (slowloris, idle keep-alive, stalled reader).</summary>
    protected bool TimedOut(HttpSession s)
    {
        if (s.Lingering) return NowMs - s.LingerSinceMs > HttpSession.LingeringTimeoutMs;
        if (s.Waiting == SessionNext.Recv) s.ResponseRate.Reset();
        return s.Waiting switch
        {
            SessionNext.Recv when s.RecvLength > 0 => NowMs - s.HeadStartMs > Options.HeaderTimeoutSeconds * 1000L,
            SessionNext.Recv => NowMs - s.IdleSinceMs > (Draining ? 0 : Options.KeepAliveTimeoutSeconds * 1000L),
            _ => NowMs - s.LastProgressMs > Options.SendTimeoutSeconds * 1000L || ResponseTooSlow(ref s.ResponseRate, s.Fd),
        };
    }

    /// <summary>
    /// Checked once a second while a response waits on its client: below --min-response-rate the connection is
    /// marked to be reset at its close, as Kestrel aborts it, dropping what the client would never have taken.
    /// </summary>
    public bool ResponseTooSlow(ref ResponseRateWindow window, int clientFd)
    {
        if (Options.MinResponseBytesPerSecond == 0) return false;
        long acked = Platform.BytesAcked(clientFd);
        if (acked < 0 || !window.Below(acked, NowMs, Options.MinResponseBytesPerSecond, Options.MinResponseRatePeriodSeconds * 1000L)) return false;
        Stats.SlowResponseAborts++;
        Platform.ResetOnClose(clientFd);
        return true;
    }

    /// <summary>
    /// One sendfile of the session's zero-copy body, at most <paramref name="budget"/> bytes, on a non-blocking
    /// socket: the bytes sent, 0 when the socket is full (the engine waits for writability), or -1 when the
    /// connection must end (an error, or a file that shrank so the promised length cannot be kept).
    /// </summary>
    protected unsafe long SendFileSlice(HttpSession s, long budget)
    {
        long offset = s.StreamOffset;
        nint n = Libc.sendfile(s.Fd, s.StreamFile!.Fd, &offset, (nuint)Math.Min(s.StreamRemaining, budget));
        if (n <= 0) return n < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR ? 0 : -1;
        s.StreamOffset += n;
        s.StreamRemaining -= n;
        Stats.BytesZeroCopy += n;
        s.LastProgressMs = NowMs;
        return n;
    }

    /// <summary>Proxy mode: empty pipes for spliced relays, each a (read fd, write fd) pair, kept for the next relay.</summary>
    private readonly Stack<(int Read, int Write)> _idlePipes = new();
    private const int IdlePipesKept = 64;

    /// <summary>Whether proxy sessions relay large response bodies by splice.</summary>
    public bool ProxySplices => Options.ProxySpliceMinBytes > 0;

    /// <summary>An empty non-blocking pipe for a spliced relay; false when none can be made (the body is copied then).</summary>
    public unsafe bool RentPipe(out int read, out int write)
    {
        if (_idlePipes.TryPop(out var pipe))
        {
            (read, write) = pipe;
            return true;
        }
        int* fds = stackalloc int[2];
        if (Libc.pipe2(fds, Libc.O_CLOEXEC | Libc.O_NONBLOCK) != 0)
        {
            read = write = -1;
            return false;
        }
        read = fds[0];
        write = fds[1];
        return true;
    }

    /// <summary>Takes back a pipe; one still holding bytes (a relay cut short) is closed, as are pipes beyond the few kept.</summary>
    public void ReturnPipe(int read, int write, bool empty)
    {
        if (empty && _idlePipes.Count < IdlePipesKept)
        {
            _idlePipes.Push((read, write));
            return;
        }
        Libc.close(read);
        Libc.close(write);
    }

    protected void CloseIdlePipes()
    {
        while (_idlePipes.TryPop(out var pipe))
        {
            Libc.close(pipe.Read);
            Libc.close(pipe.Write);
        }
    }

    protected static int ErrnoOf(long result) => result < 0 ? (int)-result : 0;

    protected static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
