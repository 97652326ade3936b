using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Planning;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

public sealed class ApplyRevertTests
{
    [Fact]
    public void FullApply_SetsEveryKnob_ThenNothingIsLeftToChange_AndRevertRestoresTheTreeByteForByte()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var engine = host.Engine();

        var report = engine.Apply(Specs.Full());
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal("rx=0,tx=0,other=1,combined=4", host.Read(".fixture/ethtool/eth1").Split(" max ")[0]);
        Assert.False(Directory.Exists(Path.Join(host.Root, "sys/class/net/eth1/queues/rx-12")));
        Assert.Equal("ff00ff00", host.Read("sys/class/net/eth1/queues/rx-3/rps_cpus"));
        Assert.Equal("00ff00ff", host.Read("sys/class/net/eth0/queues/rx-0/rps_cpus"));
        Assert.Equal("8192", host.Read("sys/class/net/eth1/queues/rx-0/rps_flow_cnt"));
        Assert.Equal("32768", host.Read("proc/sys/net/core/rps_sock_flow_entries"));
        Assert.Equal("9", host.Read("proc/irq/101/smp_affinity_list")); // node1 minus reserved 8: queue 0 → 9
        Assert.Equal("00000200", host.Read("sys/class/net/eth1/queues/tx-0/xps_cpus"));
        Assert.Equal("1024", host.Read("sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"));
        Assert.Equal("512", host.Read("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"));
        Assert.Equal("4096 262144 16777216", host.Read("proc/sys/net/ipv4/tcp_rmem"));
        Assert.All(report.Knobs, k => Assert.Equal(KnobOutcome.Applied, k.Result));

        Assert.Empty(engine.PlanNow(Specs.Full()).Plan.Changes);

