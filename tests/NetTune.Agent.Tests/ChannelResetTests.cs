using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;
using NetTune.Fixtures.Hosts;

namespace NetTune.Agent.Tests;

/// <summary>
/// Exact revert on drivers that reset queue settings and IRQ affinity and reallocate their vectors when the channel
/// count changes (the mlx5 fixture), and the channel change's own safety: one NIC at a time, the link waited for.
/// </summary>
public sealed class ChannelResetTests
{
    private const string Port0 = "ens1f0np0";

    private static NodeStateSpec Spec(string names, int combined, bool irqs = true) => new()
    {
        NodeName = "bond-node",
        Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = [names] },
            Channels = new ChannelsSpec { Combined = combined },
            IrqAffinity = irqs ? new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread } : null,
        },
    };

    /// <summary>The admin's settings on port 0 as the fixture has them: comp q on CPU 15-q, RPS {q, q+8}, XPS {15-q}.</summary>
    private static void AssertAdminsSettings(FixtureHost host)
    {
        var nic = host.Discover().Nics.Single(n => n.Name == Port0);
        Assert.Equal(8, nic.RxQueues.Count);
        for (var q = 0; q < 8; q++)
        {
            var irq = nic.Irqs.Single(i => i.Name == $"mlx5_comp{q}@pci:0000:3b:00.0");
            Assert.Equal($"{15 - q}", irq.AffinityList);
            Assert.Equal(FixtureHostBuilder.Mask([q, q + 8], 16), nic.RxQueues[q].RpsCpus);
            Assert.Equal(FixtureHostBuilder.Mask([15 - q], 16), nic.TxQueues[q].XpsCpus);
        }
    }

    [Fact]
    public void TheFixtureDriver_ResetsQueueSettings_AndRenumbersItsVectors_LikeMlx5()
    {
        using var host = FixtureHost.Mlx5Bond();
        Assert.Equal(0, new SimulatedChannelControl(host.Fs).Set(Port0, new ChannelCounts(0, 0, 0, 4)));
        var nic = host.Discover().Nics.Single(n => n.Name == Port0);
        Assert.Equal(4, nic.RxQueues.Count);
        Assert.All(nic.RxQueues, q => Assert.Equal("0000", q.RpsCpus));
        Assert.Equal([0, 1, 2, 3], nic.Irqs.Select(i => i.Queue));
        Assert.All(nic.Irqs, i => Assert.True(i.Irq > 228, $"{i.Name} kept number {i.Irq}"));
        Assert.Equal(["0", "1", "2", "3"], nic.Irqs.Select(i => i.AffinityList));
        Assert.False(Directory.Exists(Path.Join(host.Root, "proc/irq/201")));
    }

    [Fact]
    public void Revert_AfterADriverReset_RestoresTheAdminsQueueSettingsAndIrqAffinity_FoundByName()
    {
        using var host = FixtureHost.Mlx5Bond();
        var engine = host.Engine();
        var applied = engine.Apply(Spec(Port0, 4));
        Assert.True(applied.Kind == RunKind.Applied, applied.Message);
        var nic = host.Discover().Nics.Single(n => n.Name == Port0);
        // Planned again after the driver rebuilt the channels: the new vectors are the ones placed.
        Assert.Equal(["0", "1", "2", "3"], nic.Irqs.Select(i => i.AffinityList));
        Assert.All(nic.Irqs, i => Assert.True(i.Irq > 228));
        var journal = new JournalStore(host.JournalDir).Load();
        Assert.Equal("15", journal.Entries.Single(e => e.Identity == "mlx5_comp0@pci:0000:3b:00.0").Original);
        Assert.Equal(FixtureHostBuilder.Mask([0, 8], 16), journal.Find($"nic/{Port0}/rx-0/rps_cpus")!.Original);

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        Assert.Equal("rx=0,tx=0,other=0,combined=8", host.Read($".fixture/ethtool/{Port0}").Split(" max ")[0]);
        AssertAdminsSettings(host);
        Assert.False(File.Exists(Path.Join(host.JournalDir, JournalStore.FileName)));
    }

    [Fact]
    public void DroppingTheChannelsFromTheSpec_PutsTheAdminsQueueSettingsBackAfterTheDriverResetsThem()
    {
        using var host = FixtureHost.Mlx5Bond();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Spec(Port0, 4, irqs: false)).Kind);
        var noChannels = Spec(Port0, 4, irqs: false);
        noChannels.Nic!.Channels = null;
        noChannels.Nic.Rps = new RpsSpec { FlowEntries = 0 };
        var report = engine.Apply(noChannels);
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        AssertAdminsSettings(host);
    }

    [Fact]
    public void ALinkThatDoesNotComeBack_GetsItsChannelsBack_AndTheOtherBondMemberIsLeftAlone()
    {
        using var host = FixtureHost.Mlx5Bond();
        File.AppendAllText(Path.Join(host.Root, $".fixture/driver/{Port0}"), "link-down-at-combined=4\n");
        var engine = new TuningEngine(host.Fs, new SimulatedChannelControl(host.Fs), new JournalStore(host.JournalDir)) { LinkWait = TimeSpan.FromMilliseconds(300) };
        var report = engine.Apply(Spec("ens1f*", 4));
        Assert.Equal(RunKind.Failed, report.Kind);
        var port0 = report.Knobs.Single(k => k.Knob == $"nic/{Port0}/channels");
        Assert.Equal(KnobOutcome.Failed, port0.Result);
        Assert.Contains("did not come back", port0.Message);
        Assert.Contains("put back to rx=0,tx=0,other=0,combined=8", port0.Message);
        var port1 = report.Knobs.Single(k => k.Knob == "nic/ens1f1np1/channels");
        Assert.Equal(KnobOutcome.Failed, port1.Result);
        Assert.Contains("another member of bond0", port1.Message);
        Assert.Equal("up", host.Read($"sys/class/net/{Port0}/operstate"));
        Assert.Equal("rx=0,tx=0,other=0,combined=8", host.Read($".fixture/ethtool/{Port0}").Split(" max ")[0]);
        Assert.Equal("rx=0,tx=0,other=0,combined=8", host.Read(".fixture/ethtool/ens1f1np1").Split(" max ")[0]);
        // The reset that came with the change and the change back is undone by the revert.
        Assert.True(engine.Revert().Kind == RunKind.Reverted);
        AssertAdminsSettings(host);
    }
}
