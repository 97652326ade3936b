using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// Where the workers run when the kubelet, not a flag, chose the CPUs: one worker per CPU of the process's
/// affinity, memory bound to those CPUs' NUMA node, and both reported on /metrics and /readyz.
/// </summary>
public class PlacementTests : IClassFixture<TestRoot>
{
    private readonly TestRoot _root;
    public PlacementTests(TestRoot root) => _root = root;

    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    [Theory, MemberData(nameof(Engines))]
    public async Task WithoutCpusItRunsOneWorkerPerAffinityCpuBoundToItsNode(string engine)
    {
        using var server = ServerProcess.StartWithAffinity("1", _root.Path, engine);
        var workers = await ReadyWorkers(server);
        var w = Assert.Single(workers);
        Assert.Equal(1, w.GetProperty("cpu").GetInt32());
        Assert.Equal(0, w.GetProperty("numaNode").GetInt32());
        Assert.True(w.GetProperty("memoryBound").GetBoolean());
        Assert.Contains("nettune_dataplane_worker_info{worker=\"0\",cpu=\"1\",numa_node=\"0\",engine=", await Metrics(server));

        // The kernel's own view: the worker thread runs on CPU 1 only, and its memory policy binds to node 0.
        var tid = WorkerThreads(server.Pid).Single();
        Assert.Equal("1", StatusField(server.Pid, tid, "Cpus_allowed_list"));
        Assert.Contains(" bind:0 ", File.ReadAllText($"/proc/{server.Pid}/task/{tid}/numa_maps"));
    }

    [Theory, MemberData(nameof(Engines))]
    public async Task TheNodeComesFromSysfsPerCpu(string engine)
    {
        // A two-node host where CPU 0 is on node 0 and CPU 1 on node 1.
        var sysfs = Directory.CreateTempSubdirectory("nettune-sysfs-").FullName;
        try
        {
            foreach (var (node, cpu) in new[] { (0, "0"), (1, "1") })
            {
                var dir = Path.Combine(sysfs, "devices/system/node", $"node{node}");
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, "cpulist"), cpu + "\n");
            }
            File.WriteAllText(Path.Combine(sysfs, "devices/system/node/online"), "0-1\n");
            using var server = ServerProcess.StartWithAffinity("0-1", _root.Path, engine, "--sysfs-root", sysfs);
            var workers = (await ReadyWorkers(server)).OrderBy(w => w.GetProperty("cpu").GetInt32()).ToArray();
            Assert.Equal([0, 1], workers.Select(w => w.GetProperty("cpu").GetInt32()));
            Assert.Equal([0, 1], workers.Select(w => w.GetProperty("numaNode").GetInt32()));
            // This machine has no node 1: binding there fails, is said so, and the worker serves anyway.
            Assert.True(workers[0].GetProperty("memoryBound").GetBoolean());
            Assert.False(workers[1].GetProperty("memoryBound").GetBoolean());
            var metrics = await Metrics(server);
            Assert.Matches("nettune_dataplane_worker_info\\{worker=\"\\d\",cpu=\"1\",numa_node=\"1\",", metrics);
            Assert.Matches("nettune_dataplane_worker_info\\{worker=\"\\d\",cpu=\"0\",numa_node=\"0\",", metrics);
            using var http = server.NewHttpClient();
            Assert.Equal(_root.Small, await http.GetByteArrayAsync("1k.bin"));

            // --numa-node still wins over sysfs, for every worker.
            using var explicitNode = ServerProcess.StartWithAffinity("0-1", _root.Path, engine, "--sysfs-root", sysfs, "--numa-node", "0");
            Assert.All(await ReadyWorkers(explicitNode), w => Assert.Equal(0, w.GetProperty("numaNode").GetInt32()));
        }
        finally
        {
            Directory.Delete(sysfs, true);
        }
    }

    [Fact]
    public void ExplicitCpusOutsideTheAffinityAreAClearError()
    {
        var (code, output) = ServerProcess.RunToExitWithAffinity("1", "--root", _root.Path, "--port", "0", "--cpus", "0-1");
        Assert.Equal(1, code);
        Assert.Contains("--cpus 0 outside this process's allowed CPUs (1)", output);
    }

    private static async Task<JsonElement[]> ReadyWorkers(ServerProcess server)
    {
        using var admin = new HttpClient();
        var response = await admin.GetAsync($"http://127.0.0.1:{server.AdminPort}/readyz");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("ready", doc.RootElement.GetProperty("status").GetString());
        return doc.RootElement.GetProperty("workers").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    private static async Task<string> Metrics(ServerProcess server)
    {
        using var admin = new HttpClient();
        return await admin.GetStringAsync($"http://127.0.0.1:{server.AdminPort}/metrics");
    }

    private static IEnumerable<string> WorkerThreads(int pid) =>
        Directory.EnumerateDirectories($"/proc/{pid}/task").Select(Path.GetFileName)
            .Where(tid => File.ReadAllText($"/proc/{pid}/task/{tid}/comm").StartsWith("dataplane-work", StringComparison.Ordinal))!;

    private static string StatusField(int pid, string tid, string field) =>
        Regex.Match(File.ReadAllText($"/proc/{pid}/task/{tid}/status"), "^" + field + @":\s*(\S+)", RegexOptions.Multiline).Groups[1].Value;
}
