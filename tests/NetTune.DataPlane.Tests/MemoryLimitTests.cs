using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.DataPlane.Tests;

/// <summary>Floods open thousands of sockets: these tests run alone, not beside the others.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FloodCollection
{
    public const string Name = "floods";
}

/// <summary>
/// Memory bounded by the limit it runs under (issue 19, item 3): the data plane in a memory cgroup made by the test
/// survives a connection flood far above its budget, answers a client throughout, and gives the flood's memory back;
/// the proxy opens no more upstream connections than its cap.
/// </summary>
[Collection(FloodCollection.Name)]
public sealed class MemoryLimitTests(TestRoot root, ITestOutputHelper output) : IClassFixture<TestRoot>
{
    public static TheoryData<string, string> ModesAndEngines => new()
    {
        { "static", "iouring" }, { "static", "epoll" }, { "proxy", "iouring" }, { "proxy", "epoll" },
    };

    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    /// <summary>
    /// 128 MiB for one worker: its budget (MemoryBudget) is 768 static or 279 proxied connections. Without one,
    /// 10,000 connections each holding a 15 KB unfinished head need about 160 MB of session buffers (the issue measured
    /// 4,000 taking RSS from 40 to 122 MB): past the limit, so the kernel's OOM killer ends the process.
    /// </summary>
    private const long CgroupLimit = 128L << 20;
    private const int FloodConnections = 10_000;

    /// <summary>
    /// After the flood, RSS may stay this far above its level before (the pooled session objects, the managed heap);
    /// the flood's session blocks (about 21 MiB at the static budget) must have gone back.
    /// </summary>
    private const long AfterFloodSlackBytes = 8L << 20;