        var revert = engine.Revert();
        Assert.True(revert.Kind == RunKind.Reverted, revert.Message);
        TreeAssert.Same(before, host.TreeImage());
        Assert.False(File.Exists(Path.Join(host.JournalDir, JournalStore.FileName)));
    }

    [Fact]
    public void Journal_RecordsExactOriginals_AndRoundTripsByteForByte()
    {
        using var host = FixtureHost.TwoSocket();
        var originalRmem = File.ReadAllText(Path.Join(host.Root, "proc/sys/net/ipv4/tcp_rmem"));
        Assert.Equal(RunKind.Applied, host.Engine().Apply(Specs.Full()).Kind);

        var store = new JournalStore(host.JournalDir);
        var bytes = File.ReadAllBytes(store.FilePath);
        var journal = store.Load();
        Assert.Equal(bytes, JournalStore.Encode(journal));
        Assert.Equal(originalRmem, journal.Find("sysctl/net.ipv4.tcp_rmem")!.Original + "\n");
        Assert.Equal("rx=0,tx=0,other=1,combined=16", journal.Find("nic/eth1/channels")!.Original);
        // rx-12 vanished with the channel change: its hand-set value is journaled so revert can bring it back.
        Assert.Equal("00000006", journal.Find("nic/eth1/rx-12/rps_cpus")!.Original);
        Assert.Equal("eth1-TxRx-0", journal.Find("irq/101/affinity")!.Identity);
        Assert.False(File.Exists(store.FilePath + ".tmp"));
    }

    [Fact]
    public void CorruptJournal_IsReported_AndNothingIsTouched()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        var path = Path.Join(host.JournalDir, JournalStore.FileName);
        var bytes = File.ReadAllBytes(path);
        bytes[^10] ^= 0x20;
        File.WriteAllBytes(path, bytes);
        host.Write("proc/sys/net/core/somaxconn", "128");
        var applied = host.TreeImage();

        var apply = engine.Apply(Specs.Full());
        var revert = engine.Revert();
        Assert.Equal(RunKind.JournalCorrupt, apply.Kind);
        Assert.Equal(RunKind.JournalCorrupt, revert.Kind);
        Assert.Contains("checksum mismatch", revert.Message);
        Assert.Equal(applied, host.TreeImage());
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void DryRun_PlansButWritesNothing()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var spec = Specs.Full();
        spec.DryRun = true;
        TuningPlan? published = null;
        var report = host.Engine().Apply(spec, (_, plan) => published = plan);
        Assert.Equal(RunKind.DryRun, report.Kind);
        Assert.NotEmpty(published!.Changes);
        TreeAssert.Same(before, host.TreeImage());
        Assert.Equal(0, host.Fs.WriteCount);
        Assert.False(Directory.Exists(host.JournalDir));
    }

    [Fact]
    public void KnobsDroppedFromTheSpec_GoBackToTheirOriginals()
    {
        using var host = FixtureHost.ThisVm();
        var engine = host.Engine();
        var first = new NodeStateSpec { NodeName = "n", Sysctls = new() { ["net.core.somaxconn"] = "8192", ["vm.swappiness"] = "10" } };
        Assert.Equal(RunKind.Applied, engine.Apply(first).Kind);
        var second = new NodeStateSpec { NodeName = "n", Sysctls = new() { ["net.core.somaxconn"] = "8192" } };
        var report = engine.Apply(second);
        Assert.Equal(RunKind.Applied, report.Kind);
        Assert.Equal("60", host.Read("proc/sys/vm/swappiness"));
        Assert.Equal("8192", host.Read("proc/sys/net/core/somaxconn"));
        Assert.Equal(KnobOutcome.Reverted, report.Knobs.Single(k => k.Knob == "sysctl/vm.swappiness").Result);
        Assert.Equal(["sysctl/net.core.somaxconn"], new JournalStore(host.JournalDir).Load().Entries.Select(e => e.Knob));
    }

    [Fact]
    public void Drift_IsSeenByPlanning_AndRepairedByTheNextApply()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        host.Write("proc/irq/103/smp_affinity_list", "0-31");
        host.Write("proc/sys/net/core/somaxconn", "4096");
        Assert.Equal(["irq/103/affinity", "sysctl/net.core.somaxconn"], engine.PlanNow(Specs.Full()).Plan.Changes.Select(c => c.Knob));
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        Assert.Equal("11", host.Read("proc/irq/103/smp_affinity_list"));
        // The journal keeps the value from before the agent's first change, not the drifted one.
        Assert.Equal("0-31", new JournalStore(host.JournalDir).Load().Find("irq/103/affinity")!.Original);
        Assert.Equal("4096", new JournalStore(host.JournalDir).Load().Find("sysctl/net.core.somaxconn")!.Original);
    }

    [Fact]
    public void ChannelsAboveTheMaximum_FailWithTheKernelsError_AndTheRestStillApplies()
    {
        using var host = FixtureHost.TwoSocket();
        var spec = Specs.Full();
        spec.Nic!.Channels = new ChannelsSpec { Combined = 64 };
        var report = host.Engine().Apply(spec);
        Assert.Equal(RunKind.Failed, report.Kind);
        var eth1 = report.Knobs.Single(k => k.Knob == "nic/eth1/channels");
        Assert.Equal(KnobOutcome.Failed, eth1.Result);
        Assert.Contains("EINVAL", eth1.Message);
        Assert.Equal("65535", host.Read("proc/sys/net/core/somaxconn"));
    }

    [Fact]
    public void InvalidSpec_IsRefusedBeforeAnyWrite()
    {
        using var host = FixtureHost.ThisVm();
        var spec = new NodeStateSpec { NodeName = "n", Nic = new NicSpec { Interfaces = new InterfaceSelector(), Channels = new ChannelsSpec { Combined = 2, Rx = 1 } } };
        var report = host.Engine().Apply(spec);
        Assert.Equal(RunKind.InvalidSpec, report.Kind);
        Assert.Contains("combined excludes rx and tx", report.Message);
        Assert.Equal(0, host.Fs.WriteCount);
    }

    [Fact]
    public void Revert_WithNoJournal_IsAnEmptySuccess()
    {
        using var host = FixtureHost.ThisVm();
        var report = host.Engine().Revert();
        Assert.Equal(RunKind.Reverted, report.Kind);
        Assert.Empty(report.Knobs);
    }
}

