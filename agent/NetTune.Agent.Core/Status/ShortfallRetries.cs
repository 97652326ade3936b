using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Journal;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

/// <summary>
/// Bounds the retries of a hugepages Shortfall. Each retry takes whatever memory the node's pods freed since the last
/// one, and the kubelet's allocatable memory does not shrink until it restarts, so a Shortfall retried at every drift
/// interval ratchets the pool up at the pods' expense. A knob that falls short is tried <see cref="MaxAttempts"/> times
/// for one spec generation (the apply and its retries), then left with the pages it got and reported; a new
/// generation starts from nothing. With a <see cref="JournalStore"/> the count lives in the journal beside the pool's
/// original, so an agent that restarts (or crash-loops) goes on counting instead of trying again from zero.
/// </summary>
public sealed class ShortfallRetries(JournalStore? store = null)
{
    private readonly Dictionary<string, int> _attempts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _givenUp = new(StringComparer.Ordinal);
    private long? _generation;

    public int MaxAttempts { get; init; } = 3;

    /// <summary>The knobs not to raise again for <paramref name="generation"/>, each with the message to report for it.</summary>
    public IReadOnlyDictionary<string, string> GivenUp(long generation)
    {
        Start(generation);
        return new Dictionary<string, string>(_givenUp, StringComparer.Ordinal);
    }

    /// <summary>Counts the shortfalls of one apply of <paramref name="generation"/>.</summary>
    public void Record(long generation, IEnumerable<KnobResult> results)
    {
        Start(generation);
        var counted = false;
        foreach (var r in results.Where(r => r.Result == KnobOutcome.Shortfall && !_givenUp.ContainsKey(r.Knob)))
        {
            counted = true;
            var tries = _attempts[r.Knob] = _attempts.GetValueOrDefault(r.Knob) + 1;
            if (tries >= MaxAttempts)
                _givenUp[r.Knob] = $"{r.Message}; not tried again: {tries} tries for generation {generation} fell short, and each " +
                    "retry would take memory the node's pods freed meanwhile; a changed spec tries again";
        }
        if (counted) Save(generation);
    }

    /// <summary>
    /// Whether the apply is worth another try at the next drift interval (<see cref="RunReport.Retry"/>), unless what
    /// failed is only pools given up on.
    /// </summary>
    public bool WorthRetrying(long generation, RunReport run)
    {
        Start(generation);
        var failed = run.Knobs.Where(k => k.Result is KnobOutcome.Failed or KnobOutcome.Shortfall).ToArray();
        return run.Retry && !(failed.Length > 0 && failed.All(k => _givenUp.ContainsKey(k.Knob)));
    }

    private void Start(long generation)
    {
        if (_generation == generation) return;
        _generation = generation;
        _attempts.Clear();
        _givenUp.Clear();
        // What an earlier process of this agent counted for this generation still counts.
        if (Load() is { } kept && kept.Generation == generation)
        {
            foreach (var (knob, tries) in kept.Attempts) _attempts[knob] = tries;
            foreach (var (knob, why) in kept.GivenUp) _givenUp[knob] = why;
        }
    }

    private ShortfallTries? Load()
    {
        try
        {
            return store?.Load().Shortfalls;
        }
        catch (JournalCorruptException)
        {
            return null; // the apply reports the damage; counting starts over
        }
    }

    /// <summary>Into the journal, which holds the short pool's original by now (journaled before the write).</summary>
    private void Save(long generation)
    {
        if (store is null) return;
        try
        {
            var journal = store.Load();
            if (journal.Entries.Count == 0) return; // nothing changed on the node, so nothing to ratchet
            store.Save(journal with
            {
                Shortfalls = new ShortfallTries(generation, new Dictionary<string, int>(_attempts, StringComparer.Ordinal), new Dictionary<string, string>(_givenUp, StringComparer.Ordinal)),
            });
        }
        catch (Exception e) when (e is JournalCorruptException or IOException or UnauthorizedAccessException)
        {
            // Counted in memory still; only a restart would start over.
        }
    }
}