    [Theory, MemberData(nameof(ModesAndEngines))]
    public async Task SurvivesAFloodFarAboveItsBudgetAndGivesTheMemoryBack(string mode, string engine)
    {
        int flood = Math.Min(FloodConnections, OpenFilesLimit() - 1000);
        Assert.True(flood >= 8000, $"the open-files limit ({OpenFilesLimit()}) leaves too few sockets for a flood; raise ulimit -n");
        using var upstream = new ScriptedUpstream();
        using var cgroup = TestMemoryCgroup.Create(CgroupLimit);
        using var server = mode == "static"
            ? ServerProcess.StartWith(cgroup.Prefix, new Dictionary<string, string>(), root.Path, engine, "--cpus", "0", "--header-timeout", "3")
            // Bodies copied through each session's 64 KiB buffer (no splice) and no upstream cap below the connections:
            // every proxied flood connection touches its whole session block.
            : ServerProcess.StartProxyWith(cgroup.Prefix, upstream.Address, engine, "--cpus", "0", "--header-timeout", "3",
                "--proxy-splice-min-bytes", "0", "--upstream-max-connections", "1000");
        using var probe = new RawClient(server.Port, receiveTimeoutMs: 10_000);
        string request = mode == "static" ? "GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n" : "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
        // Enough requests to cycle through the io_uring engine's provided receive buffers (2,048 per worker), a
        // fixed cost that is not the flood's.
        for (int i = 0; i < 2500; i++) Ask(probe, request);
        Thread.Sleep(1000);
        long baseline = Rss(server.Pid);

        // Static: a 15 KB head that never ends, held until the header timeout. Proxy: a request for a 1 MiB answer that
        // is never read, relayed until the client goes.
        var head = Encoding.ASCII.GetBytes(mode == "static"
            ? "GET /1k.bin HTTP/1.1\r\nHost: x\r\nX-Pad: " + new string('a', 15_000) + "\r\n"
            : "GET /large HTTP/1.1\r\nHost: x\r\n\r\n");
        var sockets = new List<Socket>(flood);
        long peak = baseline, slowestProbeMs = 0;
        int refused = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < flood && clock.Elapsed < TimeSpan.FromSeconds(60); i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(s);
                try
                {
                    using var connectTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port), connectTimeout.Token);
                    s.Send(head);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    refused++;
                }
                if (i % 250 == 0)
                {
                    var asked = Stopwatch.StartNew();
                    try
                    {
                        Ask(probe, request);
                    }
                    catch (Exception e) when (e is IOException or SocketException)
                    {
                        Thread.Sleep(500);
                        Assert.Fail($"the probe failed after {i} flood connections ({e.Message}); server exited: {server.HasExited}");
                    }
                    slowestProbeMs = Math.Max(slowestProbeMs, asked.ElapsedMilliseconds);
                    peak = Math.Max(peak, Rss(server.Pid));
                }
            }
            Thread.Sleep(1000);
            Assert.False(server.HasExited, $"the server died in the flood: {server.Output}");
            Ask(probe, request);
            peak = Math.Max(peak, Rss(server.Pid));
            using var admin = new HttpClient();
            var metrics = MetricsTests.Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics"));
            double rejected = metrics.Where(m => m.Key.StartsWith("nettune_dataplane_rejected_connections_total", StringComparison.Ordinal)).Sum(m => m.Value);
            Assert.True(rejected > 0, "no connection was refused at accept: the flood stayed within the budget");
        }
        finally
        {
            foreach (var s in sockets) s.Dispose();
        }

        // The header timeout ends what the server held; the idle blocks go back within two trim periods.
        long after = long.MaxValue;
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromSeconds(60))
        {
            Thread.Sleep(1000);
            after = Rss(server.Pid);
            if (after <= baseline + AfterFloodSlackBytes) break;
        }
        output.WriteLine($"{mode}/{engine}: {flood} connections ({refused} failed on the client side), RSS {baseline >> 20} MiB before, " +
                         $"{peak >> 20} MiB peak, {after >> 20} MiB {waited.Elapsed.TotalSeconds:F0} s after; slowest probe {slowestProbeMs} ms");
        Assert.True(after <= baseline + AfterFloodSlackBytes,
            $"RSS {after >> 20} MiB a minute after the flood, {baseline >> 20} MiB before it (peak {peak >> 20} MiB)");
        using var fresh = new RawClient(server.Port, receiveTimeoutMs: 10_000);
        Ask(fresh, request);
        // The budget came from the cgroup the server started in.
        Assert.Contains("memory 128 MiB (cgroup)", server.Output);
    }

    [Theory, MemberData(nameof(Engines))]
    public void TwoThousandClientsOfASilentUpstreamOpenNoMoreThanTheCap(string engine)
    {
        Assert.True(OpenFilesLimit() >= 5000, $"the open-files limit ({OpenFilesLimit()}) leaves too few sockets; raise ulimit -n");
        using var upstream = new SilentUpstream();
        // 1,000 clients per worker: the derived cap is half of that.
        using var server = ServerProcess.StartProxy(upstream.Address, engine, "--cpus", "0", "--max-connections", "1000", "--upstream-timeout", "30");
        var clients = new List<Socket>();
        try
        {
            var request = Encoding.ASCII.GetBytes("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
            for (int i = 0; i < 2000; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 5000 };
                clients.Add(s);
                try
                {
                    s.Connect(IPAddress.Loopback, server.Port);
                    s.Send(request);
                }
                catch (SocketException) { } // closed at accept: beyond --max-connections
            }
            // Every client was either closed at accept, answered 503, or waits on an upstream connection.
            Thread.Sleep(2000);
            int answered503 = 0;
            var buffer = new byte[256];
            foreach (var s in clients)
            {
                if (!s.Poll(0, SelectMode.SelectRead)) continue;
                try
                {
                    int n = s.Receive(buffer);
                    if (n > 0 && Encoding.ASCII.GetString(buffer, 0, n).StartsWith("HTTP/1.1 503", StringComparison.Ordinal)) answered503++;
                }
                catch (SocketException) { }
            }
            output.WriteLine($"{engine}: upstream saw {upstream.Connections} connections; {answered503} clients got 503");
            Assert.InRange(upstream.Connections, 1, 500);
            Assert.True(answered503 >= 400, $"{answered503} clients were answered 503");
            Assert.Contains("1000 connections, 500 upstream connections", server.Output);
        }
        finally
        {
            foreach (var s in clients) s.Dispose();
        }
    }

    [Theory, MemberData(nameof(Engines))]
    public void AtTheCapAClientBetweenRequestsGivesUpItsIdleUpstreamConnection(string engine)
    {
        using var upstream = new ScriptedUpstream();
        using var server = ServerProcess.StartProxy(upstream.Address, engine, "--cpus", "0", "--upstream-max-connections", "2", "--upstream-keepalive", "0");
        // Five kept-alive clients one after another: each holds its upstream connection while idle, yet each is served.
        var clients = new List<RawClient>();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                var c = new RawClient(server.Port);
                clients.Add(c);
                c.Send($"GET /echo?i={i} HTTP/1.1\r\nHost: x\r\n\r\n");
                Assert.Equal(200, c.Read().Status);
            }
            // The first client comes back: its upstream connection was taken, so it gets a new one.
            clients[0].Send("GET /echo?again HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(200, clients[0].Read().Status);
            Thread.Sleep(200);
            Assert.InRange(EstablishedTo(upstream.Port), 1, 2);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    private static void Ask(RawClient client, string request)
    {
        client.Send(request);
        Assert.Equal(200, client.Read().Status);
    }

    /// <summary>Established TCP connections to 127.0.0.1:<paramref name="port"/> seen by the kernel (both ends are on this host).</summary>
    private static int EstablishedTo(int port)
    {
        string hexPort = port.ToString("X4");
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f[2] == "0100007F:" + hexPort && f[3] == "01");
    }

    private static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        throw new InvalidOperationException($"no VmRSS for {pid}");
    }

    private static int OpenFilesLimit()
    {
        foreach (var line in File.ReadLines("/proc/self/limits"))
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
                return int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3]);
        return 1024;
    }
}

