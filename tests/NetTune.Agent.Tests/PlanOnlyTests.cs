using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>--plan-only: the agent discovers and plans, but never writes to the host, whatever the NodeState asks.</summary>
public sealed class PlanOnlyTests
{
    private static TuningEngine PlanOnlyEngine(FixtureHost host) =>
        new(host.Fs, new SimulatedChannelControl(host.Fs), new JournalStore(host.JournalDir), planOnly: true);

    /// <summary>The host tree is byte-identical to <paramref name="before"/>, nothing was written, and no journal exists.</summary>
    private static void AssertUntouched(FixtureHost host, SortedDictionary<string, string> before)
    {
        TreeAssert.Same(before, host.TreeImage());
        Assert.Equal(0, host.Fs.WriteCount);
        Assert.False(File.Exists(Path.Join(host.JournalDir, JournalStore.FileName)));
    }

    [Fact]
    public void AnApplyIsPublishedAsADryRunAndTheTreeStaysByteIdentical()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var spec = Specs.Full();
        Assert.False(spec.DryRun);

        var report = PlanOnlyEngine(host).Apply(spec);
        Assert.True(report.Kind == RunKind.DryRun, report.Message);
        Assert.NotNull(report.Plan);
        Assert.NotEmpty(report.Plan!.Changes);
        Assert.Contains("--plan-only", report.Message);
        Assert.Equal(report.Plan.Changes.Count, StatusBuilder.Planned(report.Plan).Count);

        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 3, DateTime.UtcNow);
        var applied = conditions.Single(c => c.Type == ConditionTypes.Applied);
        Assert.Equal((ConditionStatus.False, ConditionReasons.DryRun), (applied.Status, applied.Reason));

        AssertUntouched(host, before);
    }

    [Fact]
    public void APreviewOfAnImpossibleRequestSaysWhyItPlansNothing()
    {
        // The request that was tried: 1,048,576 2 MiB pages per NUMA node on this 7.3 GiB VM.
        using var host = FixtureHost.ThisVm();
        var before = host.TreeImage();
        var spec = new NodeStateSpec { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 1048576 }] };
        const string reason = "refused on node 0: 1048576 × 2Mi = 2 TiB, more than maxNodeMemoryPercent 50% of the node's 7.3 GiB (3.7 GiB); left at 0";

        var report = PlanOnlyEngine(host).Apply(spec);
        Assert.Equal(RunKind.DryRun, report.Kind);
        Assert.Empty(report.Plan!.Changes);
        var knob = Assert.Single(report.Knobs);
        Assert.Equal(("hugepages/node0/2Mi", KnobOutcome.Failed, reason), (knob.Knob, knob.Result, knob.Message));
        Assert.Equal($"0 changes planned, none applied (the agent runs with --plan-only); 1 knobs not planned: hugepages/node0/2Mi: {reason}", report.Message);
        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 3, DateTime.UtcNow);
        Assert.Contains(reason, conditions.Single(c => c.Type == ConditionTypes.Applied).Message);

        // A spec's own dry run and the once command's preview say the same.
        var dryRun = host.Engine().Apply(new NodeStateSpec { NodeName = "n", DryRun = true, Hugepages = spec.Hugepages });
        Assert.Equal(reason, Assert.Single(dryRun.Knobs).Message);
        var (h, plan) = host.Engine().PlanNow(spec);
        Assert.Equal($"0 changes planned; 1 knobs not planned: hugepages/node0/2Mi: {reason}", TuningEngine.Preview(h, plan).Message);
        AssertUntouched(host, before);
    }

    [Fact]
    public void WithNothingJournaledARevertIsCompleteAsItStands()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        var engine = PlanOnlyEngine(host);
        Assert.Equal(RunKind.DryRun, engine.Apply(Specs.Full()).Kind);

        var report = engine.Revert();
        Assert.True(report.Kind == RunKind.Reverted, report.Message);
        Assert.Contains("nothing to restore", report.Message);
        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 4, DateTime.UtcNow);
        Assert.Equal(ConditionStatus.True, conditions.Single(c => c.Type == ConditionTypes.Reverted).Status);

        AssertUntouched(host, before);
    }

    [Fact]
    public void ARevertIsRefusedWithTheReasonAndJournaledOriginalsStayWhereTheyAre()
    {
        using var host = FixtureHost.TwoSocket();
        // A journal left by an earlier, writing agent: a plan-only agent must not act on it either.
        Assert.Equal(RunKind.Applied, host.Engine().Apply(Specs.Full()).Kind);
        var applied = host.TreeImage();
        var journal = File.ReadAllBytes(Path.Join(host.JournalDir, JournalStore.FileName));

        var report = PlanOnlyEngine(host).Revert();
        Assert.Equal(RunKind.RevertFailed, report.Kind);
        Assert.Contains("--plan-only", report.Message);
        Assert.Contains("left as they are", report.Message);
        var conditions = new List<k8s.Models.V1Condition>();
        StatusBuilder.ApplyConditions(conditions, report, 4, DateTime.UtcNow);
        var reverted = conditions.Single(c => c.Type == ConditionTypes.Reverted);
        Assert.Equal(ConditionStatus.False, reverted.Status);
        Assert.Equal(report.Message, reverted.Message);

        TreeAssert.Same(applied, host.TreeImage());
        Assert.Equal(journal, File.ReadAllBytes(Path.Join(host.JournalDir, JournalStore.FileName)));
    }
}
