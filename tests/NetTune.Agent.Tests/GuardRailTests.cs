using NetTune.Agent.Core;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Planning;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>Item 1 of issue 12: no NodeState may take a node down (hugepages, sysctls, the management interface).</summary>
public sealed class GuardRailTests
{
    private const string Node0Pool2M = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
    private const string Node1Pool2M = "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages";

    private static NodeStateSpec Pages(int perNode, int maxPercent = 50, params NumaNodePages[] overrides) => new()
    {
        NodeName = "n",
        Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = perNode, MaxNodeMemoryPercent = maxPercent, PerNumaNode = overrides.Length == 0 ? null : [.. overrides] }],
    };

    [Fact]
    public void Hugepages_AMillionPagesOnAnEightGigNode_AreRefusedWithTheNumbers_AndNothingIsWritten()
    {
        using var host = FixtureHost.ThisVm();
        var report = host.Engine().Apply(Pages(1048576));
        var knob = Assert.Single(report.Knobs);
        Assert.Equal((KnobOutcome.Failed, "hugepages/node0/2Mi"), (knob.Result, knob.Knob));
        Assert.Equal("refused on node 0: 1048576 × 2Mi = 2 TiB, more than maxNodeMemoryPercent 50% of the node's 7.3 GiB (3.7 GiB); left at 0", knob.Message);
        Assert.Equal(RunKind.Failed, report.Kind);
        Assert.Equal(0, host.Fs.WriteCount);
        Assert.Equal("0", host.Read(Node0Pool2M));

        // 1000 pages (2 GiB) fit in half of the node, not in a fifth of it.
        Assert.Equal("1000", Assert.Single(TuningPlanner.Plan(host.Discover(), Pages(1000)).Desired).Target);
        Assert.Contains("maxNodeMemoryPercent 20%", Assert.Single(TuningPlanner.Plan(host.Discover(), Pages(1000, maxPercent: 20)).Notes).Message);
    }

    [Fact]
    public void Hugepages_EverySizeTogetherCountsAgainstTheNodesShare()
    {
        using var host = FixtureHost.ThisVm();
        var spec = Pages(1000);
        spec.Hugepages!.Add(new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 2 });
        var plan = TuningPlanner.Plan(host.Discover(), spec);
        Assert.Empty(plan.Desired);
        Assert.Equal(["hugepages/node0/2Mi", "hugepages/node0/1Gi"], plan.Notes.Select(n => n.Knob));
        Assert.All(plan.Notes, n => Assert.StartsWith("refused on node 0: 1000 × 2Mi and 2 × 1Gi = 4 GiB", n.Message));
    }

    [Fact]
    public void Hugepages_AreRaisedInSteps_AndStopBeforeTheNodeRunsShort_WithThePartialAllocationReported()
    {
        using var host = FixtureHost.TwoSocket();
        var kernel = new HugepagesKernelModel(host.Fs);
        // node1 has 4 GiB free of 64 GiB: 5% (3.2 GiB) must stay free, so about 0.8 GiB of pages fit.
        host.Write("sys/devices/system/node/node1/meminfo", $"Node 1 MemTotal:       {64L * 1024 * 1024} kB\nNode 1 MemFree:        {4L * 1024 * 1024} kB");
        var report = host.Engine(kernel).Apply(Pages(8192, 50, new NumaNodePages { NumaNode = 1, Pages = 4096 }));

        var node0 = report.Knobs.Single(k => k.Knob == "hugepages/node0/2Mi");
        Assert.Equal((KnobOutcome.Applied, "8192"), (node0.Result, node0.Value));
        // 256 → 8192 in steps of at most 1 GiB (512 pages).
        var steps = kernel.PoolWrites.Where(w => w.Path == Node0Pool2M).Select(w => w.Asked).ToArray();
        Assert.Equal(16, steps.Length);
        Assert.All(steps.Zip(steps.Skip(1)), p => Assert.True(p.Second - p.First <= 512, $"{p.First} → {p.Second}"));
        Assert.Equal(8192, steps[^1]);

        var node1 = report.Knobs.Single(k => k.Knob == "hugepages/node1/2Mi");
        Assert.Equal((KnobOutcome.Shortfall, "409"), (node1.Result, node1.Value));
        Assert.StartsWith("partial allocation: 409 of 4096 pages (3687 short): stopped with 3.2 GiB of sys/devices/system/node/node1/meminfo free or reclaimable", node1.Message);
        Assert.Equal("409", host.Read(Node1Pool2M));
        Assert.True(kernel.MemFreeKb("sys/devices/system/node/node1/meminfo") * 1024 >= 64L * 1024 * 1024 * 1024 * 5 / 100);
        Assert.Equal(RunKind.Failed, report.Kind);
    }

    [Fact]
    public void Hugepages_LoweredWhilePagesAreInUse_IsNoFailure_TheSurplusIsReported_AndNothingIsRetried()
    {
        using var host = FixtureHost.TwoSocket();
        var kernel = new HugepagesKernelModel(host.Fs);
        Assert.Equal(RunKind.Applied, host.Engine(kernel).Apply(Pages(512)).Kind);
        kernel.InUse[Node0Pool2M] = 400; // a pod maps 400 of node 0's pages

        var revert = host.Engine(kernel).Revert();
        Assert.Equal(RunKind.Reverted, revert.Kind);
        var node0 = revert.Knobs.Single(k => k.Knob == "hugepages/node0/2Mi");
        Assert.Equal((KnobOutcome.Reverted, "256"), (node0.Result, node0.Value));
        Assert.Equal("144 pages are still in use and stay allocated as surplus pages; the kernel releases them when the processes holding them end", node0.Message);
        Assert.Equal(("400", "144"), (host.Read(Node0Pool2M), host.Read("sys/devices/system/node/node0/hugepages/hugepages-2048kB/surplus_hugepages")));
        Assert.False(File.Exists(Path.Join(host.JournalDir, "journal.json")));
        // The pool is at its original: nothing to change, even before the pod lets its pages go.
        Assert.Empty(TuningPlanner.Plan(host.Discover(), Pages(256, 50, new NumaNodePages { NumaNode = 1, Pages = 0 })).Changes);
        kernel.Release(Node0Pool2M);
        Assert.Equal("256", host.Read(Node0Pool2M));
    }

    [Fact]
    public void Sysctls_AreCheckedByTypeAndRange_BeforeAnyWrite_NamingTheKeyAndTheReason()
    {
        using var host = FixtureHost.ThisVm();
        var spec = new NodeStateSpec { NodeName = "n", Sysctls = new() { ["net.core.somaxconn"] = "1", ["net.ipv4.tcp_rmem"] = "4096 87380" } };
        var report = host.Engine().Apply(spec);
        Assert.Equal(RunKind.InvalidSpec, report.Kind);
        Assert.Contains("spec.sysctls[net.core.somaxconn]: net.core.somaxconn: 1 is outside the safe range [128, 1048576]", report.Message);
        Assert.Contains("net.ipv4.tcp_rmem: '4096 87380' is not three integers (min default max)", report.Message);
        Assert.Equal(0, host.Fs.WriteCount);
        // The planner refuses the same on its own (a plan-only or drift check never validates the spec first).
        var note = TuningPlanner.Plan(host.Discover(), spec).Notes.Single(n => n.Knob == "sysctl/net.core.somaxconn");
        Assert.Equal((KnobOutcome.Failed, "net.core.somaxconn refused: 1 is outside the safe range [128, 1048576]"), (note.Outcome, note.Message));
    }

    [Fact]
    public void Sysctls_AreCheckedAgainstWhatThisKernelOffers_AndThisNodesMemory()
    {
        using var host = FixtureHost.ThisVm();
        var spec = new NodeStateSpec
        {
            NodeName = "n",
            Sysctls = new() { ["net.ipv4.tcp_congestion_control"] = "bbr", ["vm.min_free_kbytes"] = "1000000", ["vm.swappiness"] = "10" },
        };
        var plan = TuningPlanner.Plan(host.Discover(), spec);
        Assert.Equal(["sysctl/vm.swappiness"], plan.Desired.Select(d => d.Knob));
        Assert.Equal("net.ipv4.tcp_congestion_control refused: 'bbr' is not offered by this kernel (tcp_available_congestion_control: reno cubic); load its module first",
            plan.Notes.Single(n => n.Knob == "sysctl/net.ipv4.tcp_congestion_control").Message);
        Assert.Equal("vm.min_free_kbytes refused: 1000000 kB is more than 5% of the node's 7694540 kB of memory",
            plan.Notes.Single(n => n.Knob == "sysctl/vm.min_free_kbytes").Message);

        host.Write("proc/sys/net/ipv4/tcp_available_congestion_control", "reno cubic bbr");
        Assert.Contains(TuningPlanner.Plan(host.Discover(), spec).Desired, d => d.Knob == "sysctl/net.ipv4.tcp_congestion_control" && d.Target == "bbr");
    }

    [Fact]
    public void NetSysctls_AreRefused_WhenTheAgentsNetworkNamespaceIsNotTheHosts_OthersStillApply()
    {
        using var host = FixtureHost.ThisVm();
        var link = Path.Join(host.Root, "proc/self/ns/net");
        File.Delete(link);
        File.CreateSymbolicLink(link, "net:[4026532999]");
        var spec = new NodeStateSpec { NodeName = "n", Sysctls = new() { ["net.core.somaxconn"] = "8192", ["vm.swappiness"] = "10" } };
        var report = host.Engine().Apply(spec);
        Assert.Equal(RunKind.Failed, report.Kind);
        var somaxconn = report.Knobs.Single(k => k.Knob == "sysctl/net.core.somaxconn");
        Assert.Equal((KnobOutcome.Failed,
            "net.core.somaxconn refused: the agent's network namespace net:[4026532999] is not the host's net:[4026531840]; a net sysctl written from here would not tune the host"),
            (somaxconn.Result, somaxconn.Message));
        Assert.Equal("4096", host.Read("proc/sys/net/core/somaxconn"));
        Assert.Equal("10", host.Read("proc/sys/vm/swappiness"));

        // An agent told to tune its own namespace (--net-namespace own) writes it.
        var own = new TuningEngine(host.Fs, new Core.Host.SimulatedChannelControl(host.Fs), new Core.Journal.JournalStore(host.JournalDir)) { TuneOwnNetNamespace = true };
        Assert.Equal(RunKind.Applied, own.Apply(spec).Kind);
        Assert.Equal("8192", host.Read("proc/sys/net/core/somaxconn"));
    }

    [Fact]
    public void ManagementInterfaces_AreTheDefaultRoutesDevice_AndTheBondAndPortsBelowIt()
    {
        using var host = FixtureHost.BondedVlan();
        var mgmt = host.Discover().ManagementInterfaces;
        Assert.Equal(["bond0", "bond0.100", "ens1f0", "ens1f1"], mgmt.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("bond0.100 carries the node's default route", mgmt["bond0.100"]);
        Assert.Equal("ens1f1 is below bond0 (below bond0.100), which carries the node's default route", mgmt["ens1f1"]);

        // An IPv6-only node: the default route is in ipv6_route alone.
        host.Write("proc/net/route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT");
        Assert.Equal(["bond0", "bond0.100", "ens1f0", "ens1f1"], host.Discover().ManagementInterfaces.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ManagementInterfaces_KeepTheirChannels_UnlessTheSpecOptsIn_AndNeverGetOneChannel()
    {
        using var host = FixtureHost.BondedVlan();
        var spec = new NodeStateSpec
        {
            NodeName = "n",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["ens*"] }, Channels = new ChannelsSpec { Combined = 4 }, Rps = new RpsSpec { Enabled = true } },
        };
        var report = host.Engine().Apply(spec);
        Assert.Equal(RunKind.Applied, report.Kind);
        var ens1f0 = report.Knobs.Single(k => k.Knob == "nic/ens1f0/channels");
        Assert.Equal(KnobOutcome.Skipped, ens1f0.Result);
        Assert.Equal("left at rx=0,tx=0,other=1,combined=8: ens1f0 is below bond0 (below bond0.100), which carries the node's default route, and a channel change can reset its link; set nic.channels.allowManagementInterface to change it", ens1f0.Message);
        Assert.StartsWith("rx=0,tx=0,other=1,combined=8 ", host.Read(".fixture/ethtool/ens1f0"));
        Assert.StartsWith("rx=0,tx=0,other=1,combined=8 ", host.Read(".fixture/ethtool/ens1f1"));
        Assert.StartsWith("rx=0,tx=0,other=1,combined=4 ", host.Read(".fixture/ethtool/ens2"));
        // RPS is no disruption: the management ports get it on all their 8 queues.
        Assert.Equal("0f0f", host.Read("sys/class/net/ens1f0/queues/rx-7/rps_cpus"));

        spec.Nic.Channels = new ChannelsSpec { Combined = 4, AllowManagementInterface = true };
        Assert.Equal(RunKind.Applied, host.Engine().Apply(spec).Kind);
        Assert.StartsWith("rx=0,tx=0,other=1,combined=4 ", host.Read(".fixture/ethtool/ens1f0"));

        spec.Nic.Channels = new ChannelsSpec { Combined = 1, AllowManagementInterface = true };
        var one = host.Engine().Apply(spec);
        var refused = one.Knobs.Single(k => k.Knob == "nic/ens1f1/channels");
        Assert.Equal(KnobOutcome.Failed, refused.Result);
        Assert.StartsWith("refused rx=0,tx=0,other=1,combined=1: ens1f1 is below bond0", refused.Message);
        Assert.StartsWith("rx=0,tx=0,other=1,combined=4 ", host.Read(".fixture/ethtool/ens1f1"));
        Assert.StartsWith("rx=0,tx=0,other=1,combined=1 ", host.Read(".fixture/ethtool/ens2"));
    }

    [Fact]
    public void ManagementInterfaces_NeverGetEveryQueueInterruptOnOneCpu_OtherNicsMay()
    {
        using var host = FixtureHost.BondedVlan();
        var plan = TuningPlanner.Plan(host.Discover(), new NodeStateSpec
        {
            NodeName = "n",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["ixgbe"] }, IrqAffinity = new IrqAffinitySpec(), HousekeepingCpus = "0,4" },
        });
        var note = plan.Notes.Single(n => n.Knob == "nic/ens1f0/irqs");
        Assert.Equal(KnobOutcome.Failed, note.Outcome);
        Assert.StartsWith("refused: the interrupts of all 8 queues of ens1f0 on CPU 0; ens1f0 is below bond0", note.Message);
        Assert.DoesNotContain(plan.Desired, d => d.Identity?.StartsWith("ens1f", StringComparison.Ordinal) == true);
        var ens2 = plan.Desired.Where(d => d.Identity?.StartsWith("ens2-", StringComparison.Ordinal) == true).ToArray();
        Assert.Equal(8, ens2.Length);
        Assert.All(ens2, d => Assert.Equal("4", d.Target));
    }
}
