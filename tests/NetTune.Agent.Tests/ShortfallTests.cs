using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// A fixture root whose nr_hugepages files behave like the kernel's when memory is short: a write asks, the file then
/// holds what could be reserved. (On the shared test VM, a real shortfall would mean exhausting its memory.)
/// </summary>
public sealed class HugepagesLikeAKernelShortOfMemory(HostFileSystem inner, long available) : WriteInterceptingFileSystem(inner)
{
    /// <summary>The most pages a pool can hold: grows as the node's pods free memory.</summary>
    public long Available { get; set; } = available;

    public override HostIoResult Write(string path, string value)
    {
        if (path.EndsWith("/nr_hugepages", StringComparison.Ordinal) && long.TryParse(value, out var asked) && asked > Available)
            return Inner.Write(path, $"{Available}");
        return Inner.Write(path, value);
    }
}

public sealed class ShortfallTests
{
    [Fact]
    public void FewerPagesThanAsked_IsAShortfall_WithTheNumbers_AndDegradesTheRun()
    {
        using var host = FixtureHost.TwoSocket();
        var fs = new HugepagesLikeAKernelShortOfMemory(host.Fs, available: 300);
        var spec = new NodeStateSpec { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 200 }] }] };
        var report = host.Engine(fs).Apply(spec);
        Assert.Equal(RunKind.Failed, report.Kind);
        var node0 = report.Knobs.Single(k => k.Knob == "hugepages/node0/2Mi");
        Assert.Equal((KnobOutcome.Shortfall, "300"), (node0.Result, node0.Value));
        Assert.Equal("partial allocation: 300 of 512 pages (212 short): the kernel found 300 of the 512 pages asked in this step (memory too fragmented or in use)", node0.Message);
        Assert.Equal(KnobOutcome.Applied, report.Knobs.Single(k => k.Knob == "hugepages/node1/2Mi").Result);
        Assert.Equal(RunKind.Reverted, host.Engine().Revert().Kind);
        Assert.Equal("256", host.Read("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"));
    }

    [Fact]
    public void AShortfallIsTriedThreeTimesPerGeneration_ThenKeepsWhatItGot_RatherThanTakingWhatPodsFree()
    {
        using var host = FixtureHost.TwoSocket();
        var fs = new HugepagesLikeAKernelShortOfMemory(host.Fs, available: 300);
        var engine = host.Engine(fs);
        var spec = new NodeStateSpec { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512 }] };
        var retries = new ShortfallRetries();
        const string Node0 = "hugepages/node0/2Mi", Pool = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
        // As the agent's loop runs an apply: the pools given up on are held, the shortfalls counted.
        RunReport Run(long generation)
        {
            var report = engine.Apply(spec, givenUp: retries.GivenUp(generation));
            retries.Record(generation, report.Knobs);
            return report;
        }

        // Pods free 50 pages' worth of memory between drift intervals; each try takes it.
        for (var i = 0; i < 3; i++)
        {
            fs.Available = 300 + i * 50;
            var tried = Run(5);
            Assert.Equal((KnobOutcome.Shortfall, $"{fs.Available}"), (tried.Knobs.Single(k => k.Knob == Node0).Result, host.Read(Pool)));
            Assert.Equal(i < 2, retries.WorthRetrying(5, tried));
        }

        // The fourth run (a drift repair of some other knob, say) leaves the pool alone, whatever is free now.
        fs.Available = 500;
        var stopped = Run(5);
        Assert.Equal("400", host.Read(Pool));
        var knob = stopped.Knobs.Single(k => k.Knob == Node0);
        Assert.Equal((KnobOutcome.Shortfall, "400"), (knob.Result, knob.Value));
        Assert.StartsWith("partial allocation: 400 of 512 pages (112 short)", knob.Message);
        Assert.Contains("not tried again: 3 tries for generation 5 fell short", knob.Message);
        Assert.Equal(RunKind.Failed, stopped.Kind);
        Assert.False(retries.WorthRetrying(5, stopped));

        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, stopped, 5, DateTime.UtcNow);
        StatusBuilder.ShortfallConditions(conditions, stopped, retries.GivenUp(5), 5, DateTime.UtcNow);
        var degraded = conditions.Single(c => c.Type == ConditionTypes.Degraded);
        Assert.Equal((ConditionStatus.True, ConditionReasons.HugepagesShortfall), (degraded.Status, degraded.Reason));
        Assert.Contains($"{Node0}: partial allocation: 400 of 512", degraded.Message);
        Assert.Equal(ConditionReasons.HugepagesShortfall, conditions.Single(c => c.Type == ConditionTypes.Applied).Reason);

        // A changed spec starts over.
        fs.Available = 1024;
        var next = Run(6);
        Assert.Equal((KnobOutcome.Applied, "512"), (next.Knobs.Single(k => k.Knob == Node0).Result, host.Read(Pool)));
        Assert.Equal(RunKind.Reverted, host.Engine().Revert().Kind);
        Assert.Equal("256", host.Read(Pool));
    }

    [Fact]
    public void TheTriesSurviveAnAgentRestart_SoACrashLoopingAgentDoesNotRatchetThePoolForever()
    {
        using var host = FixtureHost.TwoSocket();
        var fs = new HugepagesLikeAKernelShortOfMemory(host.Fs, available: 300);
        var engine = host.Engine(fs);
        var spec = new NodeStateSpec { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512 }] };
        const string Node0 = "hugepages/node0/2Mi", Pool = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
        // Each run is a fresh agent process (a restart after every apply): only the journal carries the count over.
        RunReport RunInANewProcess(long generation)
        {
            var retries = new ShortfallRetries(new JournalStore(host.JournalDir));
            var report = engine.Apply(spec, givenUp: retries.GivenUp(generation));
            retries.Record(generation, report.Knobs);
            return report;
        }

        for (var i = 0; i < 3; i++)
        {
            fs.Available = 300 + i * 50;
            Assert.Equal(KnobOutcome.Shortfall, RunInANewProcess(5).Knobs.Single(k => k.Knob == Node0).Result);
        }
        fs.Available = 500;
        var fourth = RunInANewProcess(5);
        Assert.Equal("400", host.Read(Pool));
        Assert.Contains("not tried again: 3 tries for generation 5 fell short", fourth.Knobs.Single(k => k.Knob == Node0).Message);
        Assert.False(new ShortfallRetries(new JournalStore(host.JournalDir)).WorthRetrying(5, fourth));

        // A new generation starts over, in a new process too; the revert takes the count with the journal.
        fs.Available = 1024;
        Assert.Equal((KnobOutcome.Applied, "512"), (RunInANewProcess(6).Knobs.Single(k => k.Knob == Node0).Result, host.Read(Pool)));
        Assert.Equal(RunKind.Reverted, host.Engine().Revert().Kind);
        Assert.Equal("256", host.Read(Pool));
    }

    [Fact]
    public void OtherFailuresBesideAGivenUpShortfallAreStillRetried()
    {
        var retries = new ShortfallRetries { MaxAttempts = 1 };
        KnobResult[] knobs = [new() { Knob = "hugepages/node0/2Mi", Result = KnobOutcome.Shortfall, Message = "partial allocation" }];
        retries.Record(7, knobs);
        Assert.False(retries.WorthRetrying(7, new RunReport(RunKind.Failed, null, null, knobs, "")));
        Assert.True(retries.WorthRetrying(7, new RunReport(RunKind.Failed, null, null,
            [.. knobs, new() { Knob = "sysctl/net.core.somaxconn", Result = KnobOutcome.Failed, Message = "EPERM" }], "")));
        Assert.True(retries.WorthRetrying(7, new RunReport(RunKind.Failed, null, null, [], "cannot drop the previous boot's journal")));
        Assert.True(retries.WorthRetrying(8, new RunReport(RunKind.Failed, null, null, knobs, "")));
    }

    [Fact]
    public void QueueSettingsForChannelsThatFailed_AreSkipped_NotFailedAgain()
    {
        using var host = FixtureHost.TwoSocket();
        var spec = new NodeStateSpec
        {
            NodeName = "n",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth1"] }, Channels = new ChannelsSpec { Combined = 40 }, Rps = new RpsSpec { Enabled = true } },
        };
        var report = host.Engine().Apply(spec);
        Assert.Equal(KnobOutcome.Failed, report.Knobs.Single(k => k.Knob == "nic/eth1/channels").Result);
        Assert.Equal(KnobOutcome.Applied, report.Knobs.Single(k => k.Knob == "nic/eth1/rx-15/rps_cpus").Result);
        Assert.Equal(KnobOutcome.Skipped, report.Knobs.Single(k => k.Knob == "nic/eth1/rx-16/rps_cpus").Result);
        Assert.Single(report.Knobs, k => k.Result == KnobOutcome.Failed);
    }
}
