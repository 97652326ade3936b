using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>Whether a server's worker allocates per request: pipelined load from kept-alive clients, measured twice.</summary>
public static class SteadyStateAllocation
{
    /// <summary>
    /// Sends <paramref name="pipeline"/> (<paramref name="responses"/> requests) <paramref name="rounds"/> times on each
    /// of four connections, once to warm caches, pools and the JIT and once measured, and asserts worker 0 allocated
    /// less than a quarter byte per request over the second pass: a single allocation per request is at least 24 bytes.
    /// </summary>
    public static async Task AssertNoneAsync(ServerProcess server, string pipeline, int responses, int rounds, int status, string pokeRequest)
    {
        using var admin = new HttpClient();
        var clients = Enumerable.Range(0, 4).Select(_ => new RawClient(server.Port)).ToArray();
        void Load()
        {
            for (int r = 0; r < rounds; r++)
                foreach (var c in clients)
                {
                    c.Send(pipeline);
                    for (int i = 0; i < responses; i++) Assert.Equal(status, c.Read().Status);
                }
        }
        async Task<double> Allocated()
        {
            // Sampled by the worker once per loop turn; one more request makes it turn after the load.
            using (var c = new RawClient(server.Port)) { c.Send(pokeRequest); c.Read(); }
            var metrics = MetricsTests.Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics"));
            return metrics["nettune_dataplane_worker_allocated_bytes{worker=\"0\"}"];
        }
        Load();
        double before = await Allocated();
        Load();
        double after = await Allocated();
        foreach (var c in clients) c.Dispose();
        int requests = responses * rounds * clients.Length;
        Assert.True(after - before < requests / 4.0, $"worker allocated {after - before} bytes over {requests} requests");
    }
}
