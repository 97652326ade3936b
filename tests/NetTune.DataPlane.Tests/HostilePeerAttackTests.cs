using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// Slow and hostile peers, as an attacker on raw sockets would be one, against the real binary on 127.0.0.1. Each case
/// names the server whose behaviour it follows.
/// </summary>
public class HostilePeerAttackTests(TestRoot root, ITestOutputHelper output) : IClassFixture<TestRoot>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };
    public static TheoryData<string, string> ModesAndEngines => new()
    {
        { "static", "iouring" }, { "static", "epoll" }, { "proxy", "iouring" }, { "proxy", "epoll" },
    };

    /// <summary>
    /// The kubelet's probe (1 s timeout) against clients that trickle a byte at a time into the admin port, more of
    /// them than it serves at once. As Kestrel's and nginx's listeners do, every connection is served on its own with
    /// a deadline for the whole request; at the cap the oldest goes. The admin server does not depend on the engine,
    /// but the binary runs it beside either, so both are tried.
    /// </summary>
    [Theory, MemberData(nameof(Engines))]
    public void AdminTrickleDoesNotStarveProbes(string engine)
    {
        using var server = ServerProcess.Start(root.Path, engine, "--cpus", "0");
        var tricklers = new List<Socket>();
        try
        {
            // More than the admin server's 32 connections at once.
            for (int i = 0; i < 40; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                s.Connect("127.0.0.1", server.AdminPort);
                s.Send("G"u8);
                tricklers.Add(s);
            }
            var latencies = new List<double>();
            var trickle = Encoding.ASCII.GetBytes("ET /metrics HTTP/1.1\r\nHost: x\r\n");
            for (int round = 0; round < 7; round++)
            {
                // Each live trickler sends its next byte, as a client keeping a per-read timeout alive would.
                foreach (var s in tricklers)
                {
                    try { s.Send(trickle.AsSpan(round % trickle.Length, 1)); }
                    catch (SocketException) { } // closed by the server: expected
                }
                Thread.Sleep(400);
                var (status, ms) = Probe(server.AdminPort, "/healthz");
                Assert.Equal(200, status);
                latencies.Add(ms);
            }
            output.WriteLine($"/healthz under {tricklers.Count} trickling clients: {string.Join(", ", latencies.Select(l => $"{l:F1} ms"))}");
            // Typically a few ms; the bound on every probe is the kubelet's own 1 s timeout, since a machine busy with
            // other tests can delay any one answer by some 100 ms (before the fix each waited out the 5 s receive
            // timeout of the client in front of it). The median shows the answer is not merely under the timeout.
            Assert.All(latencies, l => Assert.True(l < 1000, $"/healthz took {l:F1} ms while clients trickled: a kubelet probe would fail"));
            var median = latencies.Order().ElementAt(latencies.Count / 2);
            Assert.True(median < 100, $"median /healthz {median:F1} ms while clients trickled");

            // The deadline is for the whole request, from the accept: a trickler that keeps sending is still cut.
            var last = tricklers[^1];
            var sw = Stopwatch.StartNew();
            bool closed = false;
            while (!closed && sw.ElapsedMilliseconds < 8000)
            {
                try
                {
                    last.Send("X"u8);
                    closed = last.Poll(200_000, SelectMode.SelectRead) && last.Available == 0;
                }
                catch (SocketException) { closed = true; }
            }
            Assert.True(closed, "a trickling admin client was still open 8 s after it connected (deadline 3 s)");
        }
        finally
        {
            foreach (var s in tricklers) s.Dispose();
        }
    }

    /// <summary>
    /// Kestrel's MinResponseDataRate (240 bytes/s after a 5 s grace, the defaults here too): a client with a small
    /// receive buffer that takes a byte a second of a response larger than every socket buffer between us. Before,
    /// only the 60 s send timeout between progress events bounded it, and a byte a minute kept it forever.
    /// </summary>
    [Theory, MemberData(nameof(ModesAndEngines))]
    public async Task ASlowReaderBelowTheMinimumResponseRateIsReset(string mode, string engine)
    {
        using var upstream = new ScriptedUpstream();
        using var server = mode == "static"
            ? ServerProcess.Start(root.Path, engine, "--cpus", "0")
            : ServerProcess.StartProxy(upstream.Address, engine, "--cpus", "0");
        long size = mode == "static" ? root.Large.Length : ScriptedUpstream.HugeBodyBytes;
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, ReceiveTimeout = 2000 };
        s.Connect("127.0.0.1", server.Port);
        s.Send(Encoding.ASCII.GetBytes($"GET {(mode == "static" ? "/10m.bin" : "/huge")} HTTP/1.1\r\nHost: x\r\n\r\n"));
        var sw = Stopwatch.StartNew();
        var one = new byte[1];
        long got = 0;
        bool ended = false;
        while (!ended && sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            Thread.Sleep(1000);
            // The server's reset (or FIN) shows in our socket's state even while our receive queue still holds bytes.
            ended = TcpState(s) != TcpEstablished;
            if (ended) break;
            try
            {
                int n = s.Receive(one);
                ended = n == 0;
                got += n;
            }
            catch (SocketException) { ended = true; }
        }
        output.WriteLine($"{mode}/{engine}: connection ended={ended} after {sw.Elapsed.TotalSeconds:F1} s, {got} of {size} bytes read");
        Assert.True(ended, $"a client reading a byte a second still held its response after {sw.Elapsed.TotalSeconds:F0} s");
        Assert.True(got < size);

        using var admin = new HttpClient();
        var metrics = MetricsTests.Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics"));
        Assert.Equal(1, metrics.Where(kv => kv.Key.StartsWith("nettune_dataplane_slow_response_aborts_total{", StringComparison.Ordinal)).Sum(kv => kv.Value));
        // The server goes on serving the clients that read.
        using var c = new RawClient(server.Port);
        c.Send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(mode == "static" ? 200 : 404, c.Read().Status);
    }

    /// <summary>
    /// Dotfiles, as nginx setups deny them (location ~ /\. { deny all; }) and Caddy's file_server hides them: a
    /// deployed tree often carries .env, .git/ or .htpasswd. Refused as not there (404) by default, whatever the
    /// spelling, since the check runs on the decoded path; --allow-dotfiles serves them.
    /// </summary>
    [Theory, MemberData(nameof(Engines))]
    public void DotfilesAreNotServedUnlessAllowed(string engine)
    {
        var www = Directory.CreateTempSubdirectory("nettune-dotfiles-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(www, ".env"), "SECRET=1\n");
            Directory.CreateDirectory(Path.Combine(www, ".git"));
            File.WriteAllText(Path.Combine(www, ".git", "config"), "[core]\n");
            Directory.CreateDirectory(Path.Combine(www, "a", ".hidden"));
            File.WriteAllText(Path.Combine(www, "a", ".hidden", "b"), "hidden\n");
            File.WriteAllText(Path.Combine(www, "visible.txt"), "visible\n");
            var attacks = new Dictionary<string, string>
            {
                ["/.env"] = "SECRET=1\n", ["/.git/config"] = "[core]\n", ["/a/.hidden/b"] = "hidden\n",
                ["/%2eenv"] = "SECRET=1\n", ["/%2Egit/config"] = "[core]\n", ["/a/%2ehidden/b"] = "hidden\n",
                ["/a%2f.hidden%2fb"] = "hidden\n", ["//./.env"] = "SECRET=1\n", ["/.env?x=1"] = "SECRET=1\n",
            };
            using (var server = ServerProcess.Start(www, engine, "--cpus", "0"))
            using (var c = new RawClient(server.Port))
            {
                foreach (var target in attacks.Keys)
                {
                    c.Send($"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
                    var r = c.Read();
                    Assert.True(r.Status == 404, $"{target}: {r.Status} {Encoding.ASCII.GetString(r.Body)}");
                }
                // A plain file still comes, on the same kept-alive connection.
                c.Send("GET /visible.txt HTTP/1.1\r\nHost: x\r\n\r\n");
                Assert.Equal("visible\n", Encoding.ASCII.GetString(c.Read().Body));
            }
            using (var server = ServerProcess.Start(www, engine, "--cpus", "0", "--allow-dotfiles"))
            using (var c = new RawClient(server.Port))
            {
                foreach (var (target, body) in attacks)
                {
                    c.Send($"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
                    var r = c.Read();
                    Assert.Equal((target, 200, body), (target, r.Status, Encoding.ASCII.GetString(r.Body)));
                }
            }
        }
        finally
        {
            Directory.Delete(www, recursive: true);
        }
    }

    /// <summary>
    /// nginx's <c>server name resolve</c>: an upstream name that moves (a Service's endpoints) is followed, on a
    /// period and after a failed connect, instead of being pinned to its start-up address for the process's life.
    /// The name lives in a real hosts-format file the data plane reads (--hosts-file); the two upstreams are real
    /// servers on 127.0.0.1:P and 127.0.0.2:P.
    /// </summary>
    [Theory, MemberData(nameof(Engines))]
    public void UpstreamNamesAreResolvedAgainOnAPeriodAndAfterAFailedConnect(string engine)
    {
        const string name = "moving.upstream.test";
        var hosts = Path.Combine(Directory.CreateTempSubdirectory("nettune-hosts-").FullName, "hosts");
        using var first = new ScriptedUpstream();
        using var second = new ScriptedUpstream(System.Net.IPAddress.Parse("127.0.0.2"), first.Port);
        File.WriteAllText(hosts, $"# test hosts\n127.0.0.1 {name}\n");
        // Without pooled upstream connections every client's request connects, so it shows where the name points.
        using (var proxy = ServerProcess.StartProxy($"{name}:{first.Port}", engine, "--cpus", "0", "--upstream-keepalive", "0",
                   "--hosts-file", hosts, "--upstream-resolve-interval", "1"))
        {
            Assert.Equal(200, Get(proxy.Port));
            Assert.Single(first.Requests);

            File.WriteAllText(hosts, $"127.0.0.2 {name} # moved\n");
            Assert.True(Eventually(() => Get(proxy.Port) == 200 && !second.Requests.IsEmpty, TimeSpan.FromSeconds(10)),
                $"the name moved to 127.0.0.2 but no request reached it; {first.Requests.Count} went to 127.0.0.1\n{proxy.Output}");
        }

        // A period long past the test: only the failed connect can make it look again.
        File.WriteAllText(hosts, $"127.0.0.1 {name}\n");
        using var third = new ScriptedUpstream(System.Net.IPAddress.Parse("127.0.0.3"), first.Port);
        using (var proxy = ServerProcess.StartProxy($"{name}:{first.Port}", engine, "--cpus", "0", "--upstream-keepalive", "0",
                   "--hosts-file", hosts, "--upstream-resolve-interval", "3600"))
        {
            int before = first.Requests.Count;
            Assert.Equal(200, Get(proxy.Port));
            Assert.Equal(before + 1, first.Requests.Count);
            File.WriteAllText(hosts, $"127.0.0.3 {name}\n");
            first.Dispose(); // 127.0.0.1:P now refuses
            Assert.True(Eventually(() => Get(proxy.Port) == 200 && !third.Requests.IsEmpty, TimeSpan.FromSeconds(10)),
                $"127.0.0.1 refused and the name points to 127.0.0.3, but no request reached it\n{proxy.Output}");
        }
        Directory.Delete(Path.GetDirectoryName(hosts)!, recursive: true);
    }

    /// <summary>
    /// nginx's realip module (set_real_ip_from) and Envoy's xff_num_trusted_hops: a client that claims to be someone
    /// else in X-Forwarded-For (or claims a host or scheme in X-Forwarded-Host/-Proto, Forwarded) must not reach the
    /// upstream with that claim unless it is a proxy we were told to trust.
    /// </summary>
    [Theory, MemberData(nameof(Engines))]
    public void ForgedForwardingHeadersAreReplacedUnlessThePeerIsATrustedProxy(string engine)
    {
        using var upstream = new ScriptedUpstream();
        const string forged = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\nX-Forwarded-Host: bank.example\r\n" +
                              "X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6;proto=https\r\n";
        ReceivedRequest Send(ServerProcess proxy, string marker)
        {
            using var c = new RawClient(proxy.Port);
            c.Send($"GET /echo?m={marker} HTTP/1.1\r\nHost: app\r\n{forged}\r\n");
            Assert.Equal(200, c.Read().Status);
            return upstream.Requests.Single(r => r.Target.EndsWith(marker, StringComparison.Ordinal));
        }

        // By default, and when the peer is outside the trusted list, the peer's own address replaces the claim.
        foreach (var extra in new[] { Array.Empty<string>(), ["--trusted-proxies", "10.0.0.0/8,192.168.0.1"] })
        {
            using var proxy = ServerProcess.StartProxy(upstream.Address, engine, ["--cpus", "0", .. extra]);
            var r = Send(proxy, $"untrusted{extra.Length}");
            Assert.Equal("127.0.0.1", Assert.Single(r.Values("X-Forwarded-For")));
            Assert.Null(r.Header("X-Forwarded-Host"));
            Assert.Null(r.Header("X-Forwarded-Proto"));
            Assert.Null(r.Header("Forwarded"));
        }
        // A trusted proxy's list goes on with its address appended, and its other claims pass.
        using (var proxy = ServerProcess.StartProxy(upstream.Address, engine, "--cpus", "0", "--trusted-proxies", "10.0.0.0/8, 127.0.0.0/8"))
        {
            var r = Send(proxy, "trusted");
            Assert.Equal("6.6.6.6, 7.7.7.7, 127.0.0.1", Assert.Single(r.Values("X-Forwarded-For")));
            Assert.Equal("bank.example", r.Header("X-Forwarded-Host"));
            Assert.Equal("https", r.Header("X-Forwarded-Proto"));
            Assert.Equal("for=6.6.6.6;proto=https", r.Header("Forwarded"));
        }
    }

    private static int Get(int port)
    {
        using var c = new RawClient(port);
        c.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
        return c.Read().Status;
    }

    private static bool Eventually(Func<bool> condition, TimeSpan patience)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < patience)
        {
            if (condition()) return true;
            Thread.Sleep(200);
        }
        return false;
    }

    private const int TcpEstablished = 1;

    /// <summary>tcpi_state, the first byte of TCP_INFO.</summary>
    private static int TcpState(Socket s)
    {
        var info = new byte[256];
        s.GetRawSocketOption(6 /* IPPROTO_TCP */, 11 /* TCP_INFO */, info);
        return info[0];
    }

    /// <summary>One GET on a fresh connection: the status and the milliseconds from connect to the end of the answer.</summary>
    private static (int Status, double Ms) Probe(int port, string path)
    {
        var sw = Stopwatch.StartNew();
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 5000 };
        s.Connect("127.0.0.1", port);
        s.Send(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        var answer = new MemoryStream();
        var buf = new byte[4096];
        int n;
        while ((n = s.Receive(buf)) > 0) answer.Write(buf, 0, n);
        double ms = sw.Elapsed.TotalMilliseconds;
        var text = Encoding.ASCII.GetString(answer.ToArray());
        return (int.Parse(text.Split(' ', 3)[1]), ms);
    }
}
