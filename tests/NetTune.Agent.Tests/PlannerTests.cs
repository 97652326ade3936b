using NetTune.Agent.Core;
using NetTune.Agent.Core.Planning;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

public sealed class PlannerTests
{
    private static NodeStateSpec NicOnly(NicSpec nic) => new() { NodeName = "n", Nic = nic };

    [Fact]
    public void NumaLocalSpread_RoundRobinsQueueIrqsOverTheLocalNodeMinusReserved()
    {
        using var host = FixtureHost.TwoSocket();
        var plan = TuningPlanner.Plan(host.Discover(), NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Drivers = ["ice"] },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread, ReservedCpus = "8-9" },
        }));
        var irqs = plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).ToArray();
        Assert.Equal(16, irqs.Length);
        // node1 minus 8-9: 10..15, 24..31 (14 CPUs); queue q (IRQ 101+q) goes to the q mod 14-th.
        int[] allowed = [10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
        for (var q = 0; q < 16; q++)
        {
            var knob = irqs.Single(k => k.Knob == $"irq/{101 + q}/affinity");
            Assert.Equal($"{allowed[q % 14]}", knob.Target);
            Assert.Equal($"proc/irq/{101 + q}/smp_affinity_list", knob.Path);
            Assert.Equal($"eth1-TxRx-{q}", knob.Identity);
        }
        Assert.DoesNotContain(plan.Desired, d => d.Knob.StartsWith("nic/eth0", StringComparison.Ordinal));
    }

    [Fact]
    public void ANicWhoseNumaNodeIsUnknownSpreadsOverEveryNumaNode_NotOnlyNodeZero()
    {
        using var host = FixtureHost.TwoSocket();
        host.Write("sys/devices/pci0000:00/0000:00:03.0/numa_node", "-1");
        var snapshot = host.Discover();
        Assert.Equal(-1, snapshot.Nics.Single(n => n.Name == "eth0").NumaNode);
        var plan = TuningPlanner.Plan(snapshot, NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth0"] },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread },
        }));
        var cpus = plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).Select(d => int.Parse(d.Target!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.NotEmpty(cpus);
        // eth0's queue interrupts reach CPUs of node 1 (8-15, 24-31) too.
        Assert.Contains(cpus, c => c is >= 8 and <= 15 or >= 24);
        Assert.Contains(cpus, c => c < 8);
        Assert.Contains("numa_node -1", plan.Notes.Single(n => n.Knob == "nic/eth0/numa").Message);
    }

    [Fact]
    public void Spread_UsesEveryOnlineCpu_AndVirtioPairsShareTheirQueuesCpu()
    {
        using var host = FixtureHost.TwoSocket();
        var plan = TuningPlanner.Plan(host.Discover(), NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth0"] },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.Spread, ReservedCpus = "0-1" },
        }));
        // eth0: input.q on 41+2q, output.q on 42+2q; allowed CPUs 2..31.
        var targets = plan.Desired.ToDictionary(d => d.Knob, d => d.Target);
        for (var q = 0; q < 4; q++)
        {
            Assert.Equal($"{2 + q}", targets[$"irq/{41 + 2 * q}/affinity"]);
            Assert.Equal($"{2 + q}", targets[$"irq/{42 + 2 * q}/affinity"]);
        }
    }

    [Fact]
    public void Rps_IsTheLocalCpuMask_XpsFollowsTheRxIrqCpu_RfsSharesTheFlowTable()
    {
        using var host = FixtureHost.TwoSocket();
        var plan = TuningPlanner.Plan(host.Discover(), NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth1"] },
            IrqAffinity = new IrqAffinitySpec(),
            Rps = new RpsSpec { Enabled = true, FlowEntries = 5000 },
            Xps = new XpsSpec { Enabled = true },
        }));
        var t = plan.Desired.ToDictionary(d => d.Knob, d => d.Target);
        Assert.Equal("ff00ff00", t["nic/eth1/rx-0/rps_cpus"]);
        Assert.Equal("ff00ff00", t["nic/eth1/rx-15/rps_cpus"]);
        // 5000 flows over 16 queues = 313 each, rounded up to 512 as the kernel would; the global table to 8192.
        Assert.Equal("512", t["nic/eth1/rx-3/rps_flow_cnt"]);
        Assert.Equal("8192", t["sysctl/net.core.rps_sock_flow_entries"]);
        for (var q = 0; q < 16; q++)
        {
            var irqCpu = int.Parse(t[$"irq/{101 + q}/affinity"]);
            Assert.Equal(CpuMask.Format([irqCpu], 32), t[$"nic/eth1/tx-{q}/xps_cpus"]);
        }
    }

    [Fact]
    public void Cpu256_MasksUseEightGroups_AndMatchLocalCpusCapsAtTheDeviceMaximum()
    {
        using var host = FixtureHost.Cpu256();
        var plan = TuningPlanner.Plan(host.Discover(), NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Drivers = ["mlx5_core"] },
            Channels = new ChannelsSpec { MatchLocalCpus = true },
            Rps = new RpsSpec { Enabled = true },
            Xps = new XpsSpec { Enabled = true },
            IrqAffinity = new IrqAffinitySpec(),
        }));
        var t = plan.Desired.ToDictionary(d => d.Knob, d => d.Target);
        Assert.Equal("rx=0,tx=0,other=1,combined=63", t["nic/ens1f0np0/channels"]);
        Assert.False(plan.Desired.Single(d => d.Kind == KnobKind.Channels).NeedsChange);
        Assert.Equal("ffffffff,ffffffff,ffffffff,ffffffff,00000000,00000000,00000000,00000000", t["nic/ens1f0np0/rx-0/rps_cpus"]);
        Assert.Equal("129", t["irq/202/affinity"]); // queue 1 on the second CPU of node 1
        Assert.Equal("00000000,00000000,00000000,00000002,00000000,00000000,00000000,00000000", t["nic/ens1f0np0/tx-1/xps_cpus"]);
    }

    [Fact]
    public void MatchLocalCpus_OnVirtio_IsCappedAtItsQueuePairs_AndQueueKnobsFollowTheNewCount()
    {
        using var host = FixtureHost.TwoSocket();
        var snap = host.Discover();
        var plan = TuningPlanner.Plan(snap, NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth1"] },
            Channels = new ChannelsSpec { Combined = 24 },
            Rps = new RpsSpec { Enabled = true },
        }));
        var ch = plan.Changes[0];
        Assert.Equal(KnobKind.Channels, ch.Kind);
        Assert.Equal("rx=0,tx=0,other=1,combined=16", ch.Current);
        Assert.Equal("rx=0,tx=0,other=1,combined=24", ch.Target);
        // Queues 16..23 do not exist yet: planned with no current value, re-planned once the channels are there.
        Assert.Equal(24, plan.Desired.Count(d => d.Kind == KnobKind.RpsCpus));
        Assert.Null(plan.Desired.Single(d => d.Knob == "nic/eth1/rx-20/rps_cpus").Current);
    }

    [Fact]
    public void Changes_AreOrdered_ChannelsQueuesIrqsHugepagesSysctls()
    {
        using var host = FixtureHost.TwoSocket();
        var changes = TuningPlanner.Plan(host.Discover(), Specs.Full()).Changes;
        var phases = changes.Select(c => KnobValues.Phase(c.Kind)).ToArray();
        Assert.Equal(phases.Order(), phases);
        Assert.Equal([KnobValues.ChannelPhase, KnobValues.QueuePhase, KnobValues.IrqPhase, KnobValues.HugepagesPhase, KnobValues.SysctlPhase], phases.Distinct());
        Assert.Equal("nic/eth1/channels", changes[0].Knob);
    }

    [Fact]
    public void Hugepages_PerNodeWithOverride_AndAMissingPoolIsAFailedNote()
    {
        using var host = FixtureHost.ThisVm();
        var plan = TuningPlanner.Plan(host.Discover(), new NodeStateSpec
        {
            NodeName = "n",
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64, PerNumaNode = [new NumaNodePages { NumaNode = 3, Pages = 1 }] }],
        });
        var knob = Assert.Single(plan.Desired);
        Assert.Equal(("hugepages/node0/2Mi", "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "0", "64"),
            (knob.Knob, knob.Path, knob.Current, knob.Target));
        var note = Assert.Single(plan.Notes);
        Assert.Equal(KnobOutcome.Skipped, note.Outcome);

        File.Delete(Path.Join(host.Root, "sys/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages"));
        Directory.Delete(Path.Join(host.Root, "sys/devices/system/node/node0/hugepages/hugepages-1048576kB"), true);
        var gig = TuningPlanner.Plan(host.Discover(), new NodeStateSpec { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 1 }] });
        Assert.Empty(gig.Desired);
        Assert.Equal(KnobOutcome.Failed, Assert.Single(gig.Notes).Outcome);
    }

    [Fact]
    public void Sysctls_CompareWhitespaceInsensitively_AndRefuseKeysOutsideTheAllowList()
    {
        using var host = FixtureHost.ThisVm();
        var plan = TuningPlanner.Plan(host.Discover(), new NodeStateSpec
        {
            NodeName = "n",
            Sysctls = new() { ["net.ipv4.tcp_rmem"] = "4096 131072   6291456", ["kernel.panic"] = "1", ["net.core.somaxconn"] = "1024" },
        });
        Assert.Equal(["sysctl/net.core.somaxconn"], plan.Changes.Select(c => c.Knob));
        Assert.False(plan.Desired.Single(d => d.Knob == "sysctl/net.ipv4.tcp_rmem").NeedsChange);
        Assert.Contains("allow-list", Assert.Single(plan.Notes).Message);
    }

    [Fact]
    public void SingleQueueDevice_SkipsXps_AndAnUnknownNumaNodeCountsAsNode0()
    {
        using var host = FixtureHost.ThisVm();
        var plan = TuningPlanner.Plan(host.Discover(), NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Drivers = ["virtio_net"] },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread, ReservedCpus = "0" },
            Xps = new XpsSpec { Enabled = true },
        }));
        Assert.Equal(KnobOutcome.Skipped, Assert.Single(plan.Notes).Outcome);
        Assert.Equal(["1", "1"], plan.Desired.Select(d => d.Target));
    }

    [Fact]
    public void NoCpuLeft_IsAFailedNote_NotAGuess()
    {
        using var host = FixtureHost.ThisVm();
        var plan = TuningPlanner.Plan(host.Discover(), NicOnly(new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth0"] },
            IrqAffinity = new IrqAffinitySpec { ReservedCpus = "0-1" },
        }));
        Assert.Empty(plan.Desired);
        Assert.Equal(KnobOutcome.Failed, Assert.Single(plan.Notes).Outcome);
    }

    [Theory]
    [InlineData("eth*", "eth12", true)]
    [InlineData("ens1f?", "ens1f0", true)]
    [InlineData("ens1f?", "ens1f10", false)]
    [InlineData("eth[01]", "eth1", true)]
    [InlineData("eth[!01]", "eth1", false)]
    [InlineData("eth.0", "eth10", false)]
    public void NameGlobs(string glob, string name, bool matches) =>
        Assert.Equal(matches, InterfaceMatcher.Matches(new InterfaceSelector { Names = [glob] }, name, null));
}
