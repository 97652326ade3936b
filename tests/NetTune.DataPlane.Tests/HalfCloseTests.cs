using System.Net.Sockets;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// A root with a 20 MiB file, served by each engine directly and through a proxy of each engine (in front of
/// an epoll static server), for clients that half-close after their requests.
/// </summary>
public sealed class HalfCloseServers : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("nettune-halfclose-").FullName;
    public byte[] Small { get; } = new byte[1024];
    public byte[] Big { get; } = new byte[20 << 20];
    private readonly Dictionary<string, ServerProcess> _servers = new();

    public HalfCloseServers()
    {
        var rng = new Random(13);
        rng.NextBytes(Small);
        rng.NextBytes(Big);
        File.WriteAllBytes(Path.Combine(Root, "1k.bin"), Small);
        File.WriteAllBytes(Path.Combine(Root, "20m.bin"), Big);
        var upstream = ServerProcess.Start(Root, "epoll", "--cpus", "0");
        _servers["upstream"] = upstream;
        foreach (var engine in new[] { "iouring", "epoll" })
        {
            _servers["static/" + engine] = ServerProcess.Start(Root, engine, "--cpus", "0");
            _servers["proxy/" + engine] = ServerProcess.StartProxy($"127.0.0.1:{upstream.Port}", engine, "--cpus", "0");
        }
    }

    public ServerProcess this[string mode, string engine] => _servers[mode + "/" + engine];

    public void Dispose()
    {
        foreach (var s in _servers.Values) s.Dispose();
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}

public class HalfCloseTests(HalfCloseServers servers) : IClassFixture<HalfCloseServers>
{
    public static TheoryData<string, string> ModesAndEngines => new()
    {
        { "static", "iouring" }, { "static", "epoll" }, { "proxy", "iouring" }, { "proxy", "epoll" },
    };

    [Theory, MemberData(nameof(ModesAndEngines))]
    public void OneRequestThenFinIsAnsweredThenClosed(string mode, string engine)
    {
        using var c = new RawClient(servers[mode, engine].Port);
        c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        c.Socket.Shutdown(SocketShutdown.Send);
        var r = c.Read();
        Assert.Equal(200, r.Status);
        Assert.Equal(servers.Small, r.Body);
        Assert.True(c.ReadsEof());
    }

    [Theory, MemberData(nameof(ModesAndEngines))]
    public void PipelinedRequestsThenFinAreAllAnswered(string mode, string engine)
    {
        using var c = new RawClient(servers[mode, engine].Port);
        c.Send(string.Concat(Enumerable.Repeat("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n", 20)) + "HEAD /20m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        c.Socket.Shutdown(SocketShutdown.Send);
        for (int i = 0; i < 20; i++)
        {
            var r = c.Read();
            Assert.Equal(200, r.Status);
            Assert.Equal(servers.Small, r.Body);
        }
        Assert.Equal(servers.Big.Length.ToString(), c.Read(head: true).Header("content-length"));
        Assert.True(c.ReadsEof());
    }

    [Theory, MemberData(nameof(ModesAndEngines))]
    public void ABigBodyReachesASlowReaderThatHalfClosedByteExact(string mode, string engine)
    {
        using var c = new RawClient(servers[mode, engine].Port, receiveTimeoutMs: 60000);
        c.Socket.ReceiveBufferSize = 64 * 1024;
        c.Send("GET /20m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        c.Socket.Shutdown(SocketShutdown.Send);
        // Let the server fill the socket buffers and meet a full socket before anything is read.
        Thread.Sleep(500);
        var received = new MemoryStream();
        var buffer = new byte[128 * 1024];
        int n, reads = 0;
        while ((n = c.Socket.Receive(buffer)) > 0)
        {
            received.Write(buffer, 0, n);
            if (++reads % 16 == 0) Thread.Sleep(20);
        }
        var all = received.ToArray();
        int headEnd = all.AsSpan().IndexOf("\r\n\r\n"u8) + 4;
        Assert.StartsWith("HTTP/1.1 200 ", System.Text.Encoding.Latin1.GetString(all, 0, 13));
        Assert.Equal(servers.Big.Length, all.Length - headEnd);
        Assert.True(all.AsSpan(headEnd).SequenceEqual(servers.Big), "body differs");
    }
}
