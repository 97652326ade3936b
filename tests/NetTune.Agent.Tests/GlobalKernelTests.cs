using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Planning;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// The engine on the real host root against global kernel settings, one setting per test, one test at a time. Each
/// test saves the raw values it may touch and writes them back in a finally, whatever the agent's own revert did.
/// </summary>
[Collection("global-kernel")]
public sealed class GlobalKernelTests
{
    private static readonly HostFileSystem Host = new("/");

    private static TuningEngine Engine(string journalDir) => new(Host, new EthtoolChannelControl(), new JournalStore(journalDir));

    private static void WithSaved(string[] paths, Action<string> test)
    {
        var saved = paths.ToDictionary(p => p, p => File.ReadAllText("/" + p));
        var journal = Directory.CreateTempSubdirectory("nettune-agent-kernel-").FullName;
        try
        {
            test(journal);
        }
        finally
        {
            // Only what differs is written back: an unchanged managed IRQ would refuse even its own value.
            foreach (var (p, v) in saved)
                if (File.ReadAllText("/" + p) != v) File.WriteAllText("/" + p, v);
            Directory.Delete(journal, recursive: true);
            foreach (var (p, v) in saved) Assert.Equal(v, File.ReadAllText("/" + p));
        }
    }

    [RootFact]
    public void Hugepages_PerNumaNode_ApplyReadBackAndRevert()
    {
        const string node0 = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
        const string global = "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
        WithSaved([node0], journal =>
        {
            var original = long.Parse(File.ReadAllText("/" + node0));
            var globalBefore = long.Parse(File.ReadAllText("/" + global));
            var engine = Engine(journal);
            var spec = new NodeStateSpec { NodeName = "vm", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = (int)original + 8 }] };
            var report = engine.Apply(spec);
            var knob = report.Knobs.Single(k => k.Knob == "hugepages/node0/2Mi");
            Assert.True(knob.Result is KnobOutcome.Applied or KnobOutcome.Shortfall, knob.Message);
            var got = long.Parse(File.ReadAllText("/" + node0));
            Assert.Equal(knob.Value, got.ToString());
            // The global pool is the sum of the nodes' pools.
            Assert.Equal(globalBefore + (got - original), long.Parse(File.ReadAllText("/" + global)));
            Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
            Assert.Equal(original, long.Parse(File.ReadAllText("/" + node0)));
        });
    }

    [RootFact]
    public void Hugepages_GlobalPool_ThroughTheKnobWriter()
    {
        const string global = "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
        WithSaved([global], _ =>
        {
            var original = File.ReadAllText("/" + global).Trim();
            var writer = new KnobWriter(Host, new EthtoolChannelControl());
            var target = $"{long.Parse(original) + 4}";
            var r = writer.Write("hugepages/global/2Mi", KnobKind.Hugepages, global, target, null);
            Assert.True(r.Result is KnobOutcome.Applied or KnobOutcome.Shortfall, r.Message);
            Assert.Equal(File.ReadAllText("/" + global).Trim(), r.Value);
            Assert.Equal(KnobOutcome.Applied, writer.Write("hugepages/global/2Mi", KnobKind.Hugepages, global, original, null).Result);
        });
    }

    [RootFact]
    public void IrqAffinity_OfARuntimePickedUnmanagedNicIrq_AppliesAndReverts_AndAnOutOfRangeCpuFailsWithTheKernelsError()
    {
        var host = new Core.Topology.TopologyDiscovery(Host, new EthtoolChannelControl()).Discover();
        var nic = host.Nics.FirstOrDefault(n => n.Irqs.Any(i => !i.Managed));
        Assert.True(nic is not null, "no NIC with a queue interrupt on this host");
        var irq = nic.Irqs.First(i => !i.Managed);
        var paths = nic.Irqs.Select(i => $"proc/irq/{i.Irq}/smp_affinity_list").ToArray();
        WithSaved(paths, journal =>
        {
            var engine = Engine(journal);
            var last = host.OnlineCpus[^1];
            var spec = new NodeStateSpec
            {
                NodeName = "vm",
                Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = [nic.Name] }, IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.Spread, ReservedCpus = host.OnlineCpus.Count > 1 ? $"{host.OnlineCpus[0]}" : null } },
            };
            var report = engine.Apply(spec);
            Assert.True(report.Kind == RunKind.Applied, report.Message);
            var expected = host.OnlineCpus.Count > 1 ? $"{host.OnlineCpus[1]}" : $"{last}";
            Assert.Equal(expected, File.ReadAllText($"/proc/irq/{irq.Irq}/smp_affinity_list").Trim());

            var writer = new KnobWriter(Host, new EthtoolChannelControl());
            var offline = writer.Write($"irq/{irq.Irq}/affinity", KnobKind.IrqAffinity, $"proc/irq/{irq.Irq}/smp_affinity_list", $"{host.CpuIds + 5}", irq.Name);
            Assert.Equal(KnobOutcome.Failed, offline.Result);
            Assert.Matches("ERANGE|EIO|EINVAL", offline.Message);
            Assert.Equal(expected, File.ReadAllText($"/proc/irq/{irq.Irq}/smp_affinity_list").Trim());

            Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
            Assert.Equal(irq.AffinityList, File.ReadAllText($"/proc/irq/{irq.Irq}/smp_affinity_list").Trim());
        });
    }

    [RootFact]
    public void ManagedIrq_RefusesAffinity_AndIsReportedAsManaged()
    {
        // Block-device queue interrupts (virtio-blk's virtioN-req.M, nvme) are kernel-managed on this kind of VM.
        var managed = Directory.EnumerateDirectories("/proc/irq").Select(d => (Dir: d, Names: Directory.EnumerateDirectories(d).Select(Path.GetFileName).ToArray()))
            .FirstOrDefault(x => x.Names.Any(n => n!.Contains("-req.", StringComparison.Ordinal) || n!.StartsWith("nvme", StringComparison.Ordinal)));
        Assert.True(managed.Dir is not null, "no block-device queue interrupt found to try");
        var irq = Path.GetFileName(managed.Dir);
        var path = $"proc/irq/{irq}/smp_affinity_list";
        WithSaved([path], _ =>
        {
            var current = File.ReadAllText("/" + path).Trim();
            var writer = new KnobWriter(Host, new EthtoolChannelControl());
            var r = writer.Write($"irq/{irq}/affinity", KnobKind.IrqAffinity, path, "0", managed.Names[0]);
            Assert.Equal(KnobOutcome.Managed, r.Result);
            Assert.Equal(current, File.ReadAllText("/" + path).Trim());
        });
    }

    [RootFact]
    public void RootNamespaceSysctls_BusyPollAndRpsSockFlowEntries_RoundUpAndRevert()
    {
        string[] paths = ["proc/sys/net/core/busy_poll", "proc/sys/net/core/rps_sock_flow_entries"];
        WithSaved(paths, journal =>
        {
            var before = paths.Select(p => File.ReadAllText("/" + p)).ToArray();
            var engine = Engine(journal);
            var spec = new NodeStateSpec { NodeName = "vm", Sysctls = new() { ["net.core.busy_poll"] = "37", ["net.core.rps_sock_flow_entries"] = "5000" } };
            var report = engine.Apply(spec);
            Assert.True(report.Kind == RunKind.Applied, report.Message);
            Assert.Equal("37", File.ReadAllText("/proc/sys/net/core/busy_poll").Trim());
            // The kernel rounds the table up to a power of two; the plan's target did the same, so the read-back matches.
            Assert.Equal("8192", File.ReadAllText("/proc/sys/net/core/rps_sock_flow_entries").Trim());
            Assert.Empty(engine.PlanNow(spec).Plan.Changes);
            Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
            Assert.Equal(before, paths.Select(p => File.ReadAllText("/" + p)).ToArray());
        });
    }
}
