using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// Slow and hostile peers, as an attacker on raw sockets would be one, against the real binary on 127.0.0.1. Each case
/// names the server whose behaviour it follows.
/// </summary>
public class HostilePeerAttackTests(TestRoot root, ITestOutputHelper output) : IClassFixture<TestRoot>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    /// <summary>
    /// The kubelet's probe (1 s timeout) against clients that trickle a byte at a time into the admin port, more of
    /// them than it serves at once. As Kestrel's and nginx's listeners do, every connection is served on its own with
    /// a deadline for the whole request; at the cap the oldest goes. The admin server does not depend on the engine,
    /// but the binary runs it beside either, so both are tried.
    /// </summary>
    [Theory, MemberData(nameof(Engines))]
    public void AdminTrickleDoesNotStarveProbes(string engine)
    {
        using var server = ServerProcess.Start(root.Path, engine, "--cpus", "0");
        var tricklers = new List<Socket>();
        try
        {
            // More than the admin server's 32 connections at once.
            for (int i = 0; i < 40; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                s.Connect("127.0.0.1", server.AdminPort);
                s.Send("G"u8);
                tricklers.Add(s);
            }
            var latencies = new List<double>();
            var trickle = Encoding.ASCII.GetBytes("ET /metrics HTTP/1.1\r\nHost: x\r\n");
            for (int round = 0; round < 6; round++)
            {
                // Each live trickler sends its next byte, as a client keeping a per-read timeout alive would.
                foreach (var s in tricklers)
                {
                    try { s.Send(trickle.AsSpan(round % trickle.Length, 1)); }
                    catch (SocketException) { } // closed by the server: expected
                }
                Thread.Sleep(400);
                var (status, ms) = Probe(server.AdminPort, "/healthz");
                Assert.Equal(200, status);
                latencies.Add(ms);
            }
            output.WriteLine($"/healthz under {tricklers.Count} trickling clients: {string.Join(", ", latencies.Select(l => $"{l:F1} ms"))}");
            Assert.All(latencies, l => Assert.True(l < 100, $"/healthz took {l:F1} ms while clients trickled"));

            // The deadline is for the whole request, from the accept: a trickler that keeps sending is still cut.
            var last = tricklers[^1];
            var sw = Stopwatch.StartNew();
            bool closed = false;
            while (!closed && sw.ElapsedMilliseconds < 8000)
            {
                try
                {
                    last.Send("X"u8);
                    closed = last.Poll(200_000, SelectMode.SelectRead) && last.Available == 0;
                }
                catch (SocketException) { closed = true; }
            }
            Assert.True(closed, "a trickling admin client was still open 8 s after it connected (deadline 3 s)");
        }
        finally
        {
            foreach (var s in tricklers) s.Dispose();
        }
    }

    /// <summary>One GET on a fresh connection: the status and the milliseconds from connect to the end of the answer.</summary>
    private static (int Status, double Ms) Probe(int port, string path)
    {
        var sw = Stopwatch.StartNew();
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 5000 };
        s.Connect("127.0.0.1", port);
        s.Send(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        var answer = new MemoryStream();
        var buf = new byte[4096];
        int n;
        while ((n = s.Receive(buf)) > 0) answer.Write(buf, 0, n);
        double ms = sw.Elapsed.TotalMilliseconds;
        var text = Encoding.ASCII.GetString(answer.ToArray());
        return (int.Parse(text.Split(' ', 3)[1]), ms);
    }
}
