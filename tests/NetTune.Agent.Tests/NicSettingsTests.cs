using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;
using NetTune.Fixtures.Hosts;

namespace NetTune.Agent.Tests;

/// <summary>
/// Rings, coalescing, offloads and pause on the driver-faithful fixtures (mlx5, ice, ENA): planned from what the NIC
/// reports, applied with the driver's own limits and quirks, read back, journaled and reverted byte for byte.
/// </summary>
public sealed class NicSettingsTests
{
    private const string Mlx5 = "ens1f0np0";

    private static NodeStateSpec Spec(string name, RingsSpec? rings = null, CoalesceSpec? coalesce = null, OffloadsSpec? offloads = null, PauseSpec? pause = null) => new()
    {
        NodeName = "node-a",
        Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = [name] }, Rings = rings, Coalesce = coalesce, Offloads = offloads, Pause = pause },
    };

    private static KnobResult Knob(RunReport report, string knob) => report.Knobs.Single(k => k.Knob == knob);

    private static string State(FixtureHost host, string nic) => host.Read(SimulatedNicSettings.StatePath(nic));

    [Fact]
    public void Plan_PutsTheSpecsFieldsOverWhatTheNicReports_AndSkipsWhatItCannotDo_WithTheReason()
    {
        using var host = FixtureHost.DriverZoo();
        var engine = host.Engine();
        var (_, plan) = engine.PlanNow(Spec("eth0", rings: new RingsSpec { Rx = 32768, Tx = 512 }, coalesce: new CoalesceSpec { TxUsecs = 32 },
            offloads: new OffloadsSpec { Tso = true, Gro = false }, pause: new PauseSpec { Rx = false }));

        var coalesce = plan.Desired.Single(d => d.Knob == "nic/eth0/coalesce");
        Assert.Equal("adaptive-rx=on,adaptive-tx=off,rx-usecs=0,rx-frames=0,tx-usecs=64,tx-frames=0", coalesce.Current);
        Assert.Equal("adaptive-rx=on,adaptive-tx=off,rx-usecs=0,rx-frames=0,tx-usecs=32,tx-frames=0", coalesce.Target);
        Assert.Equal("ethtool-coalesce:eth0", coalesce.Path);
        var gro = plan.Desired.Single(d => d.Knob == "nic/eth0/features/rx-gro");
        Assert.Equal(("on", "off"), (gro.Current, gro.Target));
        // ENA: rx rings up to 16384, TSO fixed off, no pause at all.
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eth0/rings" && n.Outcome == KnobOutcome.Skipped && n.Message.Contains("above the maximum of eth0 (16384"));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eth0/features/tx-tcp-segmentation" && n.Outcome == KnobOutcome.Skipped && n.Message.Contains("fixed off"));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eth0/pause" && n.Outcome == KnobOutcome.Skipped && n.Message.Contains("EOPNOTSUPP"));
        Assert.DoesNotContain(plan.Desired, d => d.Kind is KnobKind.Rings or KnobKind.Pause);
        // Order: features before coalescing, all of them after channels and before queue settings.
        Assert.True(plan.Desired.ToList().IndexOf(gro) < plan.Desired.ToList().IndexOf(coalesce));
        Assert.All(plan.Desired, d => Assert.Equal(KnobValues.NicSettingPhase, d.Phase));
    }

    [Fact]
    public void Mlx5_RingsCoalescingOffloadsAndPause_ApplyReadBack_AndRevertByteExact()
    {
        using var host = FixtureHost.Cpu256();
        var before = host.TreeImage();
        var engine = host.Engine();
        var spec = Spec(Mlx5, rings: new RingsSpec { Rx = 4096, Tx = 2048 },
            coalesce: new CoalesceSpec { AdaptiveRx = false, AdaptiveTx = false, RxUsecs = 32, RxFrames = 64 },
            offloads: new OffloadsSpec { Lro = true, Gro = false, Ntuple = true }, pause: new PauseSpec { Rx = false, Tx = false });

        var applied = engine.Apply(spec);
        Assert.True(applied.Kind == RunKind.Applied, applied.Message);
        Assert.Equal("rx=4096,rx-mini=0,rx-jumbo=0,tx=2048", Knob(applied, $"nic/{Mlx5}/rings").Value);
        Assert.Equal("adaptive-rx=off,adaptive-tx=off,rx-usecs=32,rx-frames=64,tx-usecs=8,tx-frames=128", Knob(applied, $"nic/{Mlx5}/coalesce").Value);
        Assert.Equal("autoneg=off,rx=off,tx=off", Knob(applied, $"nic/{Mlx5}/pause").Value);
        Assert.Equal("on", Knob(applied, $"nic/{Mlx5}/features/rx-lro").Value);
        Assert.Equal("off", Knob(applied, $"nic/{Mlx5}/features/rx-gro").Value);
        Assert.Contains("feature.rx-ntuple-filter=on", State(host, Mlx5));
        Assert.NotEqual(before, host.TreeImage());
        // A second apply finds everything at its target and changes nothing.
        Assert.Empty(engine.PlanNow(spec).Plan.Changes);

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void Mlx5_RoundsRingsUpToAPowerOfTwo_TheReadBackSaysSo_AndRefusesPauseAutoneg()
    {
        using var host = FixtureHost.Cpu256();
        var before = host.TreeImage();
        var engine = host.Engine();
        var report = engine.Apply(Spec(Mlx5, rings: new RingsSpec { Rx = 3000 }, pause: new PauseSpec { Autoneg = true }));
        Assert.Equal(RunKind.Failed, report.Kind);
        var rings = Knob(report, $"nic/{Mlx5}/rings");
        Assert.Equal(KnobOutcome.Failed, rings.Result);
        Assert.Equal("rx=4096,rx-mini=0,rx-jumbo=0,tx=1024", rings.Value);
        Assert.Contains("but read back", rings.Message);
        var pause = Knob(report, $"nic/{Mlx5}/pause");
        Assert.Equal(KnobOutcome.Failed, pause.Result);
        Assert.Contains("EINVAL", pause.Message);

        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void Ice_RestoringAdaptiveCoalescing_SetsTheUsecsFirst_AsIceRefusesBothInOneRequest()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var engine = host.Engine();
        var applied = engine.Apply(Spec("eth1", coalesce: new CoalesceSpec { AdaptiveRx = false, AdaptiveTx = false, RxUsecs = 100, TxUsecs = 20 }));
        Assert.True(applied.Kind == RunKind.Applied, applied.Message);
        Assert.Equal("adaptive-rx=off,adaptive-tx=off,rx-usecs=100,rx-frames=0,tx-usecs=20,tx-frames=0", Knob(applied, "nic/eth1/coalesce").Value);

        // What a one-request revert would send: ice answers EINVAL (usecs changed while adaptive stays on).
        var settings = new SimulatedNicSettings(host.Fs);
        Assert.Equal(Errnos.EINVAL, settings.Set("eth1", NicSettingValues.Parse(NicSettingGroup.Coalesce, "adaptive-rx=on,rx-usecs=50")));

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void Ice_FrameCountsAndPauseAutonegAgainstTheLink_AreSkippedWithTheDriversEopnotsupp_RingsRoundToMultiplesOf32()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var engine = host.Engine();
        var report = engine.Apply(Spec("eth1", rings: new RingsSpec { Rx = 4064 }, coalesce: new CoalesceSpec { AdaptiveRx = false, RxFrames = 32 },
            pause: new PauseSpec { Autoneg = false }, offloads: new OffloadsSpec { Lro = true, Ntuple = false }));
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal("rx=4064,rx-mini=0,rx-jumbo=0,tx=2048", Knob(report, "nic/eth1/rings").Value);
        var coalesce = Knob(report, "nic/eth1/coalesce");
        Assert.Equal(KnobOutcome.Skipped, coalesce.Result);
        Assert.Contains("does not support setting adaptive-rx, rx-frames", coalesce.Message);
        Assert.Contains("EOPNOTSUPP", coalesce.Message);
        Assert.Equal(KnobOutcome.Skipped, Knob(report, "nic/eth1/pause").Result);
        Assert.Equal(KnobOutcome.Skipped, Knob(report, "nic/eth1/features/rx-lro").Result);
        Assert.Equal("off", Knob(report, "nic/eth1/features/rx-ntuple-filter").Value);
        Assert.Contains("coalesce=adaptive-rx=on", State(host, "eth1"));

        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void Ena_RingsRoundDownToAPowerOfTwo_AndRxUsecsReadsZeroUnderAdaptiveRx()
    {
        using var host = FixtureHost.DriverZoo();
        var engine = host.Engine();
        var rounded = engine.Apply(Spec("eth0", rings: new RingsSpec { Rx = 6000 }));
        Assert.Equal("rx=4096,rx-mini=0,rx-jumbo=0,tx=1024", Knob(rounded, "nic/eth0/rings").Value);
        Assert.Equal(KnobOutcome.Failed, Knob(rounded, "nic/eth0/rings").Result);

        var hidden = engine.Apply(Spec("eth0", coalesce: new CoalesceSpec { RxUsecs = 64 }));
        var knob = Knob(hidden, "nic/eth0/coalesce");
        Assert.Equal(KnobOutcome.Failed, knob.Result);
        Assert.Contains("rx-usecs=0", knob.Value);
        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        Assert.Equal("rings=rx=1024,rx-mini=0,rx-jumbo=0,tx=1024", State(host, "eth0").Split('\n')[0]);

        var fixedOff = engine.Apply(Spec("eth0", coalesce: new CoalesceSpec { AdaptiveRx = false, RxUsecs = 64 }));
        Assert.True(fixedOff.Kind == RunKind.Applied, fixedOff.Message);
        Assert.Equal("adaptive-rx=off,adaptive-tx=off,rx-usecs=64,rx-frames=0,tx-usecs=64,tx-frames=0", Knob(fixedOff, "nic/eth0/coalesce").Value);
        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
    }

    [Fact]
    public void ASettingTheSpecNoLongerAsksFor_GoesBackToItsOriginal()
    {
        using var host = FixtureHost.Cpu256();
        var before = host.TreeImage();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Spec(Mlx5, rings: new RingsSpec { Rx = 2048 }, offloads: new OffloadsSpec { Gro = false })).Kind);
        var second = engine.Apply(Spec(Mlx5, offloads: new OffloadsSpec { Gro = false }));
        Assert.True(second.Kind == RunKind.Applied, second.Message);
        Assert.Equal(KnobOutcome.Reverted, Knob(second, $"nic/{Mlx5}/rings").Result);
        Assert.Contains("rings=rx=1024,", State(host, Mlx5));
        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void TsoWithoutTxChecksumming_IsRequestedButInactive_SaidInTheResult_AndTheRevertRestoresBoth()
    {
        using var host = FixtureHost.Cpu256();
        var before = host.TreeImage();
        var engine = host.Engine();
        var report = engine.Apply(Spec(Mlx5, offloads: new OffloadsSpec { TxChecksum = false, Tso = true }));
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal("off", Knob(report, $"nic/{Mlx5}/features/tx-checksum-ipv4").Value);
        var tso = Knob(report, $"nic/{Mlx5}/features/tx-tcp-ecn-segmentation");
        Assert.Equal("on", tso.Value);
        Assert.Contains("keeps tx-tcp-ecn-segmentation off", tso.Message);
        var nic = StatusBuilder.Topology(report.Host!).Nics!.Single(n => n.Name == Mlx5);
        Assert.Contains("tx-tcp-segmentation=on (inactive)", nic.Offloads);
        Assert.Equal(RunKind.Reverted, engine.Revert().Kind);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void Status_ShowsEachQueueWithItsIrqAndCpu_TheSettings_AndTheNicsKnobsByOutcome()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        var spec = Spec("eth1", rings: new RingsSpec { Rx = 4096 }, coalesce: new CoalesceSpec { RxFrames = 8 });
        spec.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread };
        var report = engine.Apply(spec);
        var nic = StatusBuilder.Topology(report.Host!, report.Knobs).Nics!.Single(n => n.Name == "eth1");
        Assert.Equal(1, nic.NumaNode);
        Assert.Equal(16, nic.Queues!.Count);
        var q3 = nic.Queues[3];
        Assert.Equal("104", q3.Irqs);
        Assert.Equal("11", q3.IrqCpus);
        Assert.Equal("rx=4096,rx-mini=0,rx-jumbo=0,tx=2048 (max rx=8160,rx-mini=0,rx-jumbo=0,tx=8160)", nic.Rings);
        Assert.StartsWith("adaptive-rx=on", nic.Coalesce);
        Assert.Contains("rx-lro=off [fixed]", nic.Offloads);
        Assert.Contains("nic/eth1/rings", nic.KnobResults!.Applied!);
        Assert.Contains("irq/104/affinity", nic.KnobResults.Applied!);
        var skipped = Assert.Single(nic.KnobResults.Skipped!);
        Assert.Equal("nic/eth1/coalesce", skipped.Knob);
        Assert.Contains("rx-frames", skipped.Reason);
        // NICs no spec selects are not asked for their settings.
        Assert.Null(StatusBuilder.Topology(report.Host!).Nics!.Single(n => n.Name == "eth0").Rings);
    }
}
