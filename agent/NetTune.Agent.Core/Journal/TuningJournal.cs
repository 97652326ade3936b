using System.Text.Json.Serialization;
using NetTune.Agent.Core.Planning;

namespace NetTune.Agent.Core.Journal;

/// <summary>
/// The original value of one knob, recorded before the agent first changed it. <see cref="Nic"/> names the NIC a
/// queue or IRQ setting belongs to. Settings read just before the agent changed that NIC's channels or rings carry
/// <see cref="BeforeChannels"/>: drivers such as mlx5 reset every queue setting and IRQ affinity on a channel change,
/// and ENA its queue IRQs' affinity on a ring change, so these values are what a channel or ring revert must restore. <see cref="LostWithChannels"/> marks the setting of a queue
/// (or IRQ) that the channel change removed: it comes back only when the channels are reverted.
/// </summary>
public sealed record JournalEntry(
    [property: JsonPropertyName("knob")] string Knob,
    [property: JsonPropertyName("kind")] KnobKind Kind,
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("original")] string Original,
    [property: JsonPropertyName("identity")] string? Identity = null,
    [property: JsonPropertyName("lostWithChannels")] bool? LostWithChannels = null,
    [property: JsonPropertyName("nic")] string? Nic = null,
    [property: JsonPropertyName("beforeChannels")] bool? BeforeChannels = null)
{
    /// <summary>What identifies the knob across runs: an IRQ by its action name (numbers change when drivers reallocate vectors), anything else by knob.</summary>
    [JsonIgnore]
    public string Key => JournalKeys.Of(Kind, Knob, Identity);
}

public static class JournalKeys
{
    public static string Of(KnobKind kind, string knob, string? identity) =>
        kind == KnobKind.IrqAffinity && identity is not null ? $"irq-name/{identity}" : knob;

    public static string Of(DesiredKnob d) => Of(d.Kind, d.Knob, d.Identity);
}

/// <summary>
/// Every original value the agent must restore on revert, in the order they were recorded, and the boots they belong
/// to: <see cref="BootId"/> is the boot of the last save, <see cref="AppliedBootId"/> the boot in which the last apply
/// succeeded (null after a failed one). No knob survives a reboot: each is back at the value its boot began with, so
/// a journal from another boot holds nothing to restore. The first apply of a new boot drops it and records that
/// boot's values as the originals; a revert in a boot that was never tuned restores nothing.
/// </summary>
public sealed record TuningJournal([property: JsonPropertyName("entries")] IReadOnlyList<JournalEntry> Entries)
{
    /// <summary>
    /// 1: entries only. 2: boot ids, and the nic / beforeChannels entry fields (later also the optional shortfalls).
    /// Changes are additive (new optional fields), so an older agent reads a newer journal, ignoring what it does not know.
    /// </summary>
    public const int CurrentFormat = 2;

    public static readonly TuningJournal Empty = new([]) { FormatVersion = CurrentFormat };

    /// <summary>The body's format; null in journals written before formats were numbered (format 1).</summary>
    [JsonPropertyName("formatVersion")]
    public int? FormatVersion { get; init; }

    [JsonPropertyName("bootId")]
    public string? BootId { get; init; }

    [JsonPropertyName("appliedBootId")]
    public string? AppliedBootId { get; init; }

    /// <summary>The hugepages Shortfall tries of the current spec generation (see Status.ShortfallRetries): kept here so an agent restart does not start the count over.</summary>
    [JsonPropertyName("shortfalls")]
    public ShortfallTries? Shortfalls { get; init; }

    /// <summary>
    /// The hugepage pools the last successful apply of <see cref="BootId"/> reserved at run time: gone with a reboot, and
    /// reserved again early in the next boot's agent start (before the kubelet is asked to restart for them), so the
    /// data-plane pods bound to the node pass the kubelet's admission again without waiting for the API server.
    /// </summary>
    [JsonPropertyName("reservedHugepages")]
    public IReadOnlyList<ReservedHugepages>? ReservedHugepages { get; init; }

    /// <summary>Whether an original is recorded under this key (<see cref="JournalEntry.Key"/>).</summary>
    public bool Contains(string key) => Entries.Any(e => e.Key == key);

    public JournalEntry? Find(string knob) => Entries.FirstOrDefault(e => e.Knob == knob);

    /// <summary>Adds entries for knobs not yet recorded; a recorded original is never replaced, it is the value before the agent's first change.</summary>
    public TuningJournal With(IEnumerable<JournalEntry> entries)
    {
        var list = Entries.ToList();
        foreach (var e in entries)
            if (!list.Any(x => x.Key == e.Key)) list.Add(e);
        return this with { Entries = list };
    }

    /// <summary>The journal less the entries with these keys.</summary>
    public TuningJournal Without(IEnumerable<string> keys)
    {
        var drop = keys.ToHashSet(StringComparer.Ordinal);
        return this with { Entries = Entries.Where(e => !drop.Contains(e.Key)).ToArray() };
    }
}

/// <summary>How often each hugepage pool fell short for one spec generation, and the pools given up on with their messages.</summary>
public sealed record ShortfallTries(
    [property: JsonPropertyName("generation")] long Generation,
    [property: JsonPropertyName("attempts")] IReadOnlyDictionary<string, int> Attempts,
    [property: JsonPropertyName("givenUp")] IReadOnlyDictionary<string, string> GivenUp);

/// <summary>One hugepage pool an apply reserved: its knob, its nr_hugepages file and the pages.</summary>
public sealed record ReservedHugepages(
    [property: JsonPropertyName("knob")] string Knob,
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("pages")] string Pages);
