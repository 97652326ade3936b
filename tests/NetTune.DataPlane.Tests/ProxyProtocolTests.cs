using System.Text;
using NetTune.Http;
using NetTune.Http.Proxy;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>The proxy's pure parts: framing, head rewriting and upstream choice, without sockets.</summary>
public class ProxyProtocolTests
{
    private static readonly byte[] ChunkedMessage =
        "4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"u8.ToArray();

    [Fact]
    public void ChunkedReaderFindsTheEndWhereverTheBytesAreSplit()
    {
        var next = "GET /next HTTP/1.1\r\n"u8.ToArray();
        var stream = ChunkedMessage.Concat(next).ToArray();
        for (int split = 0; split <= stream.Length; split++)
        {
            var reader = new ChunkedBodyReader();
            int first = reader.Consume(stream.AsSpan(0, split));
            int second = reader.IsDone ? 0 : reader.Consume(stream.AsSpan(split));
            Assert.True(reader.IsDone, $"split at {split}");
            Assert.Equal(ChunkedMessage.Length, first + second);
            Assert.Equal(4 + 5 + 14, reader.PayloadBytes);
        }
        // Byte by byte, too.
        var slow = new ChunkedBodyReader();
        int total = 0;
        foreach (var b in ChunkedMessage) total += slow.Consume([b]);
        Assert.True(slow.IsDone);
        Assert.Equal(ChunkedMessage.Length, total);
    }

    [Theory]
    [InlineData("x\r\n")]                       // not hex
    [InlineData("\r\n")]                        // no size at all
    [InlineData("3\r\nabcX\r\n")]               // data not followed by CRLF
    [InlineData("3\nabc\r\n")]                  // bare LF
    [InlineData("1000000000000000\r\n")]        // absurd size
    [InlineData("0\r\nbad\ntrailer\r\n\r\n")]   // bare LF in a trailer
    [InlineData("ADD /x HTTP/1.1\r\n")]         // whitespace after the size not followed by ";" (RFC 9112 §7.1.1)
    [InlineData("5 x\r\nhello\r\n")]
    public void ChunkedReaderRefusesBrokenFraming(string text)
    {
        var reader = new ChunkedBodyReader();
        Assert.Equal(-1, reader.Consume(Encoding.ASCII.GetBytes(text)));
        Assert.True(reader.IsInvalid);
    }

