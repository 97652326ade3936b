using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>Cached bodies around the zero-copy-send threshold, and a few sizes on either side of it.</summary>
public sealed class ZeroCopySendRoot : IDisposable
{
    public const int Threshold = 16384;
    public string Path { get; } = Directory.CreateTempSubdirectory("nettune-zcsend-").FullName;
    public Dictionary<string, byte[]> Files { get; } = new();

    public ZeroCopySendRoot()
    {
        var rng = new Random(7);
        foreach (int size in new[] { 1024, Threshold - 1, Threshold, Threshold + 1, 100_000, 200 * 1024, 3 * 1024 * 1024 })
        {
            var data = new byte[size];
            rng.NextBytes(data);
            var name = $"{size}.bin";
            File.WriteAllBytes(System.IO.Path.Combine(Path, name), data);
            Files[name] = data;
        }
    }

    /// <summary>Files the server holds in memory (the default cache limit is 256 KiB) and sends zero-copy.</summary>
    public IEnumerable<string> ZeroCopyEligible => Files.Where(f => f.Value.Length >= Threshold && f.Value.Length <= 256 * 1024).Select(f => f.Key);

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}

/// <summary>
/// --zero-copy-send against the real kernel over loopback (forced on, since auto skips loopback peers):
/// exact bytes, pipelining, keep-alive, clients that vanish mid-body, and the metrics that show the path.
/// --zero-copy off keeps splice/sendfile out, so every zero-copy byte counted comes from the sends under test.
/// </summary>
public class ZeroCopySendTests(ZeroCopySendRoot root) : IClassFixture<ZeroCopySendRoot>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    private static ServerProcess Start(ZeroCopySendRoot root, string engine, string mode, params string[] extra) =>
        ServerProcess.Start(root.Path, engine, ["--cpus", "0", "--zero-copy", "off", "--zero-copy-send", mode,
            "--zero-copy-send-min-bytes", ZeroCopySendRoot.Threshold.ToString(CultureInfo.InvariantCulture), .. extra]);

    private static string Get(string name, string extra = "") => $"GET /{name} HTTP/1.1\r\nHost: x\r\n{extra}\r\n";

    [Theory, MemberData(nameof(Engines))]
    public async Task BodiesAroundTheThresholdAreByteExactOverOneKeptAliveConnection(string engine)
    {
        using var server = Start(root, engine, "on");
        var before = await Metrics(server);
        long zeroCopyBodies = 0, zeroCopyResponses = 0;
        using (var c = new RawClient(server.Port))
        {
            for (int round = 0; round < 3; round++)
                foreach (var (name, data) in root.Files)
                {
                    c.Send(Get(name));
                    var r = c.Read();
                    Assert.Equal(200, r.Status);
                    Assert.Equal(TestRoot.Sha(data), TestRoot.Sha(r.Body));
                    if (root.ZeroCopyEligible.Contains(name))
                    {
                        zeroCopyBodies += data.Length;
                        zeroCopyResponses++;
                    }
                }
        }
        // Each of those responses left in its own zero-copy send, and each send gets one notice; wait for
        // the worker to have seen them all (the client can read before the notice arrives).
        var after = await WaitFor(server, m => Notices(m) - Notices(before) >= zeroCopyResponses);
        double zeroCopyBytes = after[ZeroCopyBytes] - before.GetValueOrDefault(ZeroCopyBytes);
        Assert.True(zeroCopyBytes >= zeroCopyBodies, $"{zeroCopyBytes} zero-copy bytes for {zeroCopyBodies} bytes of eligible bodies");
        // Only heads ride along with those bodies; the smaller files and the 3 MiB stream were copied.
        Assert.True(zeroCopyBytes <= zeroCopyBodies + zeroCopyResponses * 1024, $"{zeroCopyBytes} zero-copy bytes: more than the eligible responses");
        Assert.True(after[CopiedBytes] - before.GetValueOrDefault(CopiedBytes) >= root.Files["1024.bin"].Length * 3 + root.Files["3145728.bin"].Length * 3);
        Assert.Equal(0, await ActiveConnections(server));
    }

    [Theory]
    [InlineData("iouring", "off")]
    [InlineData("iouring", "auto")]
    [InlineData("epoll", "off")]
    [InlineData("epoll", "auto")]
    public async Task OffAndAutoOverLoopbackCopy(string engine, string mode)
    {
        using var server = Start(root, engine, mode);
        using (var c = new RawClient(server.Port))
            foreach (var name in root.ZeroCopyEligible)
            {
                c.Send(Get(name));
                Assert.Equal(TestRoot.Sha(root.Files[name]), TestRoot.Sha(c.Read().Body));
            }
        var m = await WaitFor(server, m => m.GetValueOrDefault(CopiedBytes) >= root.ZeroCopyEligible.Sum(n => root.Files[n].Length));
        Assert.Equal(0, m[ZeroCopyBytes]);
        Assert.Equal(0, Notices(m));
    }

    [Theory]
    [InlineData("iouring", "off")]
    [InlineData("iouring", "on")] // the 3 MiB file is spliced: a zero-copy send linked to splices
    [InlineData("epoll", "off")]
    [InlineData("epoll", "on")]   // ... or sendfile'd right after a MSG_ZEROCOPY send
    public async Task PipelinedMixOfSizesIsAnsweredInOrder(string engine, string spliceMode)
    {
        using var server = Start(root, engine, "on", "--zero-copy", spliceMode, "--zero-copy-min-bytes", "1000", "--loopback-copy-min-bytes", "100000000");
        // Enough responses per batch that the head area fills while notices are outstanding, with
        // ranges, HEADs, small copied bodies and a streamed file between the zero-copy ones.
        var names = root.Files.Keys.ToArray();
        var expected = new List<(string Name, bool Head, int From, int To)>();
        var batch = new StringBuilder();
        for (int i = 0; i < 120; i++)
        {
            var name = names[i % names.Length];
            int len = root.Files[name].Length;
            if (i % 11 == 5)
            {
                batch.Append($"HEAD /{name} HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.Add((name, true, 0, len));
            }
            else if (i % 7 == 3)
            {
                int from = len / 3, to = len - len / 5;
                batch.Append(Get(name, $"Range: bytes={from}-{to - 1}\r\n"));
                expected.Add((name, false, from, to));
            }
            else
            {
                batch.Append(Get(name));
                expected.Add((name, false, 0, len));
            }
        }
        var clients = Enumerable.Range(0, 3).Select(_ => new RawClient(server.Port)).ToArray();
        try
        {
            await Task.WhenAll(clients.Select(c => Task.Run(() =>
            {
                for (int round = 0; round < 3; round++)
                {
                    var send = Task.Run(() => c.Send(batch.ToString()));
                    foreach (var (name, head, from, to) in expected)
                    {
                        var r = c.Read(head);
                        Assert.Equal(from == 0 ? 200 : 206, r.Status);
                        if (head) Assert.Equal(root.Files[name].Length.ToString(CultureInfo.InvariantCulture), r.Header("Content-Length"));
                        else Assert.Equal(TestRoot.Sha(root.Files[name][from..to]), TestRoot.Sha(r.Body));
                    }
                    send.Wait();
                }
            })));
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
        var m = await WaitFor(server, m => m[Active] == 0);
        Assert.True(m[ZeroCopyBytes] > 0, "nothing was sent zero-copy");
        Assert.True(Notices(m) > 0, "no zero-copy completion notice was counted");
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task ASlowReaderStillGetsTheExactBytes(string engine)
    {
        using var server = Start(root, engine, "on");
        using var c = new RawClient(server.Port);
        c.Socket.ReceiveBufferSize = 64 * 1024;
        // The client does not read at first, so sends complete while their bytes still sit unacknowledged
        // in the server's socket, pointing at the head area and the cached bodies. Reusing either before
        // the kernel's notice would change what this client later reads. The order is shuffled so that a
        // head written over an unsent one would differ from it.
        var rng = new Random(11);
        var names = new[] { "16384.bin", "16385.bin", "100000.bin", "1024.bin", "204800.bin" };
        var order = Enumerable.Range(0, 160).Select(_ => names[rng.Next(names.Length)]).ToArray();
        var send = Task.Run(() => c.Send(string.Concat(order.Select(n => Get(n)))));
        await Task.Delay(500);
        foreach (var name in order)
        {
            var r = c.Read();
            Assert.Equal(200, r.Status);
            Assert.Equal(TestRoot.Sha(root.Files[name]), TestRoot.Sha(r.Body));
        }
        await send;
        var m = await WaitFor(server, m => m[Active] == 1);
        Assert.True(m[ZeroCopyBytes] > 0, "nothing was sent zero-copy");
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task ClientsThatDisconnectMidBodyLeaveNothingBehind(string engine)
    {
        using var server = Start(root, engine, "on");
        for (int i = 0; i < 8; i++)
        {
            using var c = new RawClient(server.Port);
            c.Socket.ReceiveBufferSize = 16 * 1024;
            // ~4 MiB of zero-copy bodies: far more than the socket buffers hold, so sends are still
            // queued (and pages pinned) when the client goes away without reading them.
            c.Send(string.Concat(Enumerable.Repeat(Get("204800.bin"), 20)));
            var first = c.Read();
            Assert.Equal(root.Files["204800.bin"], first.Body);
            if (i % 2 == 0) c.Socket.LingerState = new LingerOption(true, 0); // RST rather than FIN
            c.Socket.Close();
        }
        // The server is still up and serves the same bodies, and every session (each waited for its
        // zero-copy notices before being freed) has gone.
        using (var fresh = new RawClient(server.Port))
        {
            fresh.Send(Get("204800.bin"));
            Assert.Equal(root.Files["204800.bin"], fresh.Read().Body);
        }
        var m = await WaitFor(server, m => m[Active] == 0);
        Assert.Equal(0, m[Active]);
        Assert.True(m[ZeroCopyBytes] > 0);
        Assert.False(server.HasExited);
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task ZeroCopySendsDoNotAllocateInSteadyState(string engine)
    {
        using var server = Start(root, engine, "on");
        const int Batch = 12;
        var pipeline = string.Concat(Enumerable.Repeat(Get("16384.bin") + Get("1024.bin") + Get("100000.bin"), Batch / 3));
        // The warm-up pass also grows the session's list of entries awaiting notices to its working size.
        await SteadyStateAllocation.AssertNoneAsync(server, pipeline, Batch, rounds: 150, status: 200, Get("1024.bin"));
        Assert.True((await Metrics(server))[ZeroCopyBytes] > 0, "nothing was sent zero-copy");
    }

    [Fact]
    public void ParsesTheFlags()
    {
        var o = ServerOptions.Parse(["--root", "/srv", "--zero-copy-send", "on", "--zero-copy-send-min-bytes", "4096"]);
        Assert.Equal(ZeroCopySendMode.On, o.ZeroCopySend);
        Assert.Equal(4096, o.ZeroCopySendMinBytes);
        Assert.Equal(ZeroCopySendMode.Auto, ServerOptions.Parse(["--root", "/srv"]).ZeroCopySend);
        Assert.Contains("--zero-copy-send must be off, on or auto",
            Assert.Throws<OptionsException>(() => ServerOptions.Parse(["--root", "/srv", "--zero-copy-send", "always"])).Message);
        Assert.Contains("--zero-copy-send-min-bytes must be",
            Assert.Throws<OptionsException>(() => ServerOptions.Parse(["--root", "/srv", "--zero-copy-send-min-bytes", "0"])).Message);
        Assert.Contains("--zero-copy-send off|on|auto", ServerOptions.Usage);
    }

    private const string ZeroCopyBytes = "nettune_dataplane_sent_bytes_total{path=\"zerocopy\"}";
    private const string CopiedBytes = "nettune_dataplane_sent_bytes_total{path=\"copy\"}";
    private const string Active = "nettune_dataplane_active_connections{worker=\"0\"}";

    private static double Notices(Dictionary<string, double> m) =>
        m.GetValueOrDefault("nettune_dataplane_zero_copy_send_notices_total{result=\"zerocopy\"}") +
        m.GetValueOrDefault("nettune_dataplane_zero_copy_send_notices_total{result=\"copied\"}");

    private static async Task<double> ActiveConnections(ServerProcess server) => (await WaitFor(server, m => m[Active] == 0))[Active];

    /// <summary>Scrapes until <paramref name="done"/> holds (the worker publishes its counters as it goes), at most 15 s.</summary>
    private static async Task<Dictionary<string, double>> WaitFor(ServerProcess server, Func<Dictionary<string, double>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var m = await Metrics(server);
            if (done(m) || DateTime.UtcNow > deadline) return m;
            await Task.Delay(50);
        }
    }

    private static async Task<Dictionary<string, double>> Metrics(ServerProcess server)
    {
        using var admin = new HttpClient();
        var text = await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics");
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (Match m in SampleLine().Matches(text))
            samples[m.Groups[1].Value] = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        return samples;
    }

    private static Regex SampleLine() => new(@"^(nettune_dataplane_[^ ]+) (\S+)$", RegexOptions.Multiline);
}
