using k8s.Models;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Status;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>irqbalance on the host is detected from its procfs and never fought; drift of any kind is backed off per knob.</summary>
public sealed class IrqBalanceTests
{
    /// <summary>irqbalance as systemd starts it on Debian (/usr/sbin/irqbalance --foreground $IRQBALANCE_ARGS), among other processes.</summary>
    private static void RunIrqBalance(FixtureHost host, params string[] args)
    {
        WriteProcess(host, 1, "/sbin/init");
        WriteProcess(host, 612, "/usr/sbin/irqbalance", ["--foreground", .. args]);
        WriteProcess(host, 700, "/usr/sbin/sshd", ["-D"]);
    }

    private static void WriteProcess(FixtureHost host, int pid, string exe, params string[] args)
    {
        Directory.CreateDirectory(Path.Join(host.Root, $"proc/{pid}"));
        host.Write($"proc/{pid}/comm", Path.GetFileName(exe));
        File.WriteAllText(Path.Join(host.Root, $"proc/{pid}/cmdline"), string.Join('\0', [exe, .. args]) + "\0");
    }

    [Fact]
    public void Discovery_FindsIrqBalance_AndTheIrqsItsCommandLineBans()
    {
        using var host = FixtureHost.TwoSocket();
        Assert.Null(host.Discover().IrqBalance);
        RunIrqBalance(host, "--banirq=101", "-i", "102", "-i103", "--banirq", "104");
        var ib = host.Discover().IrqBalance!;
        Assert.Equal(612, ib.Pid);
        Assert.Equal([101, 102, 103, 104], ib.BannedIrqs);
        Assert.StartsWith("/usr/sbin/irqbalance --foreground", ib.CommandLine);
    }

    [Fact]
    public void AOneShotIrqBalance_IsNoConflict()
    {
        using var host = FixtureHost.TwoSocket();
        RunIrqBalance(host, "--oneshot");
        Assert.Null(host.Discover().IrqBalance);
    }

    [Fact]
    public void WithIrqBalanceRunning_IrqsAreLeftAlone_WithAConditionSayingWhyAndHowToFixIt()
    {
        using var host = FixtureHost.TwoSocket();
        RunIrqBalance(host);
        var report = host.Engine().Apply(Specs.Full());
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal("0-31", host.Read("proc/irq/101/smp_affinity_list"));
        Assert.Equal("0-31", host.Read("proc/irq/41/smp_affinity_list"));
        var irq = report.Knobs.Single(k => k.Knob == "irq/101/affinity");
        Assert.Equal(KnobOutcome.Skipped, irq.Result);
        Assert.Contains("irqbalance (pid 612)", irq.Message);
        // The other knobs are the agent's as before.
        Assert.Equal("ff00ff00", host.Read("sys/class/net/eth1/queues/rx-3/rps_cpus"));
        Assert.Equal([41, 42, 43, 44, 45, 46, 47, 48, 101, 102, 103, 104], report.Plan!.IrqBalance!.UnbannedIrqs);

        var conditions = new List<V1Condition>();
        StatusBuilder.IrqAffinityCondition(conditions, report.Plan, 1, DateTime.UtcNow);
        var c = Assert.Single(conditions);
        Assert.Equal((IrqAffinityConditions.Type, ConditionStatus.False, IrqAffinityConditions.IrqBalanceRunning), (c.Type, c.Status, c.Reason));
        Assert.Contains("pid 612", c.Message);
        Assert.Contains("41,42,43,44,45,46,47,48,101,102,103,104", c.Message);
        Assert.Contains("--banirq", c.Message);
        Assert.Contains("systemctl disable --now irqbalance", c.Message);
        // Nothing to repair: an IRQ left to irqbalance is not drift, whatever irqbalance does with it.
        host.Write("proc/irq/101/smp_affinity_list", "5");
        Assert.DoesNotContain(host.Engine().PlanNow(Specs.Full()).Plan.Changes, k => k.Kind == NetTune.Agent.Core.Planning.KnobKind.IrqAffinity);
    }

