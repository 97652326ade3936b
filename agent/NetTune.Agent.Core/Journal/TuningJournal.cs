using System.Text.Json.Serialization;
using NetTune.Agent.Core.Planning;

namespace NetTune.Agent.Core.Journal;

/// <summary>
/// The original value of one knob, recorded before the agent first changed it. <see cref="LostWithChannels"/> marks
/// the setting of a queue that the agent's channel change removed: it comes back only when the channels are reverted.
/// </summary>
public sealed record JournalEntry(
    [property: JsonPropertyName("knob")] string Knob,
    [property: JsonPropertyName("kind")] KnobKind Kind,
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("original")] string Original,
    [property: JsonPropertyName("identity")] string? Identity = null,
    [property: JsonPropertyName("lostWithChannels")] bool? LostWithChannels = null);

/// <summary>Every original value the agent must restore on revert, in the order they were recorded.</summary>
public sealed record TuningJournal([property: JsonPropertyName("entries")] IReadOnlyList<JournalEntry> Entries)
{
    public static readonly TuningJournal Empty = new([]);

    public bool Contains(string knob) => Entries.Any(e => e.Knob == knob);

    public JournalEntry? Find(string knob) => Entries.FirstOrDefault(e => e.Knob == knob);

    /// <summary>Adds entries for knobs not yet recorded; a recorded original is never replaced, it is the value before the agent's first change.</summary>
    public TuningJournal With(IEnumerable<JournalEntry> entries)
    {
        var list = Entries.ToList();
        foreach (var e in entries)
            if (!list.Any(x => x.Knob == e.Knob)) list.Add(e);
        return new TuningJournal(list);
    }

    public TuningJournal Without(IEnumerable<string> knobs)
    {
        var drop = knobs.ToHashSet(StringComparer.Ordinal);
        return new TuningJournal(Entries.Where(e => !drop.Contains(e.Knob)).ToArray());
    }
}
