using System.Net.Sockets;
using System.Text.RegularExpressions;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>A worker that cannot go on, and a process out of file descriptors.</summary>
public class WorkerFailureTests : IClassFixture<TestRoot>
{
    private readonly TestRoot _root;
    public WorkerFailureTests(TestRoot root) => _root = root;

    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    [Theory, MemberData(nameof(Engines))]
    public void AFailedWorkerLeavesNoConnectionHangingAndTheProcessExitsNonZero(string engine)
    {
        // Each worker fails at its third accept, as one whose ring broke would.
        using var server = ServerProcess.StartWith([], new Dictionary<string, string> { ["NETTUNE_DATAPLANE_TEST_FAIL_AFTER_ACCEPTS"] = "3" },
            _root.Path, engine, "--cpus", "0-1");
        int answered = 0, refusedOrClosed = 0;
        for (int i = 0; i < 40 && !server.HasExited; i++)
        {
            try
            {
                using var c = new RawClient(server.Port, receiveTimeoutMs: 10000);
                c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                c.Read();
                answered++;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset)
            {
                refusedOrClosed++;
            }
            catch (IOException)
            {
                refusedOrClosed++; // closed before a response: the failing worker's own connection
            }
            // A receive timeout (a connection routed to a dead worker's listener) fails the test.
        }
        Assert.True(server.WaitForExit(30000), "the process went on after a worker failed");
        Assert.Equal(1, server.ExitCode);
        Assert.Contains("injected failure", server.Output);
        Assert.Contains("draining the others and exiting 1", server.Output);
        Assert.True(answered >= 2, $"answered {answered}, refused or closed {refusedOrClosed}");
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task OutOfFileDescriptorsTheWorkerBacksOffAndResumes(string engine)
    {
        using var server = ServerProcess.StartWith(["prlimit", "--nofile=128:128"], new Dictionary<string, string>(), _root.Path, engine, "--cpus", "0");
        var held = new List<RawClient>();
        try
        {
            // Fill the fd table: a connection the worker could accept is answered, the first it cannot stays queued.
            RawClient? queued = null;
            for (int i = 0; i < 200 && queued == null; i++)
            {
                var c = new RawClient(server.Port, receiveTimeoutMs: 2000);
                c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
                try { Assert.Equal(200, c.Read().Status); held.Add(c); }
                catch (IOException) { queued = c; }
                catch (SocketException) { queued = c; }
            }
            Assert.NotNull(queued);
            // Let it sit at EMFILE for a while: backing off, it tries about ten times a second, not in a busy loop.
            Thread.Sleep(1000);
            foreach (var c in held.Take(8)) c.Dispose();
            held.RemoveRange(0, 8);
            queued.Socket.ReceiveTimeout = 10000;
            queued.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(200, queued.Read().Status);
            Assert.Equal(_root.Small, queued.Read().Body);
            held.Add(queued);

            using var admin = new HttpClient();
            var metrics = await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics");
            double errors = double.Parse(Regex.Match(metrics, @"^nettune_dataplane_accept_errors_total\{worker=""0""\} (\S+)$", RegexOptions.Multiline).Groups[1].Value,
                System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(errors, 1, 100);
        }
        finally
        {
            foreach (var c in held) c.Dispose();
        }
    }

    [Fact]
    public void TheSoftOpenFilesLimitIsRaisedAndAnOverCommitmentWarned()
    {
        using var server = ServerProcess.StartWith(["prlimit", "--nofile=64:2048"], new Dictionary<string, string>(), _root.Path, "epoll",
            "--cpus", "0-1", "--max-connections", "1500");
        var limits = File.ReadAllText($"/proc/{server.Pid}/limits");
        Assert.Matches(@"Max open files\s+2048\s+2048", limits);
        Assert.Contains("--max-connections 1500 x 2 workers exceeds the open-files limit 2048", server.Output);
    }
}
