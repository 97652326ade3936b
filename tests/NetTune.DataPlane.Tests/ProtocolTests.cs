using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>A server per engine, started once for a test class and stopped with it.</summary>
public abstract class PerEngine : IDisposable
{
    private readonly Dictionary<string, ServerProcess> _servers = new();

    protected PerEngine(Func<string, ServerProcess> start)
    {
        foreach (var engine in new[] { "iouring", "epoll" }) _servers[engine] = start(engine);
    }

    public ServerProcess this[string engine] => _servers[engine];

    public virtual void Dispose()
    {
        foreach (var s in _servers.Values) s.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Both engines, two workers each, serving one test root.</summary>
public sealed class BothEngines : PerEngine
{
    public TestRoot Root { get; }

    public BothEngines() : this(new TestRoot()) { }

    private BothEngines(TestRoot root) : base(engine => ServerProcess.Start(root.Path, engine, "--cpus", "0-1")) => Root = root;

    public override void Dispose()
    {
        base.Dispose();
        Root.Dispose();
    }
}

public class ProtocolTests(BothEngines servers) : IClassFixture<BothEngines>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    private static HttpClient Client(ServerProcess server) => server.NewHttpClient();

    [Theory, MemberData(nameof(Engines))]
    public async Task TheRightEngineRuns(string engine)
    {
        Assert.StartsWith(engine, servers[engine].Engine);
        using var http = Client(servers[engine]);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("index.html")).StatusCode);
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task ServesFilesOverOneKeptAliveConnection(string engine)
    {
        using var http = Client(servers[engine]);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(servers.Root.Small, await http.GetByteArrayAsync("1k.bin"));
            Assert.Equal(servers.Root.Medium, await http.GetByteArrayAsync("64k.bin"));
        }
        var index = await http.GetAsync("/");
        Assert.Equal("<h1>root</h1>\n", await index.Content.ReadAsStringAsync());
        Assert.Equal("text/html", index.Content.Headers.ContentType!.MediaType);
        Assert.NotNull(index.Headers.ETag);
        Assert.NotNull(index.Content.Headers.LastModified);
        Assert.NotNull(index.Headers.Date);
        Assert.Equal("bytes", string.Join(",", index.Headers.AcceptRanges));
        Assert.Equal("text/css", (await http.GetAsync("style.css")).Content.Headers.ContentType!.MediaType);
        Assert.Equal("<h1>dir</h1>\n", await http.GetStringAsync("dir/"));
        Assert.Equal("space\n", await http.GetStringAsync("a%20b.txt"));
        Assert.Equal("", await http.GetStringAsync("empty.txt"));
        Assert.Equal("<h1>root</h1>\n", await http.GetStringAsync("link-in"));

