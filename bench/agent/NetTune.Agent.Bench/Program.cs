using System.Diagnostics;
using System.Globalization;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Api.V1Alpha1;
using NetTune.Fixtures.Hosts;

// Benchmark of the agent's engine on the two-socket fixture host root (not a test: numbers only).
//  1. full apply: wall time and writes of an apply from the pristine fixture, median over runs (fresh tree each run);
//  2. steady-state drift checking: CPU time of one check (discover + plan, nothing to change), and what that costs
//     at the default 30 s interval and at 1 s.
var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 15;
var checks = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;

var spec = new NodeStateSpec
{
    NodeName = "bench",
    Nic = new NicSpec
    {
        Interfaces = new InterfaceSelector { Names = ["eth*"] },
        Channels = new ChannelsSpec { Combined = 4 },
        IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread, ReservedCpus = "0,8" },
        Rps = new RpsSpec { Enabled = true, FlowEntries = 32768 },
        Xps = new XpsSpec { Enabled = true },
    },
    Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512 }],
    Sysctls = new() { ["net.core.somaxconn"] = "65535", ["net.ipv4.tcp_rmem"] = "4096 262144 16777216", ["net.core.busy_poll"] = "50" },
};

var work = Directory.CreateTempSubdirectory("nettune-agent-bench-").FullName;
try
{
    var applyMs = new List<double>();
    var revertMs = new List<double>();
    long writes = 0, revertWrites = 0, knobs = 0;
    for (var i = 0; i < runs + 2; i++)
    {
        var dir = Path.Join(work, $"run{i}");
        FixtureHosts.WriteTwoSocket(Path.Join(dir, "root"));
        var fs = new HostFileSystem(Path.Join(dir, "root"));
        var engine = new TuningEngine(fs, new SimulatedChannelControl(fs), new JournalStore(Path.Join(dir, "journal")));
        var sw = Stopwatch.StartNew();
        var report = engine.Apply(spec);
        var elapsed = sw.Elapsed.TotalMilliseconds;
        if (report.Kind != RunKind.Applied) throw new InvalidOperationException($"apply failed: {report.Message}");
        var applyWrites = fs.WriteCount;
        sw.Restart();
        var revert = engine.Revert();
        var revertElapsed = sw.Elapsed.TotalMilliseconds;
        if (revert.Kind != RunKind.Reverted) throw new InvalidOperationException($"revert failed: {revert.Message}");
        if (i < 2) continue; // warm-up: JIT
        applyMs.Add(elapsed);
        revertMs.Add(revertElapsed);
        writes = applyWrites;
        revertWrites = fs.WriteCount - applyWrites;
        knobs = report.Knobs.Count;
    }

    // Drift checking in steady state: the tuned host, nothing drifted.
    var steady = Path.Join(work, "steady");
    FixtureHosts.WriteTwoSocket(Path.Join(steady, "root"));
    var sfs = new HostFileSystem(Path.Join(steady, "root"));
    var sengine = new TuningEngine(sfs, new SimulatedChannelControl(sfs), new JournalStore(Path.Join(steady, "journal")));
    sengine.Apply(spec);
    for (var i = 0; i < 20; i++) sengine.PlanNow(spec);
    var proc = Process.GetCurrentProcess();
    proc.Refresh();
    var cpu0 = proc.TotalProcessorTime;
    var wall = Stopwatch.StartNew();
    for (var i = 0; i < checks; i++)
    {
        var (_, plan) = sengine.PlanNow(spec);
        if (plan.Changes.Count != 0) throw new InvalidOperationException("steady state drifted");
    }
    proc.Refresh();
    var cpuPerCheckMs = (proc.TotalProcessorTime - cpu0).TotalMilliseconds / checks;
    var wallPerCheckMs = wall.Elapsed.TotalMilliseconds / checks;

    static double Median(List<double> xs) { var s = xs.Order().ToArray(); return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2; }
    var inv = CultureInfo.InvariantCulture;
    Console.WriteLine(string.Create(inv, $"fixture: two-socket (32 CPUs, eth0 virtio 4 queue pairs, eth1 ice 16→4 combined channels)"));
    Console.WriteLine(string.Create(inv, $"full apply: median {Median(applyMs):F1} ms (min {applyMs.Min():F1}, max {applyMs.Max():F1}, {applyMs.Count} runs), {writes} sysfs/procfs writes, {knobs} knob results"));
    Console.WriteLine(string.Create(inv, $"full revert: median {Median(revertMs):F1} ms, {revertWrites} writes"));
    Console.WriteLine(string.Create(inv, $"drift check (steady state, nothing to repair): {cpuPerCheckMs:F2} ms CPU, {wallPerCheckMs:F2} ms wall per check over {checks} checks"));
    // The same on the 256-CPU fixture (63 channels, masks of eight 32-bit groups): how the cost grows with the machine.
    var big = Path.Join(work, "cpu256");
    FixtureHosts.WriteCpu256(Path.Join(big, "root"));
    var bfs = new HostFileSystem(Path.Join(big, "root"));
    var bengine = new TuningEngine(bfs, new SimulatedChannelControl(bfs), new JournalStore(Path.Join(big, "journal")));
    var bigSpec = new NodeStateSpec
    {
        NodeName = "bench",
        Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["mlx5_core"] }, IrqAffinity = new IrqAffinitySpec(), Rps = new RpsSpec { Enabled = true, FlowEntries = 65536 }, Xps = new XpsSpec { Enabled = true } },
    };
    var bsw = Stopwatch.StartNew();
    var bigReport = bengine.Apply(bigSpec);
    var bigApplyMs = bsw.Elapsed.TotalMilliseconds;
    if (bigReport.Kind != RunKind.Applied) throw new InvalidOperationException($"256-CPU apply failed: {bigReport.Message}");
    proc.Refresh();
    var bcpu0 = proc.TotalProcessorTime;
    var bigChecks = Math.Max(20, checks / 4);
    for (var i = 0; i < bigChecks; i++) bengine.PlanNow(bigSpec);
    proc.Refresh();
    var bigCpuPerCheckMs = (proc.TotalProcessorTime - bcpu0).TotalMilliseconds / bigChecks;
    Console.WriteLine(string.Create(inv, $"256-CPU fixture: apply {bigApplyMs:F1} ms, {bfs.WriteCount} writes, {bigReport.Knobs.Count} knobs; drift check {bigCpuPerCheckMs:F2} ms CPU"));
    Console.WriteLine(string.Create(inv, $"drift checking CPU: {cpuPerCheckMs / 30000 * 100:F4} % of one core at --drift-interval 30s, {cpuPerCheckMs / 1000 * 100:F3} % at 1s"));
}
finally
{
    Directory.Delete(work, recursive: true);
}
