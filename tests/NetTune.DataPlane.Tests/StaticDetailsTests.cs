using System.Net.Sockets;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>RFC details of static mode: bodies by method, lingering close, versions, date forms, range units, trailing slashes.</summary>
public class StaticDetailsTests(BothEngines servers) : IClassFixture<BothEngines>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    [Theory, MemberData(nameof(Engines))]
    public void APostWithASmallBodyGets405WithAllowAndTheConnectionGoesOn(string engine)
    {
        using var c = new RawClient(servers[engine].Port);
        c.Send("POST /1k.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world" + "GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        var r = c.Read();
        Assert.Equal(405, r.Status);
        Assert.Equal("GET, HEAD", r.Header("Allow"));
        Assert.Equal("", r.Header("Connection"));
        Assert.Equal(servers.Root.Small, c.Read().Body);
    }

    [Theory, MemberData(nameof(Engines))]
    public void ASmallBodyOnAGetIsReadAndDropped(string engine)
    {
        using var c = new RawClient(servers[engine].Port);
        // The body comes in a separate write: the server must skip it across receives.
        c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + new string('a', 1000));
        Assert.Equal(servers.Root.Small, c.Read().Body);
        Thread.Sleep(50);
        c.Send(new string('b', 2000) + "HEAD /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        var head = c.Read(head: true);
        Assert.Equal(200, head.Status);
        Assert.Equal(servers.Root.Medium.Length.ToString(), head.Header("Content-Length"));
    }

    [Theory, MemberData(nameof(Engines))]
    public void ARefusedBodyIsDrainedSoThe413ArrivesWithoutAReset(string engine)
    {
        using var c = new RawClient(servers[engine].Port);
        var chunk = new byte[64 * 1024];
        c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
        for (int i = 0; i < 16; i++) c.Send(chunk);
        var r = c.Read();
        Assert.Equal(413, r.Status);
        Assert.Equal("close", r.Header("Connection"));
        // The client goes on sending its body (as clients do that do not read while sending): no reset.
        for (int i = 0; i < 16; i++) c.Socket.Send(chunk);
        c.Socket.Shutdown(SocketShutdown.Send);
        var buffer = new byte[1024];
        Assert.Equal(0, c.Socket.Receive(buffer));
    }

    [Theory, MemberData(nameof(Engines))]
    public void PipelinedRequestsForDifferentFilesEachGetTheirOwnHeadAndBody(string engine)
    {
        // One write, so the answers leave together: whole-file heads are pieced from the per-second start and each
        // file's prebuilt end, and the file cache's memory of the last lookup must switch files correctly.
        using var c = new RawClient(servers[engine].Port);
        c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n" +
               "HEAD /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /empty.txt HTTP/1.1\r\nHost: x\r\n\r\n" +
               "GET /1k.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n" +
               "GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        var small = c.Read();
        Assert.Equal(servers.Root.Small, small.Body);
        Assert.Equal("application/octet-stream", small.Header("Content-Type"));
        Assert.Equal("", small.Header("Connection"));
        var medium = c.Read();
        Assert.Equal(servers.Root.Medium, medium.Body);
        Assert.NotEqual(small.Header("ETag"), medium.Header("ETag"));
        var head = c.Read(head: true);
        Assert.Equal("1024", head.Header("Content-Length"));
        Assert.Equal(small.Header("ETag"), head.Header("ETag"));
        var empty = c.Read();
        Assert.Equal("0", empty.Header("Content-Length"));
        Assert.Empty(empty.Body);
        var http10 = c.Read();
        Assert.Equal("keep-alive", http10.Header("Connection"));
        Assert.Equal(servers.Root.Small, http10.Body);
        var css = c.Read();
        Assert.Equal("text/css; charset=utf-8", css.Header("Content-Type"));
        Assert.Equal("body{}\n"u8.ToArray(), css.Body);
        var last = c.Read();
        Assert.Equal("close", last.Header("Connection"));
        Assert.Equal(servers.Root.Small, last.Body);
        Assert.True(c.ReadsEof());
    }

    [Theory, MemberData(nameof(Engines))]
    public void Http12IsServedAs11(string engine)
    {
        using var c = new RawClient(servers[engine].Port);
        c.Send("GET /1k.bin HTTP/1.2\r\nHost: x\r\n\r\n");
        var r = c.Read();
        Assert.Equal(200, r.Status);
        Assert.Equal(servers.Root.Small, r.Body);
    }

    [Theory, MemberData(nameof(Engines))]
    public void IfModifiedSinceIsHonouredInAllThreeDateForms(string engine)
    {
        var mtime = File.GetLastWriteTimeUtc(Path.Combine(servers.Root.Path, "1k.bin"));
        using var c = new RawClient(servers[engine].Port);
        foreach (var format in new[] { "ddd, dd MMM yyyy HH:mm:ss 'GMT'", "dddd, dd-MMM-yy HH:mm:ss 'GMT'", "ddd MMM d HH:mm:ss yyyy" })
        {
            var date = mtime.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
            if (format.StartsWith("ddd MMM", StringComparison.Ordinal) && mtime.Day < 10) date = date.Replace($" {mtime.Day} ", $"  {mtime.Day} ");
            c.Send($"GET /1k.bin HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: {date}\r\n\r\n");
            Assert.Equal(304, c.Read().Status);
        }
    }

    [Theory, MemberData(nameof(Engines))]
    public void TheRangeUnitIsCaseInsensitive(string engine)
    {
        using var c = new RawClient(servers[engine].Port);
        c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\nRange: Bytes=0-9\r\n\r\n");
        var r = c.Read();
        Assert.Equal(206, r.Status);
        Assert.Equal(servers.Root.Small[..10], r.Body);
    }

    [Theory, MemberData(nameof(Engines))]
    public void AFileWithATrailingSlashIsNotFoundWhileADirectoryIsServed(string engine)
    {
        using var c = new RawClient(servers[engine].Port);
        c.Send("GET /1k.bin/ HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(404, c.Read().Status);
        c.Send("GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal("<h1>dir</h1>\n", System.Text.Encoding.ASCII.GetString(c.Read().Body));
        c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(servers.Root.Small, c.Read().Body);
    }
}