    [Fact]
    public void IrqsIrqBalanceIsToldToLeaveAlone_AreStillPlaced()
    {
        using var host = FixtureHost.TwoSocket();
        RunIrqBalance(host, [.. Enumerable.Range(41, 8).Concat(Enumerable.Range(101, 4)).Select(i => $"--banirq={i}")]);
        var report = host.Engine().Apply(Specs.Full());
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Null(report.Plan!.IrqBalance);
        Assert.Equal("9", host.Read("proc/irq/101/smp_affinity_list"));
        var conditions = new List<V1Condition>();
        StatusBuilder.IrqAffinityCondition(conditions, report.Plan, 1, DateTime.UtcNow);
        Assert.Equal(ConditionStatus.True, Assert.Single(conditions).Status);
    }

    [Fact]
    public void IrqsLeftToIrqBalance_KeepTheirJournaledOriginals()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        RunIrqBalance(host); // started after the agent placed the IRQs
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        Assert.Equal("0-31", new NetTune.Agent.Core.Journal.JournalStore(host.JournalDir).Load().Find("irq/101/affinity")!.Original);
    }

    [Fact]
    public void Backoff_LeavesAKnobAloneAfterRepeatedDrift_LongerEachTime_AndRetriesOnceWhenItRunsOut()
    {
        var b = new DriftBackoff { RepairsBeforeBackoff = 3, FirstHold = TimeSpan.FromMinutes(1), MaxHold = TimeSpan.FromMinutes(10) };
        var t = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        Assert.Null(b.RecordDrift("sysctl/vm.swappiness", t));
        Assert.Null(b.RecordDrift("sysctl/vm.swappiness", t.AddSeconds(30)));
        Assert.Equal(t.AddSeconds(60 + 60), b.RecordDrift("sysctl/vm.swappiness", t.AddSeconds(60)));
        Assert.Equal(["sysctl/vm.swappiness"], b.Held(t.AddSeconds(90)).Keys);
        Assert.Null(b.RecordDrift("irq/101/affinity", t.AddSeconds(60)));
        Assert.Empty(b.TakeExpired(t.AddSeconds(119)));
        Assert.Equal(["sysctl/vm.swappiness"], b.TakeExpired(t.AddSeconds(120)));
        Assert.Empty(b.TakeExpired(t.AddSeconds(121)));
        Assert.Equal(t.AddSeconds(130 + 120), b.RecordDrift("sysctl/vm.swappiness", t.AddSeconds(130)));
        Assert.Equal(t.AddSeconds(300 + 240), b.RecordDrift("sysctl/vm.swappiness", t.AddSeconds(300)));
        Assert.Equal(t.AddSeconds(600 + 480), b.RecordDrift("sysctl/vm.swappiness", t.AddSeconds(600)));
        Assert.Equal(t.AddSeconds(1100 + 600), b.RecordDrift("sysctl/vm.swappiness", t.AddSeconds(1100)));
        // Quiet for longer than the longest hold: it starts again from nothing.
        Assert.Null(b.RecordDrift("sysctl/vm.swappiness", t.AddHours(2)));
    }

    [Fact]
    public void AHeldKnob_IsNotSetBack_AndSaysUntilWhen()
    {
        using var host = FixtureHost.ThisVm();
        var engine = host.Engine();
        var spec = new NodeStateSpec { NodeName = "n", Sysctls = new() { ["vm.swappiness"] = "10", ["net.core.somaxconn"] = "8192" } };
        Assert.Equal(RunKind.Applied, engine.Apply(spec).Kind);
        host.Write("proc/sys/vm/swappiness", "60");
        host.Write("proc/sys/net/core/somaxconn", "4096");
        var until = new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var report = engine.Apply(spec, hold: new Dictionary<string, DateTime> { ["sysctl/vm.swappiness"] = until });
        Assert.Equal("60", host.Read("proc/sys/vm/swappiness"));
        Assert.Equal("8192", host.Read("proc/sys/net/core/somaxconn"));
        var held = report.Knobs.Single(k => k.Knob == "sysctl/vm.swappiness");
        Assert.Equal(KnobOutcome.Skipped, held.Result);
        Assert.Contains("2030-01-01T00:00:00Z", held.Message);
    }
}
