using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// Leftovers of the NIC knobs: what a ring change resets is journaled and put back, a knob whose write keeps failing
/// is left alone on the drift back-off's schedule instead of being sent to the driver at every drift interval, and
/// metric series of NICs and queues that went are removed.
/// </summary>
public sealed class NicLeftoverTests
{
    private static NodeStateSpec Spec(string nic, RingsSpec? rings = null, int? txQueueLength = null) => new()
    {
        NodeName = "node-a",
        Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = [nic] }, Rings = rings, TxQueueLength = txQueueLength },
    };

    [Fact]
    public void Ena_ARingChangeResetsTheQueueInterrupts_TheyArePutBackAtOnce_AndTheRevertIsByteExact()
    {
        using var host = FixtureHost.DriverZoo();
        // ENA requests its IO vectors anew on a ring change, each on its default CPU. An admin had put them all on CPU 7.
        Directory.CreateDirectory(Path.Join(host.Root, ".fixture/driver"));
        host.Write(SimulatedDriver.StatePath("eth0"), "ring-resets-affinity=1\nirq-name=eth0-Tx-Rx-{q}\npci-dir=sys/devices/pci0000:00/0000:00:05.0");
        var irqs = host.Discover().Nics.Single(n => n.Name == "eth0").Irqs.Select(i => i.Irq).Distinct().ToArray();
        Assert.Equal(4, irqs.Length);
        foreach (var irq in irqs) host.Write($"proc/irq/{irq}/smp_affinity_list", "7");
        var before = host.TreeImage();
        var engine = host.Engine();

        var applied = engine.Apply(Spec("eth0", new RingsSpec { Rx = 2048 }));
        Assert.True(applied.Kind == RunKind.Applied, applied.Message);
        Assert.Equal("rx=2048", applied.Knobs.Single(k => k.Knob == "nic/eth0/rings").Value?.Split(',')[0]);
        // The driver's reset was undone at once, not left until the revert.
        Assert.All(irqs, irq => Assert.Equal("7", host.Read($"proc/irq/{irq}/smp_affinity_list")));

        var reverted = engine.Revert();
        Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
        // The ring revert reset the vectors again; the journaled originals put them back.
        Assert.All(irqs, irq => Assert.Equal("7", host.Read($"proc/irq/{irq}/smp_affinity_list")));
        Assert.Equal(before.Where(kv => !kv.Key.EndsWith("/smp_affinity", StringComparison.Ordinal) && !kv.Key.EndsWith("effective_affinity_list", StringComparison.Ordinal)),
            host.TreeImage().Where(kv => !kv.Key.EndsWith("/smp_affinity", StringComparison.Ordinal) && !kv.Key.EndsWith("effective_affinity_list", StringComparison.Ordinal)));
    }

    [Fact]
    public void AKnobTheDriverKeepsRefusing_IsRetriedThreeTimes_ThenLeftAloneForLongerAndLonger_UntilItSucceeds()
    {
        using var host = FixtureHost.Cpu256();
        var engine = host.Engine();
        var backoff = new FailureBackoff();
        // mlx5 refuses rings below 64 (EINVAL), whatever the planner could know from ethtool -g.
        var spec = Spec("ens1f0np0", new RingsSpec { Rx = 32 });
        var t = new DateTime(2026, 12, 7, 22, 0, 0, DateTimeKind.Utc);
        var writes = new List<bool>();
        for (var run = 0; run < 5; run++)
        {
            var now = t + TimeSpan.FromSeconds(30 * run);
            var held = backoff.Held(now);
            var report = engine.Apply(spec, failing: held);
            var rings = report.Knobs.Single(k => k.Knob == "nic/ens1f0np0/rings");
            Assert.Equal(KnobOutcome.Failed, rings.Result);
            writes.Add(!held.ContainsKey(rings.Knob));
            if (held.ContainsKey(rings.Knob)) Assert.Contains("not tried again until 2026-12-07T22:02:00Z: setting rx=32", rings.Message);
            if (held.ContainsKey(rings.Knob)) Assert.Contains("EINVAL", rings.Message);
            backoff.Record(report.Knobs, now);
        }
        // Tried at 0, 30 and 60 s; the third failure holds it for a minute (until 120 s): not at 90 s, again at 120 s.
        Assert.Equal([true, true, true, false, true], writes);
        Assert.True(backoff.Held(t + TimeSpan.FromSeconds(121)).ContainsKey("nic/ens1f0np0/rings"));
        Assert.Equal(t + TimeSpan.FromSeconds(240), backoff.Held(t + TimeSpan.FromSeconds(121))["nic/ens1f0np0/rings"].Until);

        // A spec the driver takes reaches its target, and the knob starts from nothing again.
        var ok = engine.Apply(Spec("ens1f0np0", new RingsSpec { Rx = 2048 }));
        backoff.Record(ok.Knobs, t + TimeSpan.FromSeconds(130));
        Assert.Empty(backoff.Held(t + TimeSpan.FromSeconds(131)));
        Assert.True(engine.Revert().Kind == RunKind.Reverted);
    }

    [Fact]
    public void AHeldFailingKnobIsNotWritten_TheOtherKnobsAre()
    {
        using var host = FixtureHost.Cpu256();
        var engine = host.Engine();
        var held = new Dictionary<string, FailureHold> { ["nic/ens1f0np0/txqueuelen"] = new(DateTime.UtcNow.AddMinutes(5), "EBUSY") };
        var report = engine.Apply(Spec("ens1f0np0", new RingsSpec { Rx = 2048 }, txQueueLength: 5000), failing: held);
        Assert.Equal(KnobOutcome.Failed, report.Knobs.Single(k => k.Knob == "nic/ens1f0np0/txqueuelen").Result);
        Assert.Equal("1000", host.Read("sys/class/net/ens1f0np0/tx_queue_len").Trim());
        Assert.Equal(KnobOutcome.Applied, report.Knobs.Single(k => k.Knob == "nic/ens1f0np0/rings").Result);
        Assert.True(engine.Revert().Kind == RunKind.Reverted);
    }

    [Fact]
    public void SeriesOfQueuesAChannelChangeTookAndOfANicThatWent_AreTheOnesToRemove()
    {
        using var host = FixtureHost.Cpu256();
        var counts = new PublishedSeries();
        var irqs = new PublishedSeries();
        var before = host.Discover();
        Assert.Empty(counts.Replace(PublishedSeries.QueueCounts(before)));
        Assert.Empty(irqs.Replace(PublishedSeries.QueueIrqs(before)));
        Assert.Empty(irqs.Replace(PublishedSeries.QueueIrqs(host.Discover())));

        // mlx5 frees its 63 completion vectors and requests 16 new ones: every old (irq, nic, queue) series goes.
        Assert.Equal(0, new SimulatedChannelControl(host.Fs).Set("ens1f0np0", new ChannelCounts(0, 0, 1, 16)));
        var after = host.Discover();
        var gone = irqs.Replace(PublishedSeries.QueueIrqs(after));
        Assert.Equal(before.Nics.Single().Irqs.Count, gone.Count);
        Assert.All(gone, g => Assert.DoesNotContain(after.Nics.Single().Irqs, i => $"{i.Irq}" == g[0]));
        Assert.Empty(counts.Replace(PublishedSeries.QueueCounts(after)));

        // The NIC goes: its queue counts go with it.
        File.Delete(Path.Join(host.Root, "sys/class/net/ens1f0np0"));
        var none = host.Discover();
        Assert.Empty(none.Nics);
        Assert.Equal([["ens1f0np0", "rx"], ["ens1f0np0", "tx"]], counts.Replace(PublishedSeries.QueueCounts(none)));
        Assert.Equal(16, irqs.Replace(PublishedSeries.QueueIrqs(none)).Count);
    }
}