        // One connection served everything: the server kept it alive.
        using var raw = new RawClient(servers[engine].Port);
        for (int i = 0; i < 5; i++)
        {
            raw.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(servers.Root.Small, raw.Read().Body);
        }
    }

    [Theory, MemberData(nameof(Engines))]
    public void AnswersPipelinedRequestsInOrder(string engine)
    {
        using var raw = new RawClient(servers[engine].Port);
        var batch = new StringBuilder();
        var expected = new List<(int Status, bool Head, byte[]? Body)>();
        for (int i = 0; i < 40; i++)
        {
            switch (i % 5)
            {
                case 0: batch.Append("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"); expected.Add((200, false, servers.Root.Small)); break;
                case 1: batch.Append("HEAD /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n"); expected.Add((200, true, [])); break;
                case 2: batch.Append("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"); expected.Add((404, false, null)); break;
                case 3: batch.Append("GET /64k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-199\r\n\r\n"); expected.Add((206, false, servers.Root.Medium[100..200])); break;
                case 4: batch.Append("GET /10m.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-5000\r\n\r\n"); expected.Add((206, false, servers.Root.Large[^5000..])); break;
            }
        }
        raw.Send(batch.ToString());
        foreach (var (status, head, body) in expected)
        {
            var r = raw.Read(head);
            Assert.Equal(status, r.Status);
            if (body != null) Assert.Equal(body, r.Body);
        }
        // And a large streamed body in the middle of a pipeline keeps the order too.
        raw.Send("GET /10m.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(TestRoot.Sha(servers.Root.Large), TestRoot.Sha(raw.Read().Body));
        Assert.Equal(servers.Root.Small, raw.Read().Body);
    }

    [Theory, MemberData(nameof(Engines))]
    public void HeadSendsHeadersOnly(string engine)
    {
        using var raw = new RawClient(servers[engine].Port);
        raw.Send("HEAD /10m.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        var head = raw.Read(head: true);
        Assert.Equal(200, head.Status);
        Assert.Equal(servers.Root.Large.Length.ToString(), head.Header("Content-Length"));
        // If HEAD had leaked a body, this would read garbage instead of the next response.
        Assert.Equal(servers.Root.Small, raw.Read().Body);
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task ServesRangesAnd416(string engine)
    {
        using var http = Client(servers[engine]);
        async Task<HttpResponseMessage> Get(string path, string range)
        {
            var req = new HttpRequestMessage(HttpMethod.Get, path);
            req.Headers.TryAddWithoutValidation("Range", range);
            return await http.SendAsync(req);
        }
        var r = await Get("64k.bin", "bytes=1000-1999");
        Assert.Equal(HttpStatusCode.PartialContent, r.StatusCode);
        Assert.Equal(servers.Root.Medium[1000..2000], await r.Content.ReadAsByteArrayAsync());
        Assert.Equal("bytes 1000-1999/65536", r.Content.Headers.ContentRange!.ToString());

        r = await Get("10m.bin", "bytes=5000000-");
        Assert.Equal(HttpStatusCode.PartialContent, r.StatusCode);
        Assert.Equal(TestRoot.Sha(servers.Root.Large[5000000..]), TestRoot.Sha(await r.Content.ReadAsByteArrayAsync()));

        r = await Get("1k.bin", "bytes=-24");
        Assert.Equal(servers.Root.Small[^24..], await r.Content.ReadAsByteArrayAsync());

        r = await Get("1k.bin", "bytes=1024-");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, r.StatusCode);
        Assert.Equal("bytes */1024", r.Content.Headers.ContentRange!.ToString());

        r = await Get("1k.bin", "bytes=0-1,4-5");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(servers.Root.Small, await r.Content.ReadAsByteArrayAsync());
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task AnswersConditionalRequestsWith304(string engine)
    {
        using var http = Client(servers[engine]);
        var first = await http.GetAsync("64k.bin");
        var etag = first.Headers.ETag!;
        var lastModified = first.Content.Headers.LastModified!.Value;

        var req = new HttpRequestMessage(HttpMethod.Get, "64k.bin");
        req.Headers.IfNoneMatch.Add(etag);
        var r = await http.SendAsync(req);
        Assert.Equal(HttpStatusCode.NotModified, r.StatusCode);
        Assert.Empty(await r.Content.ReadAsByteArrayAsync());

        req = new HttpRequestMessage(HttpMethod.Get, "64k.bin");
        req.Headers.IfModifiedSince = lastModified;
        Assert.Equal(HttpStatusCode.NotModified, (await http.SendAsync(req)).StatusCode);

        req = new HttpRequestMessage(HttpMethod.Get, "64k.bin");
        req.Headers.IfModifiedSince = lastModified.AddSeconds(-1);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(req)).StatusCode);

        req = new HttpRequestMessage(HttpMethod.Get, "64k.bin");
        req.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"nope\""));
        r = await http.SendAsync(req);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(servers.Root.Medium, await r.Content.ReadAsByteArrayAsync());
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task LargeFilesAreByteExact(string engine)
    {
        using var http = Client(servers[engine]);
        var large = await http.GetByteArrayAsync("10m.bin");
        Assert.Equal(TestRoot.Sha(servers.Root.Large), TestRoot.Sha(large));
        var medium = await http.GetByteArrayAsync("64k.bin");
        Assert.Equal(TestRoot.Sha(servers.Root.Medium), TestRoot.Sha(medium));
    }

    public static TheoryData<string, string, int> Malformed => Cross(new (string, int)[]
    {
        ("garbage\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789", 413),
        ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 405),
        ("GET /" + new string('a', 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + new string('b', 17000) + "\r\n\r\n", 431),
        ("GET / HTTP/1.1\r\nHost: x\r\n" + string.Concat(Enumerable.Range(0, 101).Select(i => $"X-{i}: v\r\n")) + "\r\n", 431),
        ("GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    });

    private static TheoryData<string, string, int> Cross((string, int)[] cases)
    {
        var data = new TheoryData<string, string, int>();
        foreach (var engine in new[] { "iouring", "epoll" })
            foreach (var (request, status) in cases) data.Add(engine, request, status);
        return data;
    }

    [Theory, MemberData(nameof(Malformed))]
    public void RefusesMalformedAndOversizedRequestsThenCloses(string engine, string request, int status)
    {
        using var raw = new RawClient(servers[engine].Port);
        raw.Send(request);
        var r = raw.Read();
        Assert.Equal(status, r.Status);
        Assert.Equal("close", r.Header("Connection"));
        Assert.True(raw.ReadsEof());
    }

    [Theory, MemberData(nameof(Engines))]
    public void AnswersOtherMethodsWith405AndStaysOpen(string engine)
    {
        using var raw = new RawClient(servers[engine].Port);
        raw.Send("DELETE /1k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        var r = raw.Read();
        Assert.Equal(405, r.Status);
        Assert.Equal("GET, HEAD", r.Header("Allow"));
        Assert.Equal(200, raw.Read().Status);
    }

    public static TheoryData<string, string, int> Traversals => Cross(new (string, int)[]
    {
        ("/../etc/passwd", 403),
        ("/dir/../../etc/passwd", 403),
        ("/%2e%2e/etc/passwd", 403),
        ("/%2E%2E%2Fetc%2Fpasswd", 403),
        ("/dir/..%2f..%2fetc/passwd", 403),
        ("/link-out", 403),
        ("/link-dir-out/secret.txt", 403),
        ("/link-abs-in", 403),
        ("/1k.bin%00.html", 400),
        ("/%zz", 400),
        ("/missing.txt", 404),
        ("/noindex/", 404),
        ("/1k.bin/child", 404),
    });

    [Theory, MemberData(nameof(Traversals))]
    public void RefusesTraversalAndEscapes(string engine, string target, int status)
    {
        using var raw = new RawClient(servers[engine].Port);
        raw.Send($"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        var r = raw.Read();
        Assert.Equal(status, r.Status);
        Assert.DoesNotContain("secret", Encoding.ASCII.GetString(r.Body));
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task SurvivesRandomAndMutatedBytes(string engine)
    {
        var rng = new Random(engine.Length * 7919);
        var valid = Encoding.ASCII.GetBytes("GET /64k.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=1-10\r\nIf-None-Match: \"a\"\r\n\r\n");
        var allowed = new[] { 200, 206, 304, 400, 403, 404, 405, 413, 414, 416, 431, 505 };
        for (int i = 0; i < 150; i++)
        {
            byte[] input;
            if (i % 3 == 0)
            {
                input = new byte[rng.Next(1, 2000)];
                rng.NextBytes(input);
            }
            else
            {
                input = (byte[])valid.Clone();
                for (int m = rng.Next(1, 6); m > 0; m--) input[rng.Next(input.Length)] = (byte)rng.Next(256);
                if (i % 3 == 2) input = [.. input, .. input[..rng.Next(input.Length)]];
            }
            using var raw = new RawClient(servers[engine].Port);
            raw.Send(input);
            raw.Socket.Shutdown(SocketShutdown.Send); // EOF lets the server finish instead of waiting for more
            var reply = raw.ReadToEnd();
            // Every reply is a sequence of well-formed responses with an allowed status, or nothing.
            int pos = 0;
            while (pos < reply.Length)
            {
                var text = Encoding.Latin1.GetString(reply, pos, Math.Min(64, reply.Length - pos));
                Assert.StartsWith("HTTP/1.1 ", text);
                Assert.Contains(int.Parse(text.Substring(9, 3)), allowed);
                int headEnd = reply.AsSpan(pos).IndexOf("\r\n\r\n"u8);
                Assert.True(headEnd > 0);
                var head = Encoding.Latin1.GetString(reply, pos, headEnd);
                var lengthLine = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                int length = lengthLine == null || text.Substring(9, 3) == "304" ? 0 : int.Parse(lengthLine[15..].Trim());
                pos += headEnd + 4 + length;
            }
        }
        using var http = Client(servers[engine]);
        Assert.Equal(servers.Root.Small, await http.GetByteArrayAsync("1k.bin"));
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task AdminPortServesMetricsAndHealth(string engine)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{servers[engine].AdminPort}/") };
        Assert.Equal("ok\n", await http.GetStringAsync("healthz"));
        Assert.StartsWith("{\"status\":\"ready\",", await http.GetStringAsync("readyz"));
        using (var client = Client(servers[engine])) await client.GetByteArrayAsync("1k.bin");
        var metrics = await http.GetStringAsync("metrics");
        Assert.True(metrics.Contains("nettune_dataplane_requests_total{status=\"200\"}"), $"missing {"nettune_dataplane_requests_total{status=\"200\"}"} in:\n{metrics}");
        Assert.True(metrics.Contains("nettune_dataplane_sent_bytes_total{path=\"copy\"}"), $"missing {"nettune_dataplane_sent_bytes_total{path=\"copy\"}"} in:\n{metrics}");
        Assert.True(metrics.Contains("nettune_dataplane_accepts_total{worker=\"1\"}"), $"missing {"nettune_dataplane_accepts_total{worker=\"1\"}"} in:\n{metrics}");
        Assert.True(metrics.Contains("nettune_dataplane_ring_enter_calls_total"), $"missing {"nettune_dataplane_ring_enter_calls_total"} in:\n{metrics}");
        Assert.True(metrics.Contains($"engine=\"{servers[engine].Engine}\""), $"missing {$"engine=\"{servers[engine].Engine}\""} in:\n{metrics}");
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("nope")).StatusCode);
    }
}