/// <summary>An upstream that accepts connections and never answers; counts what it accepted.</summary>
public sealed class SilentUpstream : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _accepted = new();
    private readonly CancellationTokenSource _stop = new();

    public SilentUpstream()
    {
        _listener.Start(4096);
        _ = AcceptLoop();
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
    public int Connections { get { lock (_accepted) return _accepted.Count; } }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var s = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_accepted) _accepted.Add(s);
            }
            catch (Exception) { return; }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_accepted) foreach (var s in _accepted) s.Dispose();
    }
}

/// <summary>
/// A memory cgroup made for one test, a child of this process's own (cgroup v1's memory controller where it is
/// mounted, as on hybrid hosts, else cgroup v2), with a limit; the server starts inside it through <see cref="Prefix"/>
/// (a shell that moves itself in and execs the server). Removed on dispose, once its process has gone.
/// </summary>
public sealed class TestMemoryCgroup : IDisposable
{
    public string Path { get; }

    private TestMemoryCgroup(string path) => Path = path;

    /// <summary>The command the server is started through: it joins the cgroup, then execs the server ("$0" and its arguments).</summary>
    public string[] Prefix => ["sh", "-c", $"echo $$ > '{Path}/cgroup.procs' && exec \"$0\" \"$@\""];

    public static TestMemoryCgroup Create(long limitBytes)
    {
        string? v1 = null, v2 = null;
        foreach (var line in File.ReadLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts[0] == "0" && parts[1].Length == 0) v2 = parts[2];
            else if (parts[1].Split(',').Contains("memory")) v1 = parts[2];
        }
        string? dir = null;
        bool isV1 = false;
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            int dash = Array.IndexOf(fields, "-");
            if (dash < 0) continue;
            string fsType = fields[dash + 1], mountRoot = fields[3], mountPoint = fields[4];
            if (fsType == "cgroup" && v1 is not null && fields[dash + 3].Split(',').Contains("memory"))
            {
                dir = System.IO.Path.Combine(mountPoint, Relative(v1, mountRoot));
                isV1 = true;
                break;
            }
            if (fsType == "cgroup2" && v2 is not null && File.Exists(System.IO.Path.Combine(mountPoint, "cgroup.controllers"))
                && File.ReadAllText(System.IO.Path.Combine(mountPoint, "cgroup.controllers")).Split(' ', '\n').Contains("memory"))
                dir ??= System.IO.Path.Combine(mountPoint, Relative(v2, mountRoot));
        }
        if (dir is null) throw new InvalidOperationException("no memory cgroup controller is mounted (v1 memory or v2 with memory)");
        var path = System.IO.Path.Combine(dir, $"nettune-test-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(path);
        try
        {
            File.WriteAllText(System.IO.Path.Combine(path, isV1 ? "memory.limit_in_bytes" : "memory.max"), limitBytes.ToString());
            var swap = System.IO.Path.Combine(path, "memory.swap.max");
            if (!isV1 && File.Exists(swap)) File.WriteAllText(swap, "0");
        }
        catch
        {
            Directory.Delete(path);
            throw;
        }
        return new TestMemoryCgroup(path);
    }

    private static string Relative(string cgroup, string mountRoot) =>
        (mountRoot != "/" && cgroup.StartsWith(mountRoot, StringComparison.Ordinal) ? cgroup[mountRoot.Length..] : cgroup).TrimStart('/');

    public void Dispose()
    {
        // A cgroup can be removed once no process is left in it (the server is killed before this runs).
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Directory.Delete(Path);
                return;
            }
            catch (IOException) when (deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(100);
            }
        }
    }
}
