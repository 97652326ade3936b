using System.Net;
using System.Net.Sockets;
using System.Text;
using Prometheus;

namespace NetTune.DataPlane;

/// <summary>
/// /metrics, /healthz and /readyz on a separate port, served off the workers' threads, so scraping never touches a
/// worker. Connections are served concurrently, each within one deadline, and capped: no client can make a probe wait.
/// Worker counters are plain fields; they are copied into prometheus-net metrics just before each scrape.
/// </summary>
internal sealed class AdminServer : IDisposable
{
    private readonly Socket _listener;
    private readonly IReadOnlyList<Worker> _workers;
    private readonly Func<bool> _draining;
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly SemaphoreSlim _scrape = new(1, 1);
    /// <summary>Open admin connections, oldest first.</summary>
    private readonly LinkedList<Socket> _open = new();
    private long _evicted;
    private volatile bool _stopped;

    /// <summary>Admin connections served at once; the next one evicts the oldest.</summary>
    public const int MaxConnections = 32;
    /// <summary>
    /// Time from the accept for the whole exchange, request and answer: the kubelet's probes wait 1 s by default,
    /// Prometheus 10 s, and a connection that has not asked within this has nothing to do with either.
    /// </summary>
    public const int RequestDeadlineMs = 3000;

    public int Port { get; }

    public AdminServer(string address, int port, IReadOnlyList<Worker> workers, Func<bool> draining)
    {
        _workers = workers;
        _draining = draining;
        var ip = IPAddress.Parse(address);
        _listener = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(ip, port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new StartupException($"admin port {port} on {address} is already in use");
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            throw new StartupException($"--admin-address {address} is not an address of this host");
        }
        _listener.Listen(256);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        RegisterMetrics();
        _ = Task.Run(AcceptLoop);
    }

