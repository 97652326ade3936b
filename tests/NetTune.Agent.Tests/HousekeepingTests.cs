using NetTune.Agent.Core;
using NetTune.Agent.Core.Planning;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>Item 5 of issue 12: one housekeeping CPU set per node for interrupts, RPS and XPS, and channel counts that follow it.</summary>
public sealed class HousekeepingTests
{
    private static NodeStateSpec Eth1(string? housekeeping = null) => new()
    {
        NodeName = "n",
        Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth1"] },
            Channels = new ChannelsSpec { MatchLocalCpus = true },
            IrqAffinity = new IrqAffinitySpec(),
            Rps = new RpsSpec { Enabled = true },
            Xps = new XpsSpec { Enabled = true },
            HousekeepingCpus = housekeeping,
        },
    };

    [Fact]
    public void IsolatedNohzFullAndKubeletExclusiveCpus_GetNoInterruptNoRpsNoXps_AndChannelsCountPhysicalCores()
    {
        using var host = FixtureHost.TwoSocket();
        // Node 1 is 8-15,24-31 (siblings n and n+16); 12-15 and 28-31 are isolated and nohz_full, a Guaranteed pod owns 10 and 26.
        host.Write("sys/devices/system/cpu/isolated", "12-15,28-31");
        host.Write("sys/devices/system/cpu/nohz_full", "12-15,28-31");
        Directory.CreateDirectory(Path.Join(host.Root, "var/lib/kubelet"));
        host.Write("var/lib/kubelet/cpu_manager_state",
            """{"policyName":"static","defaultCpuSet":"0-9,11-25,27-31","entries":{"6f1c2a4e-0000-4000-8000-000000000001":{"app":"10,26"}},"checksum":1234567}""");
        var plan = TuningPlanner.Plan(host.Discover(), Eth1());
        var t = plan.Desired.ToDictionary(d => d.Knob, d => d.Target);

        // Housekeeping CPUs of node 1: 8, 9, 11 and their siblings 24, 25, 27: three cores, three channels.
        int[] housekeeping = [8, 9, 11, 24, 25, 27];
        Assert.Equal("rx=0,tx=0,other=1,combined=3", t["nic/eth1/channels"]);
        var irqs = plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).ToArray();
        Assert.Equal(3, irqs.Length);
        Assert.All(irqs, d => Assert.Contains(int.Parse(d.Target), housekeeping));
        Assert.Equal(CpuMask.Format(housekeeping, 32), t["nic/eth1/rx-0/rps_cpus"]);
        Assert.Equal(["nic/eth1/rx-0/rps_cpus", "nic/eth1/rx-1/rps_cpus", "nic/eth1/rx-2/rps_cpus"], plan.Desired.Where(d => d.Kind == KnobKind.RpsCpus).Select(d => d.Knob));
        for (var q = 0; q < 3; q++)
            Assert.Equal(CpuMask.Format([int.Parse(t[$"irq/{101 + q}/affinity"])], 32), t[$"nic/eth1/tx-{q}/xps_cpus"]);
    }

    [Fact]
    public void NoHousekeepingCpuLeft_NoRpsOrXpsAtAll_RatherThanEveryCpuIncludingTheExclusiveOnes()
    {
        using var host = FixtureHost.TwoSocket();
        Directory.CreateDirectory(Path.Join(host.Root, "var/lib/kubelet"));
        // The only housekeeping CPUs given are both a Guaranteed pod's.
        host.Write("var/lib/kubelet/cpu_manager_state",
            """{"policyName":"static","defaultCpuSet":"0-7,10-31","entries":{"6f1c2a4e-0000-4000-8000-000000000003":{"app":"8-9"}},"checksum":1}""");
        var spec = Eth1("8-9");
        spec.Nic!.IrqAffinity = null;
        var plan = TuningPlanner.Plan(host.Discover(), spec);
        Assert.DoesNotContain(plan.Desired, d => d.Kind is KnobKind.RpsCpus or KnobKind.XpsCpus);
        var note = plan.Notes.Single(n => n.Knob == "nic/eth1/steering");
        Assert.Equal(KnobOutcome.Failed, note.Outcome);
        Assert.StartsWith("no CPU left for eth1's RPS and XPS", note.Message);
    }

    [Fact]
    public void WithoutAnythingIsolated_MatchLocalCpusCountsCoresNotHyperThreads()
    {
        using var host = FixtureHost.TwoSocket();
        var t = TuningPlanner.Plan(host.Discover(), Eth1()).Desired.ToDictionary(d => d.Knob, d => d.Target);
        Assert.Equal("rx=0,tx=0,other=1,combined=8", t["nic/eth1/channels"]);
    }

    [Fact]
    public void GivenHousekeepingCpus_OnAnotherNode_ServeTheNic_RatherThanAWorkloadsCpu()
    {
        using var host = FixtureHost.TwoSocket();
        var plan = TuningPlanner.Plan(host.Discover(), Eth1(housekeeping: "0-3"));
        var t = plan.Desired.ToDictionary(d => d.Knob, d => d.Target);
        Assert.Equal("rx=0,tx=0,other=1,combined=4", t["nic/eth1/channels"]);
        Assert.Equal(["0", "1", "2", "3"], plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).Select(d => d.Target));
        Assert.Equal(CpuMask.Format([0, 1, 2, 3], 32), t["nic/eth1/rx-3/rps_cpus"]);
    }
}
