using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Journal;

namespace NetTune.Agent.Tests;

/// <summary>
/// The agent killed between any two steps of an apply: the next agent, starting from the journal on disk, either
/// completes the apply (same tree as an uninterrupted one) or reverts to the original tree byte for byte.
/// </summary>
public sealed class CrashTests
{
    private static readonly Lazy<(SortedDictionary<string, string> Before, SortedDictionary<string, string> After, int Writes)> Uninterrupted = new(RunUninterrupted);

    private static (SortedDictionary<string, string> Before, SortedDictionary<string, string> After, int Writes) Reference() => Uninterrupted.Value;

    private static (SortedDictionary<string, string> Before, SortedDictionary<string, string> After, int Writes) RunUninterrupted()
    {
        using var host = FixtureHost.TwoSocket();
        var before = host.TreeImage();
        Assert.Equal(RunKind.Applied, host.Engine().Apply(Specs.Full()).Kind);
        return (before, host.TreeImage(), (int)host.Fs.WriteCount);
    }

    public static IEnumerable<object[]> CrashPoints()
    {
        // Every write of the first phases (channels, queues) and a spread over the rest keeps the run short.
        var writes = Reference().Writes;
        for (var n = 1; n <= writes; n += n < 12 ? 1 : 7) yield return [n];
        yield return [writes];
    }

    [Theory]
    [MemberData(nameof(CrashPoints))]
    public void CrashBeforeWriteN_ThenRestart_CompletesOrRevertsConsistently(int crashBeforeWrite)
    {
        var reference = Reference();
        foreach (var thenRevert in new[] { false, true })
        {
            using var host = FixtureHost.TwoSocket();
            var crashing = new CrashingFileSystem(host.Fs, crashBeforeWrite);
            Assert.Throws<SimulatedCrash>(() => host.Engine(crashing).Apply(Specs.Full()));

            var restarted = host.Engine();
            if (thenRevert)
            {
                var r = restarted.Revert();
                Assert.True(r.Kind == RunKind.Reverted, r.Message);
                TreeAssert.Same(reference.Before, host.TreeImage());
            }
            else
            {
                var r = restarted.Apply(Specs.Full());
                Assert.True(r.Kind == RunKind.Applied, r.Message);
                TreeAssert.Same(reference.After, host.TreeImage());
                Assert.Equal(RunKind.Reverted, restarted.Revert().Kind);
                TreeAssert.Same(reference.Before, host.TreeImage());
            }
        }
    }

    [Theory]
    [InlineData("after-temp-write")]
    [InlineData("after-rename")]
    public void CrashInsideAJournalSave_LeavesTheOldOrTheNewJournal_NeverAMix(string point)
    {
        var reference = Reference();
        using var host = FixtureHost.TwoSocket();
        var saves = 0;
        var engine = host.Engine(journalFault: p =>
        {
            if (p == point && ++saves == 2) throw new SimulatedCrash(point);
        });
        Assert.Throws<SimulatedCrash>(() => engine.Apply(Specs.Full()));
        var store = new JournalStore(host.JournalDir);
        _ = store.Load(); // no JournalCorruptException: a stray temp file is ignored

        Assert.Equal(RunKind.Reverted, host.Engine().Revert().Kind);
        TreeAssert.Same(reference.Before, host.TreeImage());
    }
}
