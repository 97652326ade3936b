using System.Text;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// A proxy per engine (one worker, so every client shares its pool of upstream connections) in front of a
/// lenient upstream that frames requests by Content-Length alone: what a smuggled request reaches when the
/// proxy forwards a body without the header that framed it.
/// </summary>
public sealed class ProxiesInFrontOfALenientUpstream() : ProxiesInFront(new ScriptedUpstream(contentLengthOnly: true));

/// <summary>
/// Raw-socket attacks on the reverse proxy, on both engines: request smuggling and response splitting through
/// the Connection header and through conflicting or malformed framing headers, each in the shape the named
/// RFC section or server refuses.
/// </summary>
public class AttackTests(ProxiesInFrontOfALenientUpstream proxies) : IClassFixture<ProxiesInFrontOfALenientUpstream>
{
    /// <summary>A client that waits a few seconds at most: a proxy that mis-frames leaves it waiting for bytes that never come.</summary>
    private RawClient Client(string engine) => new(proxies[engine].Port, receiveTimeoutMs: 3000);

    /// <summary>The smuggled request: an echo the upstream would answer, naming the test's marker.</summary>
    private static string Smuggled(string marker) => $"GET /echo?m=smuggled-{marker} HTTP/1.1\r\nHost: x\r\n\r\n";

    /// <summary>
    /// Each request names the attack's header lines and a body holding a second request, framed so that a proxy that
    /// drops or misreads a framing header forwards it for the upstream to read as a request of its own.
    /// </summary>
    public static TheoryData<string, string> Requests()
    {
        var data = new TheoryData<string, string>();
        foreach (var engine in new[] { "iouring", "epoll" })
        foreach (var attack in RequestAttacks.Keys)
            data.Add(engine, attack);
        return data;
    }

