using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Planning;
using NetTune.Api.V1Alpha1;
using NetTune.Fixtures.Hosts;

namespace NetTune.Agent.Tests;

/// <summary>
/// The RSS indirection table, hash fields and the transmit queue length on the driver fixtures (mlx5, ice, ENA):
/// planned against what the NIC reports and the channels it will have, applied after channels, read back, journaled,
/// and reverted byte for byte, the table before the channels (the kernel refuses fewer queues than a hand-set table uses).
/// </summary>
public sealed class RssTests
{
    private const string Mlx5 = "ens1f0np0";

    private static NodeStateSpec Spec(string name, RssSpec? rss = null, ChannelsSpec? channels = null, int? txQueueLength = null) => new()
    {
        NodeName = "node-a",
        Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = [name] }, Rss = rss, Channels = channels, TxQueueLength = txQueueLength },
    };

    private static KnobResult Knob(RunReport report, string knob) => report.Knobs.Single(k => k.Knob == knob);

    /// <summary>The trees are equal; otherwise the paths that differ, so a failure says which file the revert missed.</summary>
    private static void SameTree(SortedDictionary<string, string> before, SortedDictionary<string, string> after, Func<string, bool>? ignore = null)
    {
        var differ = before.Keys.Union(after.Keys).Where(k => ignore?.Invoke(k) != true && before.GetValueOrDefault(k) != after.GetValueOrDefault(k)).ToArray();
        Assert.True(differ.Length == 0, "differ: " + string.Join(", ", differ.Select(k => $"{k}: {Text(before.GetValueOrDefault(k))} -> {Text(after.GetValueOrDefault(k))}")));

        static string Text(string? b64) => b64 is null ? "(none)" : b64.StartsWith("-> ", StringComparison.Ordinal) || b64.Length == 0 ? b64 : System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(b64));
    }

    private static RssSpec Hash(params (string Type, string Fields)[] hashes) =>
        new() { RxFlowHash = [.. hashes.Select(h => new RxFlowHashSpec { FlowType = h.Type, Fields = h.Fields })] };

    [Fact]
    public void Mlx5_TableOverTheQueuesLeftByTheChannelChange_AndHashFields_ApplyAfterChannels_AndRevertByteExact()
    {
        using var host = FixtureHost.Cpu256();
        var before = host.TreeImage();
        var engine = host.Engine();
        var rss = Hash(("udp4", "sd"), ("sctp4", "sdfn"), ("tcp6", "sdfnt"));
        rss.Equal = 8;
        var spec = Spec(Mlx5, rss, new ChannelsSpec { Combined = 16 }, txQueueLength: 10000);

        // Planned against the 16 queues the channel change leaves, not the 63 there are now.
        var (_, plan) = engine.PlanNow(spec);
        var table = plan.Desired.Single(d => d.Knob == $"nic/{Mlx5}/rss/indirection");
        Assert.Equal(("default 256:" + string.Join(",", Enumerable.Range(0, 63)), "256:0,1,2,3,4,5,6,7"),
            (table.Current, table.Target));
        Assert.True(plan.Changes.ToList().IndexOf(plan.Changes.Single(d => d.Kind == KnobKind.Channels)) < plan.Changes.ToList().IndexOf(table));

        var applied = engine.Apply(spec);
        Assert.Equal("256:0,1,2,3,4,5,6,7", Knob(applied, $"nic/{Mlx5}/rss/indirection").Value);
        Assert.Equal(KnobOutcome.Applied, Knob(applied, $"nic/{Mlx5}/rss/indirection").Result);
        Assert.Equal(("sd", KnobOutcome.Applied), (Knob(applied, $"nic/{Mlx5}/rss/rx-flow-hash/udp4").Value, Knob(applied, $"nic/{Mlx5}/rss/rx-flow-hash/udp4").Result));
        // mlx5 reports no sctp hashing (EINVAL) and hashes on nothing but IPs and ports (t: EOPNOTSUPP).
        Assert.Equal(KnobOutcome.Skipped, Knob(applied, $"nic/{Mlx5}/rss/rx-flow-hash/sctp4").Result);
        var tcp6 = Knob(applied, $"nic/{Mlx5}/rss/rx-flow-hash/tcp6");
        Assert.Equal(KnobOutcome.Skipped, tcp6.Result);
        Assert.Contains("EOPNOTSUPP", tcp6.Message);
        Assert.Equal("sdfn", tcp6.Value);
        Assert.Equal(("10000", KnobOutcome.Applied), (Knob(applied, $"nic/{Mlx5}/txqueuelen").Value, Knob(applied, $"nic/{Mlx5}/txqueuelen").Result));
        Assert.Equal("10000", host.Read($"sys/class/net/{Mlx5}/tx_queue_len").Trim());
        Assert.Contains("rss-indir=256:0,1,2,3,4,5,6,7", host.Read(SimulatedNicSettings.StatePath(Mlx5)));

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        // mlx5 frees its completion vectors and requests new ones on a channel change (SimulatedDriver): their numbers
        // are the kernel's to give, not a setting; everything else is back byte for byte.
        SameTree(before, host.TreeImage(), path => path == "proc/interrupts" || path.StartsWith("proc/irq/", StringComparison.Ordinal) || path.Contains("/msi_irqs/", StringComparison.Ordinal));
    }

    [Fact]
    public void Ena_ATableOverAddedChannels_GoesBackBeforeTheChannels_OrTheKernelRefusesTheChannelRevert()
    {
        using var host = FixtureHost.DriverZoo();
        var before = host.TreeImage();
        var engine = host.Engine();
        // Six of the eight queues: a table set by hand (equal 8 over 8 queues would be the default spread, left as it is).
        var rss = Hash(("tcp4", "sd"));
        rss.Equal = 6;
        var applied = engine.Apply(Spec("eth0", rss, new ChannelsSpec { Combined = 8 }));
        Assert.Equal("128:0,1,2,3,4,5", Knob(applied, "nic/eth0/rss/indirection").Value);
        // The ENA device does not let the driver change hash fields.
        Assert.Equal(KnobOutcome.Skipped, Knob(applied, "nic/eth0/rss/rx-flow-hash/tcp4").Result);
        Assert.Contains("EOPNOTSUPP", Knob(applied, "nic/eth0/rss/rx-flow-hash/tcp4").Message);
        // The kernel's rule, on its own: no channel change below a hand-set table.
        Assert.Equal(Errnos.EINVAL, new SimulatedChannelControl(host.Fs).Set("eth0", new ChannelCounts(0, 0, 0, 4)));

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        SameTree(before, host.TreeImage());
    }

    [Fact]
    public void Ena_FewerChannelsUnderNetTunesOwnTable_TheTableMakesWayFirst_AndTheRevertStillRestoresTheOriginals()
    {
        using var host = FixtureHost.DriverZoo();
        var before = host.TreeImage();
        var engine = host.Engine();
        Assert.True(engine.Apply(Spec("eth0", new RssSpec { Equal = 6 }, new ChannelsSpec { Combined = 8 })).Kind == RunKind.Applied);

        var second = engine.Apply(Spec("eth0", new RssSpec { Weights = [3, 1] }, new ChannelsSpec { Combined = 2 }));
        Assert.True(second.Kind == RunKind.Applied, second.Message);
        Assert.Equal("rx=0,tx=0,other=0,combined=2", Knob(second, "nic/eth0/channels").Value);
        // ethtool's weighted layout: 3/4 of the 128 entries on queue 0, then the rest on queue 1.
        Assert.True(RssIndirection.TryParse(Knob(second, "nic/eth0/rss/indirection").Value, out var table, out _));
        Assert.Equal((96, 32), (table.Count(q => q == 0), table.Count(q => q == 1)));
        Assert.Equal(Enumerable.Repeat(0u, 96).Concat(Enumerable.Repeat(1u, 32)), table);

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        SameTree(before, host.TreeImage());
    }

    [Fact]
    public void WhatTheNicCannotTake_IsSkippedWithTheReason_AndNothingChanges()
    {
        using var host = FixtureHost.DriverZoo();
        var before = host.TreeImage();
        var engine = host.Engine();
        // ENA eth0 has 4 queues; bnx2x eno1 reports no RSS table in this fixture (no rss-size line).
        var (_, plan) = engine.PlanNow(Spec("eth0", new RssSpec { Equal = 6 }));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eth0/rss/indirection" && n.Outcome == KnobOutcome.Skipped && n.Message.Contains("more than the 4 receive queues of eth0"));
        (_, plan) = engine.PlanNow(Spec("eth0", new RssSpec { Weights = [0, 0, 0, 0, 1] }));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eth0/rss/indirection" && n.Outcome == KnobOutcome.Skipped && n.Message.Contains("queue 4"));
        (_, plan) = engine.PlanNow(Spec("eth0", new RssSpec { Weights = [100, 100] }));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eth0/rss/indirection" && n.Message.Contains("more than the 128 entries"));
        var rss = Hash(("tcp4", "sdfn"));
        rss.Equal = 2;
        (_, plan) = engine.PlanNow(Spec("eno1", rss));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eno1/rss/indirection" && n.Outcome == KnobOutcome.Skipped && n.Message.Contains("no RSS indirection table"));
        Assert.Contains(plan.Notes, n => n.Knob == "nic/eno1/rss/rx-flow-hash/tcp4" && n.Outcome == KnobOutcome.Skipped);
        Assert.Empty(plan.Changes);
        SameTree(before, host.TreeImage());
    }

    [Fact]
    public void Ice_HashFieldsOnTheFourTuple_ApplyAndRevert_ButNotOnTheL3Protocol()
    {
        using var host = FixtureHost.TwoSocket();
        var ice = host.Read(SimulatedNicSettings.StatePath("eth1"));
        Assert.Contains("rss-size=2048", ice);
        var before = host.TreeImage();
        var engine = host.Engine();
        var applied = engine.Apply(Spec("eth1", Hash(("udp4", "sdfn"), ("sctp6", "sd"), ("tcp4", "tsd"))));
        Assert.Equal(("sd", KnobOutcome.Applied), (Knob(applied, "nic/eth1/rss/rx-flow-hash/sctp6").Value, Knob(applied, "nic/eth1/rss/rx-flow-hash/sctp6").Result));
        Assert.Equal(KnobOutcome.Applied, Knob(applied, "nic/eth1/rss/rx-flow-hash/udp4").Result);
        Assert.Equal(KnobOutcome.Skipped, Knob(applied, "nic/eth1/rss/rx-flow-hash/tcp4").Result);
        Assert.Empty(engine.PlanNow(Spec("eth1", Hash(("udp4", "sdfn"), ("sctp6", "sd")))).Plan.Changes);
        Assert.True(engine.Revert().Kind == RunKind.Reverted);
        SameTree(before, host.TreeImage());
    }
}
