using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Selection;

namespace NetTune.Operator.Core.Merge;

/// <param name="Knob">The knob both set.</param>
/// <param name="Other">The other NetworkTuning.</param>
public sealed record TuningConflict(string Knob, string Other);

/// <summary>
/// Finds the equal-priority tunings that select a common node and set a knob to a different value. Both sides compute
/// the same answer, so each gets a Conflict condition naming the other.
/// </summary>
public static class ConflictDetector
{
    public static IReadOnlyList<TuningConflict> Find(NetworkTuning tuning, IEnumerable<NetworkTuning> all, IReadOnlyList<V1Node> nodes)
    {
        var mine = KnobSet.From(tuning.Spec);
        var conflicts = new List<TuningConflict>();
        if (mine.Count == 0) return conflicts;
        foreach (var other in all.OrderBy(t => t.Metadata.Name, StringComparer.Ordinal))
        {
            if (other.Metadata.Name == tuning.Metadata.Name || other.Metadata.DeletionTimestamp is not null) continue;
            if (other.Spec.Priority != tuning.Spec.Priority) continue;
            var theirs = KnobSet.From(other.Spec);
            var clashing = mine.Where(kv => theirs.TryGetValue(kv.Key, out var t) && t.Canonical != kv.Value.Canonical)
                .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
            if (clashing.Count == 0) continue;
            var overlap = nodes.Any(n => NodeSelection.Selects(tuning.Spec, n) && NodeSelection.Selects(other.Spec, n));
            if (!overlap) continue;
            conflicts.AddRange(clashing.Select(k => new TuningConflict(k, other.Metadata.Name)));
        }
        return conflicts;
    }
}
