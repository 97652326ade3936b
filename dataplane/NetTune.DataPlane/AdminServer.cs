using System.Net;
using System.Net.Sockets;
using System.Text;
using Prometheus;

namespace NetTune.DataPlane;

/// <summary>
/// /metrics, /healthz and /readyz on a separate port and thread, so scraping never touches a worker.
/// Worker counters are plain fields; they are copied into prometheus-net metrics just before each scrape.
/// </summary>
internal sealed class AdminServer : IDisposable
{
    private readonly Socket _listener;
    private readonly IReadOnlyList<Worker> _workers;
    private readonly Func<bool> _draining;
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Thread _thread;
    private volatile bool _stopped;

    public int Port { get; }

    public AdminServer(string address, int port, IReadOnlyList<Worker> workers, Func<bool> draining)
    {
        _workers = workers;
        _draining = draining;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(IPAddress.Parse(address), port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new StartupException($"admin port {port} on {address} is already in use");
        }
        _listener.Listen(64);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        RegisterMetrics();
        _thread = new Thread(Serve) { Name = "dataplane-admin", IsBackground = true };
        _thread.Start();
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
            }
            draining.Set(_draining() ? 1 : 0);
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

    private void Serve()
    {
        while (!_stopped)
        {
            Socket client;
            try { client = _listener.Accept(); }
            catch (SocketException) { if (_stopped) return; continue; }
            catch (ObjectDisposedException) { return; }
            try { Handle(client); }
            catch (Exception e) when (e is SocketException or IOException) { }
            finally { client.Dispose(); }
        }
    }

    private void Handle(Socket client)
    {
        client.ReceiveTimeout = 5000;
        client.SendTimeout = 5000;
        var buf = new byte[4096];
        int len = 0;
        while (len < buf.Length)
        {
            int n = client.Receive(buf, len, buf.Length - len, SocketFlags.None);
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
            using var ms = new MemoryStream();
            _registry.CollectAndExportAsTextAsync(ms).GetAwaiter().GetResult();
            body = ms.ToArray();
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
        client.Send(head);
        if (parts[0] != "HEAD") client.Send(body);
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
    }
}
