using k8s.Models;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>Answers what it is told to; counts how often it was asked.</summary>
public sealed class ScriptedConnectivity(params bool[] answers) : IConnectivityCheck
{
    public int Calls { get; private set; }

    public (bool Reachable, string Detail) WaitUntilReachable(TimeSpan bound)
    {
        var reachable = answers[Math.Min(Calls, answers.Length - 1)];
        Calls++;
        return (reachable, reachable ? "https://10.0.0.1:6443 answered v1.20.2" : "https://10.0.0.1:6443: No route to host");
    }
}

/// <summary>Item 1 of issue 12: NIC changes that cut the node off from the API server undo themselves from the journal.</summary>
public sealed class ConnectivityRollbackTests
{
    internal static TuningEngine Engine(FixtureHost host, IConnectivityCheck check) =>
        new(host.Fs, new SimulatedChannelControl(host.Fs), new JournalStore(host.JournalDir)) { Connectivity = check, ConnectivityBound = TimeSpan.FromSeconds(45) };

    [Fact]
    public void NicChangesThatCutTheNodeOff_AreRolledBackFromTheJournal_HugepagesAndSysctlsStay()
    {
        using var host = FixtureHost.TwoSocket();
        var original = NicFiles(host);
        var check = new ScriptedConnectivity(true, false, true);
        var report = Engine(host, check).Apply(Specs.Full());

        Assert.Equal(RunKind.RolledBack, report.Kind);
        Assert.Equal(3, check.Calls); // before the NIC changes, after them, after the rollback
        Assert.False(report.Retry); // answering again without the changes convicts them
        Assert.StartsWith("the API server was unreachable for 45 s after ", report.Message);
        Assert.Contains("(https://10.0.0.1:6443: No route to host); rolled them back from the journal", report.Message);
        Assert.Contains("the API server is reachable again", report.Message);
        // Channels, the queue settings they took (rx-12's rps_cpus among them) and IRQs are back, byte for byte.
        TreeAssert.Same(original, NicFiles(host));
        Assert.Equal(KnobOutcome.Reverted, report.Knobs.Single(k => k.Knob == "nic/eth1/channels").Result);
        Assert.Equal(KnobOutcome.Reverted, report.Knobs.Single(k => k.Knob == "irq/101/affinity").Result);
        // Hugepages and sysctls cannot cut the node off: they stay, with their originals journaled.
        Assert.Equal("65535", host.Read("proc/sys/net/core/somaxconn"));
        var journal = new JournalStore(host.JournalDir).Load();
        Assert.All(journal.Entries, e => Assert.True(e.Kind is Core.Planning.KnobKind.Hugepages or Core.Planning.KnobKind.Sysctl, e.Knob));
        Assert.Contains(journal.Entries, e => e.Knob == "sysctl/net.core.somaxconn");

        var conditions = new List<V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 3, DateTime.UtcNow);
        Assert.Equal((ConditionStatus.False, ConditionReasons.RolledBack), (conditions.Single(c => c.Type == ConditionTypes.Applied).Status, conditions.Single(c => c.Type == ConditionTypes.Applied).Reason));
        Assert.Equal(ConditionStatus.True, conditions.Single(c => c.Type == ConditionTypes.Degraded).Status);
    }

    /// <summary>Channels, queue folders and IRQ affinities: what a NIC change touches.</summary>
    internal static SortedDictionary<string, string> NicFiles(FixtureHost host) =>
        new(host.TreeImage().Where(kv => kv.Key.StartsWith(".fixture/", StringComparison.Ordinal) || kv.Key.Contains("/queues/", StringComparison.Ordinal)
            || kv.Key.StartsWith("proc/irq/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);

    [Fact]
    public void WhenTheApiServerStaysReachable_TheRunCompletes_AndWithoutNicChangesNobodyIsAsked()
    {
        using var host = FixtureHost.TwoSocket();
        var check = new ScriptedConnectivity(true);
        Assert.Equal(RunKind.Applied, Engine(host, check).Apply(Specs.Full()).Kind);
        Assert.Equal(2, check.Calls); // before and after the NIC changes
        Assert.Equal("65535", host.Read("proc/sys/net/core/somaxconn"));

        using var other = FixtureHost.TwoSocket();
        var quiet = new ScriptedConnectivity(false);
        Assert.Equal(RunKind.Applied, Engine(other, quiet).Apply(new NodeStateSpec { NodeName = "n", Sysctls = new() { ["vm.swappiness"] = "10" } }).Kind);
        Assert.Equal(0, quiet.Calls);
    }
}

/// <summary>
/// Issue 20 item 6: an API server that is down whatever the NIC changes do (before them, or still after they are
/// rolled back) is not the changes' doing: they are held back or made again once it answers, never given up on.
/// </summary>
public sealed class ApiServerOutageTests
{
    private static TuningEngine Engine(FixtureHost host, IConnectivityCheck check) => ConnectivityRollbackTests.Engine(host, check);

    private static SortedDictionary<string, string> NicFiles(FixtureHost host) => ConnectivityRollbackTests.NicFiles(host);

    [Fact]
    public void DownBeforeTheChange_NicKnobsWait_TheRestIsApplied_AndTheRunIsRetried()
    {
        using var host = FixtureHost.TwoSocket();
        var nicFiles = NicFiles(host);
        var check = new ScriptedConnectivity(false);
        var report = Engine(host, check).Apply(Specs.Full());

        Assert.Equal(RunKind.Failed, report.Kind);
        Assert.True(report.ApiServerOutage);
        Assert.True(report.Retry);
        Assert.Equal(1, check.Calls); // nothing written to the NICs, so nothing to check after
        Assert.Contains("did not answer before the NIC changes (https://10.0.0.1:6443: No route to host)", report.Message);
        TreeAssert.Same(nicFiles, NicFiles(host));
        var channels = report.Knobs.Single(k => k.Knob == "nic/eth1/channels");
        Assert.Equal(KnobOutcome.Failed, channels.Result);
        Assert.StartsWith("not changed yet: the API server did not answer before the change", channels.Message);
        Assert.Equal("65535", host.Read("proc/sys/net/core/somaxconn"));

        // It answers again: the next run makes the NIC changes.
        var again = Engine(host, new ScriptedConnectivity(true)).Apply(Specs.Full());
        Assert.True(again.Kind == RunKind.Applied, again.Message);
        Assert.Equal("9", host.Read("proc/irq/101/smp_affinity_list"));
    }

    [Fact]
    public void DownAfterTheChange_AndStillAfterTheRollback_IsNotTakenForTheChangesDoing()
    {
        using var host = FixtureHost.TwoSocket();
        var report = Engine(host, new ScriptedConnectivity(true, false, false)).Apply(Specs.Full());
        Assert.Equal(RunKind.RolledBack, report.Kind);
        Assert.True(report.ApiServerOutage);
        Assert.True(report.Retry);
        Assert.Contains("still unreachable without them", report.Message);
        Assert.Contains("made again once it answers", report.Message);
    }
}

public sealed class KubeletHugepagesTests
{
    [Fact]
    public void TheNodesCapacity_IsComparedWithTheKernelsPools_ForTheSizesTheSpecManages()
    {
        using var host = FixtureHost.TwoSocket(); // 2Mi: 256 + 0 pages; 1Gi: 0 + 2 pages
        var snap = host.Discover();
        HugepagesSpec[] specs = [new() { Size = "2Mi", PagesPerNumaNode = 256 }];
        var stale = KubeletHugepages.Compare(snap, specs, new Dictionary<string, ResourceQuantity> { ["hugepages-2Mi"] = new("0"), ["hugepages-1Gi"] = new("0") },
            new Dictionary<string, ResourceQuantity> { ["hugepages-2Mi"] = new("0") });
        Assert.Equal(KubeletHugepagesState.RestartRequired, stale.State);
        Assert.StartsWith("the kernel holds 256 pages (512Mi) of hugepages-2Mi, the node's capacity says 0 and allocatable 0.", stale.Message);

        var seen = KubeletHugepages.Compare(snap, specs, new Dictionary<string, ResourceQuantity> { ["hugepages-2Mi"] = new("512Mi") }, null);
        Assert.Equal(KubeletHugepagesState.Visible, seen.State);
        Assert.Equal(KubeletHugepagesState.Unknown, KubeletHugepages.Compare(snap, specs, null, null, "nodes \"x\" is forbidden").State);
    }
}