    private static readonly Dictionary<string, Func<string, string>> RequestAttacks = new()
    {
        // RFC 9110 §7.6.1: the Content-Length is dropped as hop-by-hop, the body goes on and reads as a request.
        ["content-length named in Connection"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nContent-Length: {Smuggled(m).Length}\r\nConnection: Content-Length\r\n\r\n{Smuggled(m)}",
        // RFC 9110 §7.6.1: the same with Transfer-Encoding. The chunk-size line is valid chunked syntax (an extension
        // whose quoted value holds spaces) and a request line to a lenient reader; the chunk data is its headers.
        ["transfer-encoding named in Connection"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, Transfer-Encoding\r\n\r\n{ChunkHidingARequest(m)}",
        // RFC 9110 §7.6.1 (Host is for every recipient); an HTTP/1.1 request upstream without Host.
        ["host named in Connection"] = m => $"GET /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n",
        // RFC 9112 §6.3 item 3, §11.2 (CL.TE / TE.CL): both framing headers, in either order.
        ["content-length and transfer-encoding"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{Smuggled(m)}",
        ["transfer-encoding and content-length"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: {5 + Smuggled(m).Length}\r\n\r\n0\r\n\r\n{Smuggled(m)}",
        // RFC 9110 §8.6: two different lengths.
        ["two content-lengths"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: {Smuggled(m).Length}\r\n\r\n{Smuggled(m)}",
        // RFC 9112 §6.3 item 4: chunked not the final coding (over two lines) is 400 and close.
        ["chunked not the final coding"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{ChunkHidingARequest(m)}",
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        ["transfer-encoding in HTTP/1.0"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{ChunkHidingARequest(m)}",
        // RFC 9112 §5.1: whitespace between the name and the colon.
        ["space before the colon"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: {5 + Smuggled(m).Length}\r\n\r\n0\r\n\r\n{Smuggled(m)}",
        // RFC 9112 §5.2: obs-fold, a continuation line that could carry a second length.
        ["obs-fold"] = m =>
            $"POST /echo?m=first-{m} HTTP/1.1\r\nHost: x\r\nContent-Length: {Smuggled(m).Length}\r\nX-Fold: a\r\n Content-Length: 0\r\n\r\n{Smuggled(m)}",
    };

    /// <summary>
    /// One chunk whose size line is <c>ADD;a=" /echo?m=smuggled-… HTTP/1.1"</c> (0xADD bytes, with a quoted extension) and whose
    /// data is the rest of that request's head, padded to fill the chunk exactly; then the last chunk.
    /// </summary>
    private static string ChunkHidingARequest(string marker)
    {
        const int size = 0xADD;
        var start = "Host: x\r\nX-Pad: ";
        var data = start + new string('a', size - start.Length - 4) + "\r\n\r\n";
        return $"ADD;a=\" /echo?m=smuggled-{marker} HTTP/1.1\"\r\n{data}\r\n0\r\n\r\n";
    }

    [Theory, MemberData(nameof(Requests))]
    public void ASmuggledRequestNeverReachesTheUpstream(string engine, string attack)
    {
        var marker = Guid.NewGuid().ToString("N");
        using (var c = Client(engine))
        {
            c.Send(RequestAttacks[attack](marker));
            var r = c.Read();
            Assert.Equal(400, r.Status);
            Assert.Equal("close", r.Header("Connection"));
            Assert.True(c.ReadsEof());
        }
        // Whatever the upstream would have answered the smuggled request, it has had the time to.
        Thread.Sleep(200);
        AssertNextClientGetsItsOwnAnswer(engine, marker);
        Assert.DoesNotContain(proxies.Upstream.Requests, r => r.Target.Contains($"smuggled-{marker}", StringComparison.Ordinal));
        Assert.DoesNotContain(proxies.Upstream.Requests, r => r.Target.Contains($"first-{marker}", StringComparison.Ordinal));
    }

    private void AssertNextClientGetsItsOwnAnswer(string engine, string marker)
    {
        using var next = Client(engine);
        next.Send($"GET /echo?m=next-{marker} HTTP/1.1\r\nHost: x\r\n\r\n");
        var answer = next.Read();
        Assert.Equal(200, answer.Status);
        Assert.StartsWith($"GET /echo?m=next-{marker}\n", Encoding.ASCII.GetString(answer.Body));
    }

    /// <summary>Upstream heads whose framing the proxy and its client could read differently: each is a 502.</summary>
    public static TheoryData<string, string> Responses()
    {
        var data = new TheoryData<string, string>();
        foreach (var engine in new[] { "iouring", "epoll" })
        foreach (var path in new[]
        {
            "/connection-names-length",   // RFC 9110 §7.6.1
            "/connection-names-chunked",  // RFC 9110 §7.6.1
            "/length-and-chunked",        // RFC 9112 §6.3 item 3; nginx's "upstream sent Content-Length and Transfer-Encoding"
            "/two-lengths",               // RFC 9110 §8.6
            "/chunked-http10",            // RFC 9112 §6.1
            "/space-before-colon",        // RFC 9112 §5.1
            "/obs-fold",                  // RFC 9112 §5.2
            "/nul-in-value",              // RFC 9110 §5.5
            "/bare-cr",                   // RFC 9112 §2.2
        })
            data.Add(engine, path);
        return data;
    }

    [Theory, MemberData(nameof(Responses))]
    public void AnUpstreamResponseThatCouldSplitIsA502AndItsConnectionIsNotReused(string engine, string path)
    {
        var marker = Guid.NewGuid().ToString("N");
        using var c = Client(engine);
        c.Send($"GET {path}?m={marker} HTTP/1.1\r\nHost: x\r\n\r\n");
        var r = c.Read();
        Assert.Equal(502, r.Status);
        Assert.Equal("", r.Header("X-A"));

        // The client's connection goes on; the upstream's does not.
        c.Send($"GET /echo?m=after-{marker} HTTP/1.1\r\nHost: x\r\n\r\n");
        var after = c.Read();
        Assert.Equal(200, after.Status);
        Assert.StartsWith($"GET /echo?m=after-{marker}\n", Encoding.ASCII.GetString(after.Body));
        var bad = proxies.Upstream.Requests.Single(q => q.Target.Contains($"m={marker}", StringComparison.Ordinal));
        var next = proxies.Upstream.Requests.Single(q => q.Target.Contains($"after-{marker}", StringComparison.Ordinal));
        Assert.NotEqual(bad.Connection, next.Connection);
        AssertNextClientGetsItsOwnAnswer(engine, marker);
    }
}
