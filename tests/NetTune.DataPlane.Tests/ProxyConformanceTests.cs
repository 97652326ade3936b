using NetTune.Http.Proxy;
using System.Text;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>RFC 9112/9110 details of what the proxy sends each way, on both engines.</summary>
public class ProxyConformanceTests(ProxiesInFront proxies) : IClassFixture<ProxiesInFront>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    private ReceivedRequest Received(string marker) =>
        proxies.Upstream.Requests.Single(r => r.Target.Contains(marker, StringComparison.Ordinal));

    [Theory]
    [InlineData("iouring", "/bare-cr")]
    [InlineData("epoll", "/bare-cr")]
    [InlineData("iouring", "/obs-fold")]
    [InlineData("epoll", "/obs-fold")]
    public void AnUpstreamHeadWithABareCrOrAFoldedLineIsA502(string engine, string path)
    {
        using var c = new RawClient(proxies[engine].Port);
        c.Send($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        var r = c.Read();
        Assert.Equal(502, r.Status);
        Assert.Equal("", r.Header("X-Injected"));
    }

    [Theory, MemberData(nameof(Engines))]
    public void AnHttp10ClientGetsAChunkedResponseDecoded(string engine)
    {
        using var c = new RawClient(proxies[engine].Port);
        c.Send("GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n");
        var r = c.Read();
        Assert.Equal(200, r.Status);
        Assert.Equal("", r.Header("Transfer-Encoding"));
        // The upstream's Trailer announces fields that are not relayed once the chunks are decoded.
        Assert.Equal("", r.Header("Trailer"));
        Assert.Equal("close", r.Header("Connection"));
        Assert.Equal("hello world!", Encoding.ASCII.GetString(r.Body));
    }

    [Theory, MemberData(nameof(Engines))]
    public void AnHttp10ClientsExpectIsIgnored(string engine)
    {
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue from an HTTP/1.0 client, which would not understand a 100.
        var marker = Guid.NewGuid().ToString("N");
        using var c = new RawClient(proxies[engine].Port);
        c.Send($"POST /echo?m={marker} HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        Thread.Sleep(300);
        c.Send("hello");
        var r = c.Read();
        Assert.Equal(200, r.Status);
        Assert.Equal("hello"u8.ToArray(), Received(marker).Body);
    }

    [Theory, MemberData(nameof(Engines))]
    public void HeadersNamedInConnectionAreDroppedBothWays(string engine)
    {
        var marker = Guid.NewGuid().ToString("N");
        using var c = new RawClient(proxies[engine].Port);
        c.Send($"GET /echo?m={marker} HTTP/1.1\r\nHost: x\r\nConnection: X-Client-Hop\r\nX-Client-Hop: secret\r\nX-Stays: yes\r\n\r\n");
        Assert.Equal(200, c.Read().Status);
        var up = Received(marker);
        Assert.Null(up.Header("X-Client-Hop"));
        Assert.Equal("yes", up.Header("X-Stays"));

        c.Send("GET /connection-names HTTP/1.1\r\nHost: x\r\n\r\n");
        var r = c.Read();
        Assert.Equal("", r.Header("X-Up-Hop"));
        Assert.Equal("kept", r.Header("X-End"));
    }

    [Theory, MemberData(nameof(Engines))]
    public void AnAbsoluteFormTargetGoesUpstreamInOriginFormWithItsHost(string engine)
    {
        var marker = Guid.NewGuid().ToString("N");
        using var c = new RawClient(proxies[engine].Port);
        c.Send($"GET http://other.example:81/echo?m={marker} HTTP/1.1\r\nHost: wrong.example\r\n\r\n");
        Assert.Equal(200, c.Read().Status);
        var up = Received(marker);
        Assert.Equal($"/echo?m={marker}", up.Target);
        Assert.Equal("other.example:81", Assert.Single(up.Values("Host")));
    }

    [Theory]
    [InlineData("iouring", "bad host")]
    [InlineData("epoll", "bad host")]
    [InlineData("iouring", "a/b")]
    [InlineData("epoll", "user@host")]
    [InlineData("iouring", "host:80x")]
    public void AnInvalidHostIs400(string engine, string host)
    {
        using var c = new RawClient(proxies[engine].Port);
        c.Send($"GET /echo HTTP/1.1\r\nHost: {host}\r\n\r\n");
        Assert.Equal(400, c.Read().Status);
    }

    [Theory, MemberData(nameof(Engines))]
    public void AnHttp10RequestWithoutHostGetsTheUpstreamsName(string engine)
    {
        var marker = Guid.NewGuid().ToString("N");
        using var c = new RawClient(proxies[engine].Port);
        c.Send($"GET /echo?m={marker} HTTP/1.0\r\n\r\n");
        Assert.Equal(200, c.Read().Status);
        Assert.Equal(proxies.Upstream.Address, Received(marker).Header("Host"));
    }

    [Theory, MemberData(nameof(Engines))]
    public void AChunkBiggerThanTheLimitIs413AtOnce(string engine)
    {
        // --max-body-bytes is 4 MiB here: the size line alone is enough to refuse.
        using (var c = new RawClient(proxies[engine].Port))
        {
            c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\nabc");
            Assert.Equal(413, c.Read().Status);
        }
        using (var c = new RawClient(proxies[engine].Port))
        {
            c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            Thread.Sleep(100);
            // 5 + 0x3FFFFF bytes is one more than 4 MiB: refused on the size line, before any of that chunk.
            c.Send("3FFFFF\r\nabc");
            var r = c.Read();
            Assert.Equal(413, r.Status);
            Assert.Equal("close", r.Header("Connection"));
        }
    }
}

public class ChunkDecodingTests
{
    private const string Body = "5;ext=1\r\nhello\r\n1\r\n \r\nC\r\nworld, again\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

    [Fact]
    public void DecodingInPlaceGivesThePayloadForEverySplit()
    {
        var wire = Encoding.ASCII.GetBytes(Body);
        int end = Body.IndexOf("NEXT", StringComparison.Ordinal);
        for (int split = 0; split <= wire.Length; split++)
        {
            var buffer = (byte[])wire.Clone();
            var reader = new ChunkedBodyReader();
            var payload = new List<byte>();
            int consumed = 0;
            foreach (var (start, length) in new[] { (0, split), (split, wire.Length - split) })
            {
                if (reader.IsDone || length == 0) continue;
                int used = reader.Decode(buffer.AsSpan(start, length), out int decoded);
                Assert.True(used >= 0, $"split {split}");
                payload.AddRange(buffer.AsSpan(start, decoded).ToArray());
                consumed += used;
            }
            Assert.True(reader.IsDone, $"split {split}");
            Assert.Equal(end, consumed);
            Assert.Equal("hello world, again", Encoding.ASCII.GetString(payload.ToArray()));
            Assert.Equal(18, reader.DeclaredBytes);
        }
    }

    [Fact]
    public void TheDeclaredSizeIsKnownAtTheSizeLine()
    {
        var reader = new ChunkedBodyReader();
        Assert.Equal(6, reader.Consume("10\r\nab"u8));
        Assert.Equal(2, reader.PayloadBytes);
        Assert.Equal(16, reader.DeclaredBytes);
    }
}
