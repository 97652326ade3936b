using System.Globalization;
using System.Text.RegularExpressions;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>What /metrics reports about requests, read from the real server after real traffic.</summary>
public class MetricsTests : IClassFixture<TestRoot>
{
    private const string Duration = "nettune_dataplane_request_duration_seconds";
    private readonly TestRoot _root;
    public MetricsTests(TestRoot root) => _root = root;

    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    [Theory, MemberData(nameof(Engines))]
    public async Task EveryResponseIsTimedOnceInTheDurationHistogram(string engine)
    {
        // Two workers: the histogram sums them, like requests_total.
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0-1");
        using var admin = new HttpClient();
        var before = Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics"));

        int sent = 0;
        using (var c = new RawClient(server.Port))
        {
            for (int i = 0; i < 5; i++, sent++)
            {
                c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
                Assert.Equal(_root.Small, c.Read().Body);
            }
            // Pipelined: answered by one send, so they share its completion time.
            c.Send("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n" +
                   "GET /missing HTTP/1.1\r\nHost: x\r\n\r\nHEAD /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(200, c.Read().Status);
            Assert.Equal(200, c.Read().Status);
            Assert.Equal(404, c.Read().Status);
            Assert.Equal(200, c.Read(head: true).Status);
            sent += 4;
            c.Send("GET /64k.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(_root.Medium, c.Read().Body);
            sent++;
            // Streamed from the file, not the memory cache: timed when the last chunk has gone.
            c.Send("GET /10m.bin HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(TestRoot.Sha(_root.Large), TestRoot.Sha(c.Read().Body));
            sent++;
        }
        using (var bad = new RawClient(server.Port))
        {
            bad.Send("garbage\r\n\r\n");
            Assert.Equal(400, bad.Read().Status);
            Assert.True(bad.ReadsEof());
            sent++;
        }

        // The client can read a response before the worker has seen its send complete: wait for the
        // worker to catch up (bounded), then the numbers must be exact.
        Dictionary<string, double> after;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        do
        {
            after = Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics"));
            if (after[Duration + "_count"] - before[Duration + "_count"] >= sent) break;
            await Task.Delay(50);
        } while (DateTime.UtcNow < deadline);

        Assert.Equal(sent, after[Duration + "_count"] - before[Duration + "_count"]);
        Assert.True(after[Duration + "_sum"] > before[Duration + "_sum"], "the durations add up to nothing");
        double requests(Dictionary<string, double> m) => m.Where(kv => kv.Key.StartsWith("nettune_dataplane_requests_total{", StringComparison.Ordinal)).Sum(kv => kv.Value);
        Assert.Equal(sent, requests(after) - requests(before));

        var buckets = after.Where(kv => kv.Key.StartsWith(Duration + "_bucket{", StringComparison.Ordinal))
            .Select(kv => (Le: ParseLe(kv.Key), Count: kv.Value)).OrderBy(b => b.Le).ToList();
        Assert.Equal(5e-5, buckets[0].Le);
        Assert.Equal(5, buckets[^2].Le);
        Assert.Equal(double.PositiveInfinity, buckets[^1].Le);
        for (int i = 1; i < buckets.Count; i++)
            Assert.True(buckets[i].Count >= buckets[i - 1].Count, $"bucket le={buckets[i].Le} ({buckets[i].Count}) < le={buckets[i - 1].Le} ({buckets[i - 1].Count})");
        Assert.Equal(after[Duration + "_count"], buckets[^1].Count);
        // A 10 MiB response over loopback cannot take under 50 µs, so not everything is in the first bucket.
        Assert.True(buckets[0].Count < buckets[^1].Count);
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task ServerErrorsHaveTheirOwnStatusLabel(string engine)
    {
        using var server = ServerProcess.Start(_root.Path, engine, "--cpus", "0");
        using var admin = new HttpClient();
        using (var c = new RawClient(server.Port))
        {
            c.Send("GET /1k.bin HTTP/2.0\r\nHost: x\r\n\r\n");
            Assert.Equal(505, c.Read().Status);
        }
        var deadline = DateTime.UtcNow.AddSeconds(15);
        Dictionary<string, double> m;
        do m = Parse(await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics"));
        while (m["nettune_dataplane_requests_total{status=\"505\"}"] < 1 && DateTime.UtcNow < deadline && await Delay());
        Assert.Equal(1, m["nettune_dataplane_requests_total{status=\"505\"}"]);
        // 500 is a status of its own now; "other" stays for codes the server does not produce today.
        Assert.Equal(0, m["nettune_dataplane_requests_total{status=\"500\"}"]);
        Assert.Equal(0, m["nettune_dataplane_requests_total{status=\"other\"}"]);

        static async Task<bool> Delay() { await Task.Delay(50); return true; }
    }

    private static double ParseLe(string series)
    {
        var le = Regex.Match(series, "le=\"([^\"]+)\"").Groups[1].Value;
        return le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
    }

    /// <summary>Every sample line of the text exposition, keyed by its series as written.</summary>
    internal static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            var value = line[(space + 1)..];
            samples[line[..space]] = value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            };
        }
        return samples;
    }
}
