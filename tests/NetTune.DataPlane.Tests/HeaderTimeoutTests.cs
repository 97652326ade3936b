using System.Net.Sockets;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>--header-timeout counts from a head's first byte, however slowly the rest trickles in, in both modes.</summary>
public class HeaderTimeoutTests : IClassFixture<TestRoot>
{
    private readonly TestRoot _root;
    public HeaderTimeoutTests(TestRoot root) => _root = root;

    public static TheoryData<string, string> ModesAndEngines => new()
    {
        { "static", "iouring" }, { "static", "epoll" }, { "proxy", "iouring" }, { "proxy", "epoll" },
    };

    [Theory, MemberData(nameof(ModesAndEngines))]
    public void ATricklingClientIsCutAtTheHeaderTimeout(string mode, string engine)
    {
        using var upstream = new ScriptedUpstream();
        using var server = mode == "static"
            ? ServerProcess.Start(_root.Path, engine, "--cpus", "0", "--header-timeout", "2")
            : ServerProcess.StartProxy(upstream.Address, engine, "--cpus", "0", "--header-timeout", "2");
        using var c = new RawClient(server.Port);
        c.Send("GET /1k.bin HTTP/1.1\r\n");
        // One header byte every 500 ms: each receive is recent, but the head started long ago. The server
        // checks once a second, so it must have cut the connection well before 20 bytes (10 s, 5x the limit).
        int trickled = 0;
        bool closed = false;
        for (; trickled < 20 && !closed; trickled++)
        {
            Thread.Sleep(500);
            try
            {
                c.Send("X");
                closed = c.Socket.Poll(0, SelectMode.SelectRead) && c.Socket.Available == 0;
            }
            catch (SocketException)
            {
                closed = true;
            }
        }
        Assert.True(closed, $"still open after trickling {trickled} bytes over {trickled * 0.5} s with --header-timeout 2");
    }
}