    private void RegisterMetrics()
    {
        var factory = Metrics.WithCustomRegistry(_registry);
        var requests = factory.CreateCounter("nettune_dataplane_requests_total", "Responses sent, by HTTP status.", "status");
        var bytes = factory.CreateCounter("nettune_dataplane_sent_bytes_total",
            "Response bytes sent, by path: copied from user memory, or zero-copy (splice/sendfile, or zero-copy sends of " +
            "cached bodies: SENDMSG_ZC/MSG_ZEROCOPY; see nettune_dataplane_zero_copy_send_notices_total for whether the kernel copied anyway).", "path");
        var notices = factory.CreateCounter("nettune_dataplane_zero_copy_send_notices_total",
            "Completion notices of zero-copy sends, by what the kernel did: zerocopy, or copied (it does over loopback).", "result");
        var active = factory.CreateGauge("nettune_dataplane_active_connections", "Open client connections.", "worker");
        var accepts = factory.CreateCounter("nettune_dataplane_accepts_total", "Connections accepted.", "worker");
        var rejected = factory.CreateCounter("nettune_dataplane_rejected_connections_total", "Connections closed at accept: the worker had --max-connections open (by default from the memory budget).", "worker");
        var acceptErrors = factory.CreateCounter("nettune_dataplane_accept_errors_total",
            "Accepts that failed for want of file descriptors (EMFILE/ENFILE); each pauses that worker's accepting for 100 ms.", "worker");
        var enters = factory.CreateCounter("nettune_dataplane_ring_enter_calls_total", "io_uring_enter calls.", "worker");
        var submissions = factory.CreateCounter("nettune_dataplane_ring_submissions_total", "SQEs submitted to io_uring.", "worker");
        var completions = factory.CreateCounter("nettune_dataplane_ring_completions_total", "CQEs reaped from io_uring.", "worker");
        var draining = factory.CreateGauge("nettune_dataplane_draining", "1 after SIGTERM while in-flight requests finish.");
        var pauses = factory.CreateCounter("nettune_dataplane_recv_pauses_total",
            "Receives paused for back-pressure: a client pipelined more than the server had parsed.", "worker");
        var allocated = factory.CreateGauge("nettune_dataplane_worker_allocated_bytes",
            "Managed bytes allocated by the worker thread so far; flat when the hot path does not allocate.", "worker");
        var connectFailures = factory.CreateCounter("nettune_dataplane_upstream_connect_failures_total",
            "Proxy mode: upstream connects that failed or timed out (that upstream is skipped for 10 s).", "worker");
        var retries = factory.CreateCounter("nettune_dataplane_upstream_retries_total",
            "Proxy mode: requests resent on a fresh upstream connection after a kept-alive one failed before answering.", "worker");
        var poolHits = factory.CreateCounter("nettune_dataplane_upstream_pool_hits_total",
            "Proxy mode: requests that took an idle kept-alive upstream connection left by an earlier client instead of connecting.", "worker");
        var capRefusals = factory.CreateCounter("nettune_dataplane_upstream_cap_refusals_total",
            "Proxy mode: requests answered 503 because the worker had --upstream-max-connections open and none idle to give way.", "worker");
        var upstreamConnections = factory.CreateGauge("nettune_dataplane_upstream_connections",
            "Proxy mode: upstream connections the worker holds open, busy or idle in its pool (at most --upstream-max-connections).", "worker");
        var slowAborts = factory.CreateCounter("nettune_dataplane_slow_response_aborts_total",
            "Connections reset because the client took a response more slowly than --min-response-rate.", "worker");
        var adminEvicted = factory.CreateCounter("nettune_dataplane_admin_evicted_connections_total",
            $"Admin connections closed unanswered because {MaxConnections} were open and this one was the oldest.");
        var collections = factory.CreateGauge("nettune_dataplane_gc_collections", "GC collections in the process.", "generation");
        var duration = factory.CreateHistogram("nettune_dataplane_request_duration_seconds",
            "Time from the receive that delivered a request's first byte to its response fully handed to the kernel " +
            "(send completion on io_uring, last send on epoll); pipelined responses sent together share the send's time.",
            new HistogramConfiguration { Buckets = RequestDuration.UpperBoundsSeconds });
        // What has already been fed into the histogram, per bucket, summed over workers.
        var observedCounts = new long[RequestDuration.BucketCount];
        var observedTicks = new long[RequestDuration.BucketCount];
        var info = factory.CreateGauge("nettune_dataplane_worker_info",
            "One per worker: the CPU it is pinned to, that CPU's NUMA node (or --numa-node; -1: none known) and its I/O engine.",
            "worker", "cpu", "numa_node", "engine");

        _registry.AddBeforeCollectCallback(() =>
        {
            var statuses = WorkerStats.TrackedStatuses;
            for (int i = 0; i < statuses.Length; i++)
            {
                long total = 0;
                foreach (var w in _workers) total += w.Stats.RequestsByStatus[i];
                requests.WithLabels(statuses[i] == WorkerStats.OtherStatus ? "other" : statuses[i].ToString()).IncTo(total);
            }
            // The workers keep plain per-bucket counts and tick sums; each scrape feeds the histogram what is
            // new in every bucket as one observation of the bucket's mean, which lands in that same bucket,
            // so bucket counts, _count and _sum all come out exact.
            for (int b = 0; b < observedCounts.Length; b++)
            {
                long count = 0, ticks = 0;
                foreach (var w in _workers)
                {
                    count += w.Stats.DurationCounts[b];
                    ticks += w.Stats.DurationTicks[b];
                }
                long newCount = count - observedCounts[b];
                if (newCount <= 0) continue;
                double mean = RequestDuration.Seconds(ticks - observedTicks[b]) / newCount;
                duration.Observe(RequestDuration.ClampInto(b, mean), newCount);
                observedCounts[b] = count;
                observedTicks[b] = ticks;
            }
            bytes.WithLabels("copy").IncTo(_workers.Sum(w => w.Stats.BytesCopied));
            bytes.WithLabels("zerocopy").IncTo(_workers.Sum(w => w.Stats.BytesZeroCopy));
            notices.WithLabels("copied").IncTo(_workers.Sum(w => w.Stats.ZeroCopySendCopied));
            notices.WithLabels("zerocopy").IncTo(_workers.Sum(w => w.Stats.ZeroCopySendUncopied));
            foreach (var w in _workers)
            {
                string id = w.Index.ToString();
                active.WithLabels(id).Set(w.Stats.ActiveConnections);
                accepts.WithLabels(id).IncTo(w.Stats.Accepts);
                rejected.WithLabels(id).IncTo(w.Stats.RejectedConnections);
                acceptErrors.WithLabels(id).IncTo(w.Stats.AcceptErrors);
                enters.WithLabels(id).IncTo(w.Stats.EnterCalls);
                submissions.WithLabels(id).IncTo(w.Stats.SubmittedSqes);
                completions.WithLabels(id).IncTo(w.Stats.ReapedCqes);
                info.WithLabels(id, w.Cpu.ToString(), w.NumaNode.ToString(), w.EngineName).Set(1);
                allocated.WithLabels(id).Set(w.Stats.AllocatedBytes);
                pauses.WithLabels(id).IncTo(w.Stats.RecvPauses);
                connectFailures.WithLabels(id).IncTo(w.Stats.UpstreamConnectFailures);
                retries.WithLabels(id).IncTo(w.Stats.UpstreamRetries);
                poolHits.WithLabels(id).IncTo(w.Stats.UpstreamPoolHits);
                capRefusals.WithLabels(id).IncTo(w.Stats.UpstreamCapRefusals);
                upstreamConnections.WithLabels(id).Set(w.Stats.UpstreamConnections);
                slowAborts.WithLabels(id).IncTo(w.Stats.SlowResponseAborts);
            }
            draining.Set(_draining() ? 1 : 0);
            adminEvicted.IncTo(Interlocked.Read(ref _evicted));
            for (int g = 0; g <= GC.MaxGeneration; g++) collections.WithLabels(g.ToString()).Set(GC.CollectionCount(g));
        });
    }

    public bool Healthy
    {
        get
        {
            long now = Environment.TickCount64;
            // A worker that died, or whose loop has not turned for 5 s (it wakes at least once a second), is unhealthy.
            return _workers.All(w => w.Failure == null && (w.Stats.Finished || now - w.Stats.HeartbeatMs < 5000));
        }
    }