public sealed class SpecChangeTests
{
    [Fact]
    public void DroppingRps_RestoresTheSurvivingQueues_WhileSettingsOfRemovedQueuesWaitForTheChannelRevert()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);

        var noRps = Specs.Full();
        noRps.Nic!.Rps = null;
        var report = engine.Apply(noRps);
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal("00000000", host.Read("sys/class/net/eth1/queues/rx-0/rps_cpus"));
        Assert.Equal("0", host.Read("sys/class/net/eth1/queues/rx-0/rps_flow_cnt"));
        Assert.Equal("0", host.Read("proc/sys/net/core/rps_sock_flow_entries"));
        var journal = new JournalStore(host.JournalDir).Load();
        Assert.True(journal.Find("nic/eth1/rx-12/rps_cpus")!.LostWithChannels);

        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        TreeAssert.Same(before, host.TreeImage());
    }
}

public sealed class RevertEdgeTests
{
    [Fact]
    public void AnIrqThatNoLongerExists_IsSkippedOnRevert_AndTheRestIsRestored()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        Directory.Delete(Path.Join(host.Root, "proc/irq/101"), recursive: true); // the driver went away, say
        var report = engine.Revert();
        Assert.True(report.Kind == RunKind.Reverted, report.Message);
        Assert.Equal(KnobOutcome.Skipped, report.Knobs.Single(k => k.Knob == "irq/101/affinity").Result);
        Assert.Equal("0-31", host.Read("proc/irq/102/smp_affinity_list"));
        Assert.False(File.Exists(Path.Join(host.JournalDir, JournalStore.FileName)));
    }

    [Fact]
    public void AnIrqNowServingSomethingElse_IsNotTouched()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        Directory.Move(Path.Join(host.Root, "proc/irq/101/eth1-TxRx-0"), Path.Join(host.Root, "proc/irq/101/nvme0q1"));
        var report = engine.Revert();
        var irq = report.Knobs.Single(k => k.Knob == "irq/101/affinity");
        Assert.Equal(KnobOutcome.Skipped, irq.Result);
        Assert.Contains("no longer serves eth1-TxRx-0", irq.Message);
        Assert.Equal("9", host.Read("proc/irq/101/smp_affinity_list"));
    }

    [Fact]
    public void DroppingTheChannelsFromTheSpec_RestoresThem_AndPlansQueuesAgainstTheRebuiltNic()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        var noChannels = Specs.Full();
        noChannels.Nic!.Channels = null;
        var report = engine.Apply(noChannels);
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal("rx=0,tx=0,other=1,combined=16", host.Read(".fixture/ethtool/eth1").Split(" max ")[0]);
        Assert.Equal("ff00ff00", host.Read("sys/class/net/eth1/queues/rx-15/rps_cpus"));
        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        TreeAssert.Same(before, host.TreeImage());
    }
}

public sealed class JournalFailureTests
{
    [Fact]
    public void AJournalThatCannotBeSaved_StopsTheApplyBeforeAnyKnobChanges()
    {
        using var host = FixtureHost.ThisVm();
        File.WriteAllText(host.JournalDir, "a file where the journal folder should be");
        var before = host.TreeImage();
        var report = host.Engine().Apply(new NodeStateSpec { NodeName = "n", Sysctls = new() { ["net.core.somaxconn"] = "8192" } });
        Assert.Equal(RunKind.Failed, report.Kind);
        Assert.Contains("cannot save the journal", report.Message);
        TreeAssert.Same(before, host.TreeImage());
        Assert.Equal(0, host.Fs.WriteCount);
    }
}
