using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>Tests that need their own server: timeouts, drain, zero-copy modes, limits, start-up errors.</summary>
public class LifecycleTests : IClassFixture<TestRoot>
{
    private readonly TestRoot _root;
    public LifecycleTests(TestRoot root) => _root = root;

    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    [Theory, MemberData(nameof(Engines))]
    public void ClosesSlowAndIdleClients(string engine)
    {
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0", "--header-timeout", "1", "--keepalive-timeout", "2");
        using var slow = new RawClient(server.Port);
        using var idle = new RawClient(server.Port);
        slow.Send("GET /1k.bin HTTP/1.1\r\nHo"); // a head that never completes (slowloris)
        idle.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(_root.Small, idle.Read().Body);
        // Both reads would block for the 20 s receive timeout (and throw) if the server never closed.
        Assert.True(slow.ReadsEof());
        Assert.True(idle.ReadsEof());
        using var fresh = new RawClient(server.Port);
        fresh.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, fresh.Read().Status);
    }

    [Theory, MemberData(nameof(Engines))]
    public void DrainsOnSigtermWithoutCuttingARequestOff(string engine)
    {
        var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0-1");
        using var idle = new RawClient(server.Port);
        using var busy = new RawClient(server.Port);
        busy.Socket.ReceiveBufferSize = 64 * 1024;
        idle.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, idle.Read().Status);

        busy.Send("GET /10m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        // Read only a little, so most of the 10 MiB body is still in flight when SIGTERM lands.
        var first = new byte[4096];
        int got = busy.Socket.Receive(first);
        Assert.True(got > 0);
        server.Terminate();

        Assert.True(idle.ReadsEof()); // idle keep-alive connections are closed right away
        var rest = busy.ReadToEnd();
        var all = first[..got].Concat(rest).ToArray();
        int headEnd = all.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(headEnd > 0);
        var body = all[(headEnd + 4)..];
        Assert.Equal(TestRoot.Sha(_root.Large), TestRoot.Sha(body));

        Assert.True(server.WaitForExit(30000), "server did not exit after drain");
        Assert.Equal(0, server.ExitCode);
        Assert.Contains("drained", server.Output);
        Assert.Throws<SocketException>(() => new RawClient(server.Port).Dispose());
        server.Dispose();
    }

    [Theory]
    [InlineData("iouring", "on", "1000")]
    [InlineData("epoll", "on", "1000")]
    [InlineData("iouring", "off", "1000")]
    [InlineData("epoll", "off", "1000")]
    [InlineData("iouring", "on", "262144")] // 64 KiB is memory-cached but still leaves zero-copy
    [InlineData("epoll", "on", "262144")]
    [InlineData("iouring", "on", "1000", "splice")] // the ring's own splice instead of inline sendfile
    [InlineData("iouring", "on", "262144", "splice")]
    public async Task StreamsLargeFilesByteExactWithAndWithoutZeroCopy(string engine, string zeroCopy, string memoryCacheMaxFile, string ringZeroCopy = "sendfile")
    {
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0", "--zero-copy", zeroCopy, "--memory-cache-max-file", memoryCacheMaxFile,
            "--io-uring-zero-copy", ringZeroCopy);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.Port}/") };
        Assert.Equal(TestRoot.Sha(_root.Large), TestRoot.Sha(await http.GetByteArrayAsync("10m.bin")));
        for (int i = 0; i < 20; i++)
            Assert.Equal(TestRoot.Sha(_root.Medium), TestRoot.Sha(await http.GetByteArrayAsync("64k.bin")));
        var req = new HttpRequestMessage(HttpMethod.Get, "10m.bin");
        req.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(3_000_001, 7_000_000);
        var partial = await (await http.SendAsync(req)).Content.ReadAsByteArrayAsync();
        Assert.Equal(TestRoot.Sha(_root.Large[3_000_001..7_000_001]), TestRoot.Sha(partial));

        using var admin = new HttpClient();
        var metrics = await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics");
        double zc = Metric(metrics, "nettune_dataplane_sent_bytes_total{path=\"zerocopy\"}");
        if (zeroCopy == "on") Assert.True(zc >= _root.Large.Length, $"zero-copy bytes {zc}");
        else Assert.Equal(0, zc);
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task HotPathDoesNotAllocate(string engine)
    {
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0");
        const int Batch = 16;
        var pipeline = string.Concat(Enumerable.Repeat("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n", Batch / 2));
        await SteadyStateAllocation.AssertNoneAsync(server, pipeline, Batch, rounds: 250, status: 200, "GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    }

    [Theory]
    [InlineData("iouring", "multishot", "off")]
    [InlineData("iouring", "single", "off")]
    [InlineData("epoll", "single", "off")]
    [InlineData("iouring", "multishot", "on")]
    [InlineData("epoll", "single", "on")]
    [InlineData("iouring", "multishot", "on", "splice")]
    public async Task DeepPipelineBehindALargeResponseIsAnsweredInOrder(string engine, string recvMode, string zeroCopy, string ringZeroCopy = "sendfile")
    {
        // 2000 pipelined requests (~70 KB) arrive while 10 MiB is being written: more than the request
        // buffer holds, so the server must hold back (not drop, not close) until it has room.
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0", "--io-uring-recv", recvMode, "--zero-copy", zeroCopy, "--zero-copy-min-bytes", "1000",
            "--io-uring-zero-copy", ringZeroCopy);
        using var raw = new RawClient(server.Port);
        var batch = new System.Text.StringBuilder("GET /10m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        for (int i = 0; i < 2000; i++) batch.Append(i % 2 == 0 ? "GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n" : "HEAD /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        batch.Append("GET /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        var send = Task.Run(() => raw.Send(batch.ToString()));
        Assert.Equal(TestRoot.Sha(_root.Large), TestRoot.Sha(raw.Read().Body));
        for (int i = 0; i < 2000; i++)
        {
            var r = raw.Read(head: i % 2 == 1);
            Assert.Equal(200, r.Status);
            if (i % 2 == 0) Assert.Equal(_root.Small, r.Body);
            else Assert.Equal("65536", r.Header("Content-Length"));
        }
        Assert.Equal(_root.Medium, raw.Read().Body);
        await send;
        if (recvMode == "multishot" && engine == "iouring")
        {
            using var admin = new HttpClient();
            var metrics = await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics");
            Assert.True(Metric(metrics, "nettune_dataplane_recv_pauses_total{worker=\"0\"}") > 0, "the back-pressure path was not exercised");
        }
    }

    [Theory, MemberData(nameof(Engines))]
    public void RefusesConnectionsOverThePerWorkerCap(string engine)
    {
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0", "--max-connections", "2");
        using var a = new RawClient(server.Port);
        using var b = new RawClient(server.Port);
        a.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        b.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, a.Read().Status);
        Assert.Equal(200, b.Read().Status);
        using var c = new RawClient(server.Port);
        try { c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"); } catch (SocketException) { }
        Assert.True(c.ReadsEof());
        a.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, a.Read().Status);
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task NoticesChangedFilesAndRunsWithNumaAndHugepageOptions(string engine)
    {
        var dir = Directory.CreateTempSubdirectory("nettune-change-").FullName;
        try
        {
            var file = Path.Combine(dir, "v.txt");
            File.WriteAllText(file, "one\n");
            using var server = ServerProcess.Start(dir, engine, "--cpus", "0", "--numa-node", "0", "--hugepages", "--file-cache-valid-ms", "0");
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.Port}/") };
            var first = await http.GetAsync("v.txt");
            Assert.Equal("one\n", await first.Content.ReadAsStringAsync());
            File.WriteAllText(file, "two!\n");
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));
            var second = await http.GetAsync("v.txt");
            Assert.Equal("two!\n", await second.Content.ReadAsStringAsync());
            Assert.NotEqual(first.Headers.ETag, second.Headers.ETag);
            File.Delete(file);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("v.txt")).StatusCode);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void StartupErrorsAreClear()
    {
        var (code, output) = ServerProcess.RunToExit("--root", "/nonexistent-dir", "--port", "0");
        Assert.Equal(1, code);
        Assert.Contains("is not a directory", output);

        using var busy = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        busy.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        busy.Listen();
        int port = ((IPEndPoint)busy.LocalEndPoint!).Port;
        (code, output) = ServerProcess.RunToExit("--root", _root.Path, "--address", "127.0.0.1", "--port", port.ToString());
        Assert.Equal(1, code);
        Assert.Contains("already in use", output);

        (code, output) = ServerProcess.RunToExit("--root", _root.Path, "--port", "0", "--cpus", "1000");
        Assert.Equal(1, code);
        Assert.Contains("outside this process's allowed CPUs", output);

        (code, output) = ServerProcess.RunToExit("--root", _root.Path, "--io-engine", "kqueue");
        Assert.Equal(2, code);
        Assert.Contains("--io-engine must be", output);
    }

    private static double Metric(string text, string series)
    {
        var m = Regex.Match(text, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"metric {series} missing");
        return double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