    /// <summary>
    /// Accepts without ever waiting on a client: each connection is served on its own, so a client that trickles
    /// bytes holds only its own connection, never the kubelet's probe behind it.
    /// </summary>
    private async Task AcceptLoop()
    {
        while (!_stopped)
        {
            Socket client;
            try { client = await _listener.AcceptAsync().ConfigureAwait(false); }
            catch (SocketException) { if (_stopped) return; continue; }
            catch (ObjectDisposedException) { return; }
            LinkedListNode<Socket> node;
            lock (_open)
            {
                // At the cap the oldest connection goes: a probe sends its request at once and is done in
                // milliseconds, so only connections that dawdle are ever old enough to be the one evicted.
                if (_open.Count >= MaxConnections)
                {
                    var oldest = _open.First!;
                    _open.RemoveFirst();
                    oldest.Value.Dispose();
                    Interlocked.Increment(ref _evicted);
                }
                node = _open.AddLast(client);
            }
            _ = ServeConnection(node);
        }
    }

    private async Task ServeConnection(LinkedListNode<Socket> node)
    {
        var client = node.Value;
        // One deadline for the whole exchange, from the accept: reading the request and sending the answer.
        using var deadline = new CancellationTokenSource(RequestDeadlineMs);
        try
        {
            await Handle(client, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            lock (_open)
            {
                if (node.List != null) _open.Remove(node);
            }
            client.Dispose();
        }
    }

    private async Task Handle(Socket client, CancellationToken ct)
    {
        var buf = new byte[4096];
        int len = 0;
        while (len < buf.Length)
        {
            int n = await client.ReceiveAsync(buf.AsMemory(len), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) break;
            len += n;
            if (buf.AsSpan(0, len).IndexOf("\r\n\r\n"u8) >= 0) break;
        }
        var line = Encoding.ASCII.GetString(buf, 0, Math.Max(0, buf.AsSpan(0, len).IndexOf((byte)'\r')));
        var parts = line.Split(' ');
        string path = parts.Length >= 2 ? parts[1].Split('?')[0] : "";
        bool get = parts.Length >= 1 && parts[0] is "GET" or "HEAD";
        int status;
        string type = "text/plain; charset=utf-8";
        byte[] body;
        if (!get) { status = 405; body = "method not allowed\n"u8.ToArray(); }
        else if (path == "/metrics")
        {
            status = 200;
            type = "text/plain; version=0.0.4; charset=utf-8";
            body = await CollectMetrics(ct).ConfigureAwait(false);
        }
        else if (path == "/healthz")
        {
            bool ok = Healthy;
            status = ok ? 200 : 503;
            body = Encoding.ASCII.GetBytes(ok ? "ok\n" : "worker failed or stalled\n");
        }
        else if (path == "/readyz")
        {
            bool ready = !_draining() && Healthy && _workers.All(w => w.Stats.Running);
            status = ready ? 200 : 503;
            type = "application/json";
            body = ReadyBody(ready ? "ready" : _draining() ? "draining" : "not ready");
        }
        else { status = 404; body = "not found\n"u8.ToArray(); }

        string reason = status switch { 200 => "OK", 404 => "Not Found", 405 => "Method Not Allowed", _ => "Service Unavailable" };
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {reason}\r\nContent-Type: {type}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await client.SendAsync(head, SocketFlags.None, ct).ConfigureAwait(false);
        if (parts[0] != "HEAD") await client.SendAsync(body, SocketFlags.None, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// One scrape at a time: the before-collect callback feeds the histogram what is new since the last scrape,
    /// which two concurrent scrapes would both count.
    /// </summary>
    private async Task<byte[]> CollectMetrics(CancellationToken ct)
    {
        await _scrape.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var ms = new MemoryStream();
            await _registry.CollectAndExportAsTextAsync(ms, ct).ConfigureAwait(false);
            return ms.ToArray();
        }
        finally
        {
            _scrape.Release();
        }
    }

    /// <summary>
    /// /readyz's body: {"status":"ready","workers":[{"worker":0,"cpu":1,"numaNode":0,"memoryBound":true}]}, so the
    /// operator and users can see where the pod really runs (numaNode -1: no node known).
    /// </summary>
    private byte[] ReadyBody(string state)
    {
        using var ms = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(ms))
        {
            json.WriteStartObject();
            json.WriteString("status", state);
            json.WriteStartArray("workers");
            foreach (var w in _workers)
            {
                json.WriteStartObject();
                json.WriteNumber("worker", w.Index);
                json.WriteNumber("cpu", w.Cpu);
                json.WriteNumber("numaNode", w.NumaNode);
                json.WriteBoolean("memoryBound", w.MemoryBound);
                json.WriteString("engine", w.EngineName);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    public void Dispose()
    {
        _stopped = true;
        _listener.Dispose();
        lock (_open)
        {
            foreach (var client in _open) client.Dispose();
            _open.Clear();
        }
    }
}
