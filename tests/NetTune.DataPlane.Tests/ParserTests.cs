using System.Text;
using NetTune.Http;
using Xunit;

namespace NetTune.DataPlane.Tests;

public class ParserTests
{
    private static ParseStatus Parse(string text, out HttpRequest request, HttpLimits? limits = null) =>
        HttpParser.TryParse(Encoding.Latin1.GetBytes(text), limits ?? HttpLimits.Default, out request);

    [Fact]
    public void ParsesAGetWithTheHeadersWeUse()
    {
        var text = "GET /a/b.html?x=1 HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\nIf-None-Match: \"abc\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n";
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(bytes, HttpLimits.Default, out var r));
        Assert.Equal(HttpMethodKind.Get, r.Method);
        Assert.True(r.IsHttp11);
        Assert.True(r.KeepAlive);
        Assert.Equal(bytes.Length, r.HeadLength);
        Assert.Equal("/a/b.html?x=1", Encoding.ASCII.GetString(r.Target.Of(bytes)));
        Assert.Equal("bytes=0-9", Encoding.ASCII.GetString(r.Range.Of(bytes)));
        Assert.Equal("\"abc\"", Encoding.ASCII.GetString(r.IfNoneMatch.Of(bytes)));
        Assert.Equal("Sun, 06 Nov 1994 08:49:37 GMT", Encoding.ASCII.GetString(r.IfModifiedSince.Of(bytes)));
    }

    [Fact]
    public void StopsAtTheFirstOfPipelinedRequests()
    {
        var one = "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n";
        var bytes = Encoding.ASCII.GetBytes(one + "GET /y HTTP/1.1\r\nHost: h\r\n\r\n");
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(bytes, HttpLimits.Default, out var r));
        Assert.Equal(HttpMethodKind.Head, r.Method);
        Assert.Equal(one.Length, r.HeadLength);
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(bytes.AsSpan(r.HeadLength), HttpLimits.Default, out var r2));
        Assert.Equal("/y", Encoding.ASCII.GetString(r2.Target.Of(bytes.AsSpan(r.HeadLength))));
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\n")]
    [InlineData("GET / HTTP/1.1\r\nHo")]
    [InlineData("GET / HT")]
    [InlineData("")]
    public void IncompleteHeadsAskForMore(string text) => Assert.Equal(ParseStatus.Incomplete, Parse(text, out _));

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nConnection: close\r\nHost: h\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.0\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n", false)]
    public void KeepAliveFollowsVersionAndConnection(string text, bool keepAlive)
    {
        Assert.Equal(ParseStatus.Complete, Parse(text, out var r));
        Assert.Equal(keepAlive, r.KeepAlive);
    }

    [Fact]
    public void AHeaderValueMayHoldTabsAndObsText()
    {
        // HTAB inside a value and bytes 0x80-0xff (obs-text) are field content; only other controls and DEL are not.
        Assert.Equal(ParseStatus.Complete, Parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\u00e9\u00ff\r\n\r\n", out _));
    }

    [Theory]
    [InlineData("garbage\r\n\r\n", 400)]
    [InlineData("GET /\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\nHost: h\n\n", 400)]
    [InlineData("GET / HTTP/1.1\r\n\r\n", 400)] // HTTP/1.1 without Host
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400)]
    [InlineData("GET /a\u0001b HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nX: a\u0000b\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nX: a\u0008b\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nX: a\u000bb\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nX: a\u001fb\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nX: a\u007fb\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n", 417)]
    [InlineData("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)]
    // RFC 9112 §6.3: chunked not the final coding (on one line or over several) leaves the length unknown: 400.
    [InlineData("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400)]
    [InlineData("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400)]
    [InlineData("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 400)]
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing, whatever the coding.
    [InlineData("POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400)]
    // RFC 9110 §7.6.1: a Connection that names a header the message is framed or routed by.
    [InlineData("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nConnection: Content-Length\r\n\r\nx", 400)]
    [InlineData("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, transfer-encoding\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nConnection: HOST\r\n\r\n", 400)]
    [InlineData("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505)]
    [InlineData("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505)]
    [InlineData("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET nohost HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET /\u00e9 HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h\u0001\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h:80a\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h:80:81\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: [[::1]\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: h]\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nX@: v\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nNoColon\r\nHost: h\r\n\r\n", 400)]
    [InlineData("GE\u0001T / HTTP/1.1\r\nHost: h\r\n\r\n", 400)]
    public void RejectsBadRequestsWithTheRightStatus(string text, int status)
    {
        Assert.Equal(ParseStatus.Error, Parse(text, out var r));
        Assert.Equal(status, r.ErrorStatus);
        Assert.False(r.KeepAlive);
    }

    [Theory]
    [InlineData("")]
    [InlineData("h")]
    [InlineData("h:")]
    [InlineData("127.0.0.1:18181")]
    [InlineData("a.b-c~_%41!$&'()*+,;=")]
    [InlineData("[::1]")]
    [InlineData("[::1]:8080")]
    [InlineData("[v1.fe80::a+en1]")]
    public void AcceptsEveryFormOfHost(string host)
    {
        Assert.True(HttpParser.IsValidHost(Encoding.ASCII.GetBytes(host)));
        Assert.Equal(ParseStatus.Complete, Parse($"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n", out _));
    }

    [Theory]
    [InlineData("GET /x HTTP/1.1\r\nHost: h\r\n\r\n", HttpMethodKind.Get, "GET")]
    [InlineData("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", HttpMethodKind.Head, "HEAD")]
    [InlineData("GETS /x HTTP/1.1\r\nHost: h\r\n\r\n", HttpMethodKind.Other, "GETS")]
    [InlineData("get /x HTTP/1.1\r\nHost: h\r\n\r\n", HttpMethodKind.Other, "get")]
    [InlineData("HEADER /x HTTP/1.1\r\nHost: h\r\n\r\n", HttpMethodKind.Other, "HEADER")]
    public void MethodsAreCaseSensitiveTokens(string text, HttpMethodKind kind, string token)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(bytes, HttpLimits.Default, out var r));
        Assert.Equal(kind, r.Method);
        Assert.Equal(token, Encoding.ASCII.GetString(r.MethodToken.Of(bytes)));
        Assert.Equal("/x", Encoding.ASCII.GetString(r.Target.Of(bytes)));
    }

    [Fact]
    public void TheBlankLineCountsTowardsTheHeadLimit()
    {
        var head = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        Assert.Equal(ParseStatus.Complete, Parse(head, out _, new HttpLimits(64, head.Length, 8)));
        Assert.Equal(ParseStatus.Error, Parse(head, out var r, new HttpLimits(64, head.Length - 1, 8)));
        Assert.Equal(431, r.ErrorStatus);
    }

    [Fact]
    public void OtherMethodsParseSoTheServerCanAnswer405()
    {
        Assert.Equal(ParseStatus.Complete, Parse("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", out var r));
        Assert.Equal(HttpMethodKind.Other, r.Method);
    }

    [Fact]
    public void AbsoluteFormKeepsOnlyThePath()
    {
        var bytes = Encoding.ASCII.GetBytes("GET http://example.com/p/q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(bytes, HttpLimits.Default, out var r));
        Assert.Equal("/p/q", Encoding.ASCII.GetString(r.Target.Of(bytes)));
    }

    [Fact]
    public void LimitsGive414And431()
    {
        var limits = new HttpLimits(MaxRequestLineBytes: 64, MaxHeaderBytes: 256, MaxHeaderCount: 3);
        Assert.Equal(ParseStatus.Error, Parse("GET /" + new string('a', 100), out var r1, limits));
        Assert.Equal(414, r1.ErrorStatus);
        Assert.Equal(ParseStatus.Error, Parse("GET /" + new string('a', 100) + " HTTP/1.1\r\n\r\n", out var r2, limits));
        Assert.Equal(414, r2.ErrorStatus);
        Assert.Equal(ParseStatus.Error, Parse("GET / HTTP/1.1\r\nHost: h\r\nX: " + new string('b', 300), out var r3, limits));
        Assert.Equal(431, r3.ErrorStatus);
        Assert.Equal(ParseStatus.Error, Parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", out var r4, limits));
        Assert.Equal(431, r4.ErrorStatus);
    }

    [Fact]
    public void RandomBytesNeverThrow()
    {
        var rng = new Random(1234);
        var valid = Encoding.ASCII.GetBytes("GET /index.html HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\n\r\n");
        for (int i = 0; i < 20000; i++)
        {
            byte[] input;
            if (i % 2 == 0)
            {
                input = new byte[rng.Next(0, 300)];
                rng.NextBytes(input);
            }
            else
            {
                input = (byte[])valid.Clone();
                for (int m = rng.Next(1, 5); m > 0; m--) input[rng.Next(input.Length)] = (byte)rng.Next(256);
            }
            var status = HttpParser.TryParse(input, HttpLimits.Default, out var r);
            if (status == ParseStatus.Complete) Assert.InRange(r.HeadLength, 1, input.Length);
            if (status == ParseStatus.Error) Assert.Contains(r.ErrorStatus, new[] { 400, 413, 414, 417, 431, 501, 505 });
        }
    }
}

public class PathNormalizerTests
{
    private static (PathStatus, string) Normalize(string target, bool allowHidden = true)
    {
        var input = Encoding.Latin1.GetBytes(target);
        var dest = new byte[input.Length];
        var status = PathNormalizer.Normalize(input, dest, out int len, allowHidden);
        return (status, Encoding.Latin1.GetString(dest, 0, len));
    }

    [Theory]
    [InlineData("/", "")]
    [InlineData("/index.html", "index.html")]
    [InlineData("//a///b/./c/", "a/b/c/")]
    [InlineData("/file.txt/", "file.txt/")]
    [InlineData("/a/.", "a")]
    [InlineData("/a%20b.txt?x=../y", "a b.txt")]
    [InlineData("/a#frag", "a")]
    [InlineData("/%41%62", "Ab")]
    [InlineData("/...", "...")]
    [InlineData("/a..b", "a..b")]
    [InlineData("/.well-known/x", ".well-known/x")]
    [InlineData("/a/.b/c", "a/.b/c")]
    [InlineData("/a/b.c/", "a/b.c/")]
    [InlineData("/a?x#y", "a")]
    [InlineData("/a#y?x", "a")]
    [InlineData("/a/b?", "a/b")]
    public void NormalisesHarmlessPaths(string target, string expected)
    {
        var (status, path) = Normalize(target);
        Assert.Equal(PathStatus.Ok, status);
        Assert.Equal(expected, path);
    }

    [Theory]
    [InlineData("/..")]
    [InlineData("/../etc/passwd")]
    [InlineData("/a/../b")]
    [InlineData("/%2e%2e/etc/passwd")]
    [InlineData("/%2E%2E%2Fetc")]
    [InlineData("/a/.%2e/b")]
    [InlineData("/a%2f..%2fb")]
    public void RefusesTraversal(string target) => Assert.Equal(PathStatus.Traversal, Normalize(target).Item1);

    [Theory]
    [InlineData("/a%00b")]
    [InlineData("/a%zz")]
    [InlineData("/a%4")]
    [InlineData("noslash")]
    [InlineData("?q")]
    public void RefusesMalformedPaths(string target) => Assert.Equal(PathStatus.BadRequest, Normalize(target).Item1);

    [Theory]
    [InlineData("/.env")]
    [InlineData("/.git/config")]
    [InlineData("/a/.hidden/b")]
    [InlineData("/%2egit/config")]
    [InlineData("/a/%2Ehidden")]
    [InlineData("/a%2f.env")]
    [InlineData("/...")]
    [InlineData("//.env")]
    [InlineData("/./.env")]
    public void RefusesHiddenNamesUnlessAllowed(string target)
    {
        Assert.Equal(PathStatus.Hidden, Normalize(target, allowHidden: false).Item1);
        Assert.Equal(PathStatus.Ok, Normalize(target, allowHidden: true).Item1);
    }

    [Theory]
    [InlineData("/a/./b", "a/b")]
    [InlineData("/a/.", "a")]
    [InlineData("/a.b/c.", "a.b/c.")]
    public void DotsThatNameNothingHiddenStayAllowed(string target, string expected) =>
        Assert.Equal((PathStatus.Ok, expected), Normalize(target, allowHidden: false));
}

public class RangeAndConditionalTests
{
    [Theory]
    [InlineData("bytes=0-9", 100, RangeKind.Satisfiable, 0, 10)]
    [InlineData("bytes=90-", 100, RangeKind.Satisfiable, 90, 10)]
    [InlineData("bytes=-10", 100, RangeKind.Satisfiable, 90, 10)]
    [InlineData("bytes=-1000", 100, RangeKind.Satisfiable, 0, 100)]
    [InlineData("bytes=50-5000", 100, RangeKind.Satisfiable, 50, 50)]
    [InlineData("bytes=100-", 100, RangeKind.Unsatisfiable, 0, 0)]
    [InlineData("bytes=-0", 100, RangeKind.Unsatisfiable, 0, 0)]
    [InlineData("bytes=5-1", 100, RangeKind.None, 0, 0)]
    [InlineData("bytes=0-1,5-6", 100, RangeKind.None, 0, 0)]
    [InlineData("items=0-1", 100, RangeKind.None, 0, 0)]
    [InlineData("Bytes=0-9", 100, RangeKind.Satisfiable, 0, 10)]
    [InlineData("BYTES=-10", 100, RangeKind.Satisfiable, 90, 10)]
    [InlineData("bytes=x-1", 100, RangeKind.None, 0, 0)]
    public void ParsesSingleRanges(string header, long size, RangeKind kind, long start, long length)
    {
        var r = RangeHeader.Parse(Encoding.ASCII.GetBytes(header), size);
        Assert.Equal(kind, r.Kind);
        if (kind == RangeKind.Satisfiable)
        {
            Assert.Equal(start, r.Start);
            Assert.Equal(length, r.Length);
        }
    }

    private static ResponsePlan Plan(string headers, long mtime = 1_000_000, long size = 100)
    {
        var bytes = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: h\r\n" + headers + "\r\n");
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParse(bytes, HttpLimits.Default, out var r));
        return ResponsePlanner.Plan(bytes, in r, "\"abc\""u8, mtime, size);
    }

    [Fact]
    public void ConditionalsAndRangesPickTheStatus()
    {
        Span<byte> date = stackalloc byte[HttpDate.Length];
        HttpDate.Format(DateTimeOffset.FromUnixTimeSeconds(1_000_000), date);
        string lastModified = Encoding.ASCII.GetString(date);
        HttpDate.Format(DateTimeOffset.FromUnixTimeSeconds(999_999), date);
        string earlier = Encoding.ASCII.GetString(date);

        Assert.Equal(ResponseKind.Full, Plan("").Kind);
        Assert.Equal(ResponseKind.NotModified, Plan("If-None-Match: \"abc\"\r\n").Kind);
        Assert.Equal(ResponseKind.NotModified, Plan("If-None-Match: \"x\", W/\"abc\"\r\n").Kind);
        Assert.Equal(ResponseKind.NotModified, Plan("If-None-Match: *\r\n").Kind);
        Assert.Equal(ResponseKind.Full, Plan("If-None-Match: \"other\"\r\n").Kind);
        Assert.Equal(ResponseKind.NotModified, Plan($"If-Modified-Since: {lastModified}\r\n").Kind);
        Assert.Equal(ResponseKind.Full, Plan($"If-Modified-Since: {earlier}\r\n").Kind);
        // If-None-Match wins over If-Modified-Since.
        Assert.Equal(ResponseKind.Full, Plan($"If-None-Match: \"other\"\r\nIf-Modified-Since: {lastModified}\r\n").Kind);
        Assert.Equal(ResponseKind.Full, Plan("If-Modified-Since: yesterday\r\n").Kind);
        var partial = Plan("Range: bytes=10-19\r\n");
        Assert.Equal((ResponseKind.Partial, 10L, 10L), (partial.Kind, partial.Start, partial.Length));
        Assert.Equal(ResponseKind.RangeNotSatisfiable, Plan("Range: bytes=200-\r\n").Kind);
        Assert.Equal(ResponseKind.Partial, Plan("Range: bytes=1-2\r\nIf-Range: \"abc\"\r\n").Kind);
        Assert.Equal(ResponseKind.Full, Plan("Range: bytes=1-2\r\nIf-Range: \"old\"\r\n").Kind);
    }

    [Fact]
    public void HttpDateRoundTrips()
    {
        Span<byte> d = stackalloc byte[HttpDate.Length];
        HttpDate.Format(new DateTimeOffset(1994, 11, 6, 8, 49, 37, TimeSpan.Zero), d);
        Assert.Equal("Sun, 06 Nov 1994 08:49:37 GMT", Encoding.ASCII.GetString(d));
        Assert.True(HttpDate.TryParse(d, out long secs));
        Assert.Equal(784111777, secs);
        Assert.False(HttpDate.TryParse("Sun, 31 Feb 1994 08:49:37 GMT"u8, out _));
    }

    [Theory]
    [InlineData("a/b/index.html", "text/html; charset=utf-8")]
    [InlineData("x.CSS", "text/css; charset=utf-8")]
    [InlineData("noext", MimeTypes.Default)]
    [InlineData("dir.d/noext", MimeTypes.Default)]
    [InlineData("f.weird", MimeTypes.Default)]
    public void MimeTypesByExtension(string path, string type) => Assert.Equal(type, MimeTypes.ForPath(path));
}

public class OptionsTests
{
    [Fact]
    public void ParsesFlags()
    {
        var o = ServerOptions.Parse(["--root", "/srv", "--port", "8081", "--cpus", "0-2,5", "--io-engine", "epoll", "--numa-node", "0", "--zero-copy", "on"]);
        Assert.Equal("/srv", o.Root);
        Assert.Equal(8081, o.Port);
        Assert.Equal(new[] { 0, 1, 2, 5 }, o.Cpus);
        Assert.Equal(IoEngineKind.Epoll, o.Engine);
        Assert.Equal(ZeroCopyMode.On, o.ZeroCopy);
    }

    [Theory]
    [InlineData("--port", "70000", "--port must be")]
    [InlineData("--cpus", "3-1", "backwards")]
    [InlineData("--cpus", "a", "not a CPU number")]
    [InlineData("--io-engine", "kqueue", "--io-engine must be")]
    [InlineData("--bogus", "1", "unknown option")]
    [InlineData("--proxy-splice-min-bytes", "-1", "--proxy-splice-min-bytes must be an integer >= 0")]
    public void BadFlagsGiveClearErrors(string flag, string value, string message)
    {
        var e = Assert.Throws<OptionsException>(() => ServerOptions.Parse(["--root", "/srv", flag, value]));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void RootOrUpstreamIsRequired() =>
        Assert.Contains("--root or --upstream is required", Assert.Throws<OptionsException>(() => ServerOptions.Parse([])).Message);

    [Fact]
    public void ProxyModeTakesUpstreamsWorkersAndABodyLimit()
    {
        var o = ServerOptions.Parse(["--upstream", "10.0.0.1:80,app:8080", "--upstream", "[::1]:81", "--workers", "4", "--max-body-bytes", "1000"]);
        Assert.True(o.IsProxy);
        Assert.Equal(new[] { "10.0.0.1:80", "app:8080", "[::1]:81" }, o.Upstreams);
        Assert.Equal(4, o.Workers);
        Assert.Equal(1000, o.Limits.MaxBodyBytes);
        Assert.Equal(16384, o.ProxySpliceMinBytes);
        Assert.Equal(0, ServerOptions.Parse(["--upstream", "a:1", "--proxy-splice-min-bytes", "0"]).ProxySpliceMinBytes);
        // The static server reads no bodies, whatever the flag says.
        Assert.Equal(0, ServerOptions.Parse(["--root", "/srv", "--max-body-bytes", "1000"]).Limits.MaxBodyBytes);
    }

    [Fact]
    public void TheRingWaitsForBatchesOnlyInStaticModeUnlessTold()
    {
        Assert.Equal(200u, ServerOptions.Parse(["--root", "/srv"]).EffectiveBatchWaitUsec);
        Assert.Equal(0u, ServerOptions.Parse(["--upstream", "a:1"]).EffectiveBatchWaitUsec);
        Assert.Equal(50u, ServerOptions.Parse(["--upstream", "a:1", "--io-uring-batch-usec", "50"]).EffectiveBatchWaitUsec);
        Assert.Equal(0u, ServerOptions.Parse(["--root", "/srv", "--io-uring-batch-usec", "0"]).EffectiveBatchWaitUsec);
    }
}

public class StaticParserDetailsTests
{
    private static ParseStatus Parse(string text, out HttpRequest r) => HttpParser.TryParse(Encoding.ASCII.GetBytes(text), HttpLimits.Default, out r);

    [Fact]
    public void BodiesAreLeftToTheStaticServerToJudgeByMethod()
    {
        Assert.Equal(ParseStatus.Complete, Parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", out var r));
        Assert.Equal(HttpMethodKind.Other, r.Method);
        Assert.Equal(5, r.ContentLength);
        Assert.Equal(ParseStatus.Complete, Parse("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", out r));
        Assert.True(r.IsChunked);
        // The proxy's limit still answers 413 at once.
        Assert.Equal(ParseStatus.Error, HttpParser.TryParse(Encoding.ASCII.GetBytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"),
            HttpLimits.Default with { MaxBodyBytes = 10 }, out r));
        Assert.Equal(413, r.ErrorStatus);
    }

    [Theory]
    [InlineData("HTTP/1.2")]
    [InlineData("HTTP/1.9")]
    public void AnyHttp1MinorIsServedAs11(string version)
    {
        Assert.Equal(ParseStatus.Complete, Parse($"GET / {version}\r\nHost: h\r\n\r\n", out var r));
        Assert.True(r.IsHttp11);
        Assert.True(r.KeepAlive);
    }

    [Theory]
    [InlineData("Sun, 06 Nov 1994 08:49:37 GMT")]
    [InlineData("Sunday, 06-Nov-94 08:49:37 GMT")]
    [InlineData("Sun Nov  6 08:49:37 1994")]
    public void AllThreeHttpDateFormsParse(string text)
    {
        Assert.True(HttpDate.TryParse(Encoding.ASCII.GetBytes(text), 2026, out long seconds));
        Assert.Equal(784111777, seconds);
    }

    [Theory]
    [InlineData("Sun, 06 Nov 1994 08:49:37 UTC")]
    [InlineData("Sunday, 06-Nov-94 08:49:37")]
    [InlineData("Sun Nov 06 08:49:37 94")]
    [InlineData("Sun Nov 31 08:49:37 1994")]
    public void OtherDateShapesDoNot(string text) => Assert.False(HttpDate.TryParse(Encoding.ASCII.GetBytes(text), 2026, out _));

    [Fact]
    public void Rfc850YearsMoreThan50YearsAheadAreTheCenturyBefore()
    {
        Assert.True(HttpDate.TryParse("Saturday, 01-Jan-77 00:00:00 GMT"u8, 2026, out long seconds));
        Assert.Equal(new DateTimeOffset(1977, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), seconds);
        Assert.True(HttpDate.TryParse("Saturday, 01-Jan-50 00:00:00 GMT"u8, 2026, out seconds));
        Assert.Equal(new DateTimeOffset(2050, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), seconds);
    }
}

public class ResponseHeadTests
{
    private static readonly byte[] Date = Encoding.ASCII.GetBytes("Wed, 02 Dec 2026 18:00:00 GMT");
    private static readonly byte[] FileHeaders = ResponseHead.BuildFileHeaders("text/html", 0, "\"0-400\""u8);

    [Theory]
    [InlineData(ConnectionHeader.None, "")]
    [InlineData(ConnectionHeader.Close, "Connection: close\r\n")]
    [InlineData(ConnectionHeader.KeepAlive, "Connection: keep-alive\r\n")]
    public void AWholeFileHeadIsItsStartAndItsPrebuiltEnd(ConnectionHeader connection, string connectionLine)
    {
        var whole = new byte[512];
        int n = ResponseHead.WriteFile(whole, new ResponsePlan(ResponseKind.Full, 0, 1024), 1024, Date, FileHeaders, connection);
        var parts = new byte[512];
        int start = ResponseHead.WriteStart(parts, 200, Date, connection);
        int end = ResponseHead.WriteFullEnd(parts.AsSpan(start), FileHeaders, 1024);
        Assert.Equal(Encoding.ASCII.GetString(whole, 0, n), Encoding.ASCII.GetString(parts, 0, start + end));
        Assert.Equal(
            "HTTP/1.1 200 OK\r\nServer: nettune\r\nDate: Wed, 02 Dec 2026 18:00:00 GMT\r\n" + connectionLine +
            "Content-Type: text/html\r\nLast-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\nETag: \"0-400\"\r\nAccept-Ranges: bytes\r\n" +
            "Content-Length: 1024\r\n\r\n",
            Encoding.ASCII.GetString(whole, 0, n));
    }

    [Fact]
    public void HeadsThatDoNotFitFail()
    {
        var small = new byte[100];
        Assert.Equal(-1, ResponseHead.WriteFile(small, new ResponsePlan(ResponseKind.Full, 0, 1024), 1024, Date, FileHeaders, ConnectionHeader.None));
        Assert.Equal(-1, ResponseHead.WriteFullEnd(small.AsSpan(0, 20), FileHeaders, 1024));
        Assert.Equal(-1, ResponseHead.WriteStart(small.AsSpan(0, 20), 200, Date, ConnectionHeader.None));
    }

    [Fact]
    public void APartialHeadHasItsRangeAndLength()
    {
        var d = new byte[512];
        int n = ResponseHead.WriteFile(d, new ResponsePlan(ResponseKind.Partial, 10, 5), 1024, Date, FileHeaders, ConnectionHeader.Close);
        var text = Encoding.ASCII.GetString(d, 0, n);
        Assert.StartsWith("HTTP/1.1 206 Partial Content\r\n", text);
        Assert.Contains("Connection: close\r\nContent-Type: text/html\r\n", text);
        Assert.EndsWith("Content-Range: bytes 10-14/1024\r\nContent-Length: 5\r\n\r\n", text);
    }
}