    [Theory]
    [InlineData("5 ;a=b\r\nhello\r\n0\r\n\r\n")]
    [InlineData("5\t\r\nhello\r\n0\r\n\r\n")]
    [InlineData("5;a=\" b c\"\r\nhello\r\n0\r\n\r\n")]
    public void ChunkedReaderTakesWhitespaceBeforeAnExtensionOrTheLineEnd(string text)
    {
        var reader = new ChunkedBodyReader();
        Assert.Equal(text.Length, reader.Consume(Encoding.ASCII.GetBytes(text)));
        Assert.True(reader.IsDone);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false, BodyFraming.ContentLength, 12, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, BodyFraming.Chunked, 0, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, BodyFraming.Chunked, 0, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, BodyFraming.UntilClose, 0, false)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false, BodyFraming.UntilClose, 0, false)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true, BodyFraming.None, 0, true)]
    [InlineData("HTTP/1.1 204 No Content\r\n\r\n", false, BodyFraming.None, 0, true)]
    [InlineData("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", false, BodyFraming.None, 0, true)]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, BodyFraming.ContentLength, 1, false)]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, BodyFraming.ContentLength, 1, false)]
    [InlineData("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", false, BodyFraming.ContentLength, 1, true)]
    [InlineData("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", false, BodyFraming.ContentLength, 1, true)]
    public void UpstreamFramingFollowsRfc9112(string head, bool requestWasHead, BodyFraming framing, long length, bool reusable)
    {
        var bytes = Encoding.ASCII.GetBytes(head + "trailing body bytes");
        Assert.Equal(ParseStatus.Complete, UpstreamResponseParser.TryParse(bytes, 4096, requestWasHead, out var r));
        Assert.Equal(head.Length, r.HeadLength);
        Assert.Equal(framing, r.Framing);
        Assert.Equal(length, r.ContentLength);
        Assert.Equal(reusable, r.Reusable);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/2 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 abc OK\r\n\r\n")]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nno colon\r\n\r\n")]
    // A bare LF or CR anywhere in the head, the status line included, would split differently downstream.
    [InlineData("HTTP/1.1 200 OK\nX-A: 1\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\rX-A: 1\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n")]
    // RFC 9110 §5.5: NUL in a field value is refused like CR and LF.
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\0X-B: 2\r\nContent-Length: 0\r\n\r\n")]
    // RFC 9112 §5.1: whitespace before the colon; a lenient client would frame by "Content-Length : 5".
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 0\r\n\r\n")]
    // RFC 9112 §6.3 (and nginx): both framing headers, in either order.
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")]
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0; an empty coding list.
    [InlineData("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n")]
    // RFC 9110 §7.6.1: a Connection that names a framing header the body is still framed by.
    [InlineData("HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: keep-alive, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n")]
    public void BrokenUpstreamHeadsAreErrors(string head) =>
        Assert.Equal(ParseStatus.Error, UpstreamResponseParser.TryParse(Encoding.ASCII.GetBytes(head), 4096, false, out _));

    [Fact]
    public void UpstreamAndClientHeaderNamesAreTheSameTokens()
    {
        // Both directions take a header name as tchars up to the colon (RFC 9110 §5.6.2, RFC 9112 §5.1), every byte alike.
        for (int b = 0; b < 256; b++)
        {
            var name = new byte[] { (byte)'X', (byte)b, (byte)'Y' };
            var request = "GET / HTTP/1.1\r\nHost: h\r\n"u8.ToArray().Concat(name).Concat(": 1\r\n\r\n"u8.ToArray()).ToArray();
            var response = "HTTP/1.1 204 No Content\r\n"u8.ToArray().Concat(name).Concat(": 1\r\n\r\n"u8.ToArray()).ToArray();
            Assert.True(HttpParser.TryParse(request, HttpLimits.Default, out _) == UpstreamResponseParser.TryParse(response, 4096, false, out _),
                $"byte 0x{b:x2}");
        }
    }

    [Fact]
    public void UpstreamHeadsAreIncompleteUntilTheBlankLineAndBounded()
    {
        var head = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"u8.ToArray();
        Assert.Equal(ParseStatus.Incomplete, UpstreamResponseParser.TryParse(head, 4096, false, out _));
        Assert.Equal(ParseStatus.Error, UpstreamResponseParser.TryParse(head, head.Length, false, out _));
    }

    [Fact]
    public void RequestRewriteDropsHopByHopHeadersAndExtendsXForwardedFor()
    {
        var head = "\r\nPOST /a?b=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\n" +
                   "Proxy-Connection: x\r\nExpect: 100-continue\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\n" +
                   "Content-Length: 3\r\nX-Forwarded-Host: a\r\nx-forwarded-proto: https\r\nForwarded: for=1.1.1.1\r\nX-Keep: yes\r\n\r\n";
        var dest = new byte[1024];
        // From a trusted proxy: its list goes on, with its own address last.
        int n = ProxyHeadWriter.WriteRequest(Encoding.ASCII.GetBytes(head), dest, "9.9.9.9"u8, trustForwarded: true);
        Assert.Equal("POST /a?b=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Forwarded-Host: a\r\nx-forwarded-proto: https\r\n" +
                     "Forwarded: for=1.1.1.1\r\nX-Keep: yes\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8, 9.9.9.9\r\n\r\n",
            Encoding.ASCII.GetString(dest, 0, n));
        // From anyone else: only its own address, and none of its forwarding claims.
        n = ProxyHeadWriter.WriteRequest(Encoding.ASCII.GetBytes(head), dest, "9.9.9.9"u8);
        Assert.Equal("POST /a?b=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Keep: yes\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n",
            Encoding.ASCII.GetString(dest, 0, n));
        Assert.Equal(-1, ProxyHeadWriter.WriteRequest(Encoding.ASCII.GetBytes(head), new byte[20], "9.9.9.9"u8));
    }

    [Theory]
    [InlineData(ConnectionHeader.None, "")]
    [InlineData(ConnectionHeader.Close, "Connection: close\r\n")]
    [InlineData(ConnectionHeader.KeepAlive, "Connection: keep-alive\r\n")]
    public void ResponseRewriteStatesTheProxysOwnConnection(ConnectionHeader connection, string expected)
    {
        var head = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n";
        var dest = new byte[512];
        int n = ProxyHeadWriter.WriteResponse(Encoding.ASCII.GetBytes(head), dest, connection);
        Assert.Equal("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n" + expected + "\r\n", Encoding.ASCII.GetString(dest, 0, n));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nConnection: keep-alive\r\nETag: \"x\"\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\nconnection: close\r\n\r\n")]
    [InlineData("HTTP/1.0 200 OK\r\nProxy-Connection: x\r\nContent-Length: 0\r\nTE: trailers\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTE: a\r\nUpgrade: b\r\nConnection: keep-alive\r\nX-A: 1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: X-Secret, close\r\nX-Secret: 1\r\nX-A: 1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: keep-alive\r\n\r\n")]
    public void ResponseRewriteFromTheParseEqualsTheGeneralRewrite(string head)
    {
        var bytes = Encoding.ASCII.GetBytes(head);
        Assert.Equal(ParseStatus.Complete, UpstreamResponseParser.TryParse(bytes, 4096, false, out var r));
        AssertRewritesAgree(in r, bytes);
    }

    /// <summary>The rewrite that uses what the parse found gives the same head as the one that searches it again.</summary>
    private static void AssertRewritesAgree(in UpstreamResponse r, byte[] input)
    {
        var head = input.AsSpan(0, r.HeadLength);
        foreach (var connection in new[] { ConnectionHeader.None, ConnectionHeader.Close, ConnectionHeader.KeepAlive })
        foreach (bool dechunk in new[] { false, true })
        {
            var general = new byte[input.Length + 64];
            var fromParse = new byte[input.Length + 64];
            int g = ProxyHeadWriter.WriteResponse(head, general, connection, dechunk);
            int f = ProxyHeadWriter.WriteResponse(in r, head, fromParse, connection, dechunk);
            Assert.Equal(Encoding.Latin1.GetString(general, 0, Math.Max(g, 0)), Encoding.Latin1.GetString(fromParse, 0, Math.Max(f, 0)));
            Assert.Equal(g, f);
        }
    }

    [Fact]
    public void ParserAcceptsBodiesOnlyWhenTheLimitAllows()
    {
        var post = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"u8;
        // Without a limit (static mode) the server judges bodies by method; see StaticDetailsTests.
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(post, HttpLimits.Default, out var r));
        var proxyLimits = HttpLimits.Default with { MaxBodyBytes = 10 };
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(post, proxyLimits, out r));
        Assert.Equal(10, r.ContentLength);
        Assert.True(r.ExpectsContinue);
        Assert.Equal("POST", Encoding.ASCII.GetString(r.MethodToken.Of(post)));
        Assert.Equal(ParseStatus.Error, HttpParser.TryParse(post, HttpLimits.Default with { MaxBodyBytes = 9 }, out r));
        Assert.Equal(413, r.ErrorStatus);
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"u8, proxyLimits, out r));
        Assert.True(r.IsChunked);
        // Chunked is HTTP/1.1 only; another coding cannot be framed by us.
        Assert.Equal(ParseStatus.Error, HttpParser.TryParse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"u8, proxyLimits, out r));
        Assert.Equal(400, r.ErrorStatus);
        Assert.Equal(ParseStatus.Error, HttpParser.TryParse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"u8, proxyLimits, out r));
        Assert.Equal(501, r.ErrorStatus);
        // RFC 9110 §10.1.1: an HTTP/1.0 client's 100-continue is ignored, it would not understand a 100.
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse("POST / HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"u8, proxyLimits, out r));
        Assert.False(r.ExpectsContinue);
    }

    [Fact]
    public void RandomAndMutatedUpstreamBytesNeverThrowAndStayInBounds()
    {
        var rng = new Random(5);
        var validHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"u8.ToArray();
        // What nginx answers a kept-alive request with: one hop-by-hop line, so the rewrite takes the parse's way.
        var relayedHead = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nAccept-Ranges: bytes\r\n\r\n"u8.ToArray();
        int completeRelayed = 0;
        for (int i = 0; i < 20_000; i++)
        {
            byte[] input = i % 2 == 0 ? RandomBytes(rng, 200) : Mutate(rng, (i % 8) switch { 1 => validHead, 3 => relayedHead, _ => ChunkedMessage });
            var status = UpstreamResponseParser.TryParse(input, 4096, requestWasHead: false, out var r);
            if (status == ParseStatus.Complete)
            {
                Assert.InRange(r.HeadLength, 4, input.Length);
                Assert.InRange(r.Status, 100, 999);
                AssertRewritesAgree(in r, input);
                completeRelayed += (i % 8) == 3 ? 1 : 0;
            }
            // Fed whole and fed in random pieces, the chunked reader agrees with itself.
            var whole = new ChunkedBodyReader();
            int wholeUsed = whole.Consume(input);
            var pieces = new ChunkedBodyReader();
            int used = 0, at = 0;
            while (at < input.Length && !pieces.IsDone && !pieces.IsInvalid)
            {
                int n = rng.Next(1, input.Length - at + 1);
                int got = pieces.Consume(input.AsSpan(at, n));
                if (got < 0) break;
                used += got;
                at += n;
            }
            Assert.Equal(whole.IsInvalid, pieces.IsInvalid);
            Assert.Equal(whole.IsDone, pieces.IsDone);
            if (whole.IsDone) Assert.Equal(wholeUsed, used);
            if (!whole.IsInvalid) Assert.InRange(wholeUsed, 0, input.Length);
        }
        // Most mutations of that head still parse (a changed byte inside a value): the comparison above really ran.
        Assert.True(completeRelayed > 500, $"only {completeRelayed} mutated relayed heads parsed");

        static byte[] RandomBytes(Random rng, int max)
        {
            var b = new byte[rng.Next(0, max)];
            rng.NextBytes(b);
            return b;
        }

        static byte[] Mutate(Random rng, byte[] valid)
        {
            var b = (byte[])valid.Clone();
            for (int m = rng.Next(1, 4); m > 0; m--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
            return b;
        }
    }

    [Fact]
    public void BalancerGoesRoundRobinAndSkipsADownUpstreamForTenSeconds()
    {
        var b = new UpstreamBalancer(3);
        Assert.Equal(new[] { 0, 1, 2, 0 }, Enumerable.Range(0, 4).Select(_ => b.Pick(0)).ToArray());
        b.MarkDown(2, 1000);
        Assert.Equal(new[] { 1, 0, 1, 0 }, Enumerable.Range(0, 4).Select(_ => b.Pick(5000)).ToArray());
        // Back after its ten seconds.
        Assert.Contains(2, Enumerable.Range(0, 3).Select(_ => b.Pick(1000 + UpstreamBalancer.DownMs)).ToArray());
        // All down: still one in turn, so recovery is noticed.
        var all = new UpstreamBalancer(2);
        all.MarkDown(0, 0);
        all.MarkDown(1, 0);
        Assert.Equal(new[] { 0, 1, 0 }, Enumerable.Range(0, 3).Select(_ => all.Pick(1)).ToArray());
    }
}
