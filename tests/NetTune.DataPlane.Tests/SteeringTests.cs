using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// Queue-to-core alignment on the data plane's side, on this machine's kernel: a new connection goes to the worker
/// pinned to the CPU that processed its SYN (each worker's SO_REUSEPORT listener carries SO_INCOMING_CPU, which the
/// kernel's reuseport selection honours since 6.1). Over loopback the SYN is processed in the connecting thread's own
/// softirq, on its CPU (lo has no RPS), so a client pinned to CPU c stands in for a NIC queue whose interrupt is on c.
/// Without the option the group picks by the 4-tuple hash and 32 connections land on both workers.
/// </summary>
public partial class SteeringTests : IClassFixture<TestRoot>
{
    private const int Connections = 32;
    private readonly TestRoot _root;
    public SteeringTests(TestRoot root) => _root = root;

    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    [Theory, MemberData(nameof(Engines))]
    public async Task EachConnectionIsAcceptedByTheWorkerOnTheCpuThatReceivedIt(string engine)
    {
        Assert.True(Environment.ProcessorCount >= 2, "needs two CPUs");
        Assert.Matches("^[0,]+$", File.ReadAllText("/sys/class/net/lo/queues/rx-0/rps_cpus").Trim());
        using var server = ServerProcess.StartWithAffinity("0-1", _root.Path, engine);
        var workerOfCpu = await WorkerOfCpu(server);
        Assert.Equal([0, 1], workerOfCpu.Keys.Order());

        foreach (var cpu in new[] { 0, 1, 0 })
        {
            var before = await Accepts(server);
            RunPinned(cpu, () =>
            {
                for (var i = 0; i < Connections; i++) Fetch(server.Port);
            });
            var after = await Accepts(server);
            var gained = workerOfCpu.ToDictionary(w => w.Key, w => after.GetValueOrDefault(w.Value) - before.GetValueOrDefault(w.Value));
            Assert.Equal(Connections, gained[cpu]);
            Assert.Equal(0, gained[1 - cpu]);
        }
    }

    /// <summary>One request on a new connection from the calling thread; blocking, so the connect runs on this thread's CPU.</summary>
    private static void Fetch(int port)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Connect(IPAddress.Loopback, port);
        s.Send("GET /1k.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"u8);
        var buffer = new byte[4096];
        var total = 0;
        int n;
        while ((n = s.Receive(buffer)) > 0) total += n;
        Assert.True(total > 1024, $"short response: {total} bytes");
    }

    private static void RunPinned(int cpu, Action action)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Platform.PinCurrentThread(cpu);
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null) throw new InvalidOperationException($"client pinned to CPU {cpu} failed", failure);
    }

    private static async Task<Dictionary<int, string>> WorkerOfCpu(ServerProcess server)
    {
        using var admin = new HttpClient();
        using var doc = JsonDocument.Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/readyz"));
        return doc.RootElement.GetProperty("workers").EnumerateArray()
            .ToDictionary(w => w.GetProperty("cpu").GetInt32(), w => w.GetProperty("worker").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static async Task<Dictionary<string, long>> Accepts(ServerProcess server)
    {
        using var admin = new HttpClient();
        var text = await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics");
        return AcceptsLine().Matches(text).ToDictionary(m => m.Groups[1].Value, m => (long)double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex("^nettune_dataplane_accepts_total\\{worker=\"(\\d+)\"\\} (\\S+)$", RegexOptions.Multiline)]
    private static partial Regex AcceptsLine();
}
