using k8s;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Merge;

/// <summary>What one NetworkTuning brings to one node.</summary>
public sealed record Contribution(string Name, long Generation, int Priority, bool DryRun, IReadOnlyDictionary<string, Knob> Knobs)
{
    /// <summary>The tuning's current spec: used for nodes its rollout has admitted.</summary>
    public static Contribution Current(NetworkTuning tuning) => new(
        tuning.Metadata.Name, tuning.Metadata.Generation ?? 0, tuning.Spec.Priority, tuning.Spec.Rollout?.DryRun == true,
        KnobSet.From(tuning.Spec));

    /// <summary>
    /// What the tuning contributed when the node last got it, read back from the node's spec: used while its rollout
    /// has not reached the node, so a node changes only when its turn comes. Null when the node never had it.
    /// </summary>
    public static Contribution? Frozen(NodeStateSpec? previous, string name, bool dryRun)
    {
        var source = previous?.Sources?.FirstOrDefault(s => s.Name == name);
        if (previous is null || source is null) return null;
        var all = KnobSet.From(previous);
        var won = new HashSet<string>(source.Knobs ?? [], StringComparer.Ordinal);
        var knobs = all.Where(kv => won.Contains(kv.Key)).ToDictionary(StringComparer.Ordinal);
        // A NIC setting keeps the interfaces it was applied to, even when another tuning won the selector itself.
        if (knobs.Values.Any(k => k.IsNic) && all.TryGetValue(Knob.NicInterfaces, out var interfaces))
            knobs[Knob.NicInterfaces] = interfaces;
        return new Contribution(name, source.Generation, source.Priority, dryRun, knobs);
    }
}

/// <param name="Knob">The knob two or more equal-priority tunings set to different values.</param>
/// <param name="Tunings">Those tunings, sorted by name.</param>
public sealed record KnobConflict(string Knob, IReadOnlyList<string> Tunings);

public sealed record MergeResult(NodeStateSpec Spec, IReadOnlyList<KnobConflict> Conflicts);

/// <summary>
/// Merges the tunings that select a node into that node's desired settings. Per knob the highest priority wins; two
/// tunings of equal (top) priority that set one knob to different values conflict, and the node keeps the value it
/// had. NIC settings of a tuning take part only when its interface selector is the one that won.
/// </summary>
public static class NodeSpecMerger
{
    public static MergeResult Merge(string nodeName, IReadOnlyList<Contribution> contributions, NodeStateSpec? previous)
    {
        var previousKnobs = previous is null ? new Dictionary<string, Knob>() : KnobSet.From(previous);
        var previousOwner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var source in previous?.Sources ?? [])
            foreach (var knob in source.Knobs ?? [])
                previousOwner.TryAdd(knob, source.Name);
        var names = contributions.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);

        var won = contributions.ToDictionary(c => c.Name, _ => new List<string>(), StringComparer.Ordinal);
        var result = new List<Knob>();
        var conflicts = new List<KnobConflict>();

        void Resolve(string id, IEnumerable<Contribution> candidates, Func<Knob, bool>? keepPrevious = null)
        {
            var setting = candidates.Where(c => c.Knobs.ContainsKey(id)).ToList();
            if (setting.Count == 0) return;
            var top = setting.Max(c => c.Priority);
            var leaders = setting.Where(c => c.Priority == top).OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
            if (leaders.Select(c => c.Knobs[id].Canonical).Distinct(StringComparer.Ordinal).Count() == 1)
            {
                result.Add(leaders[0].Knobs[id]);
                won[leaders[0].Name].Add(id);
                return;
            }
            conflicts.Add(new KnobConflict(id, leaders.Select(c => c.Name).ToList()));
            if (previousKnobs.TryGetValue(id, out var kept) && (keepPrevious is null || keepPrevious(kept)))
            {
                result.Add(kept);
                if (previousOwner.TryGetValue(id, out var owner) && names.Contains(owner)) won[owner].Add(id);
            }
        }

        var plainIds = contributions.SelectMany(c => c.Knobs.Keys).Where(id => !id.StartsWith("nic.", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        foreach (var id in plainIds) Resolve(id, contributions);

        Resolve(Knob.NicInterfaces, contributions);
        if (result.FirstOrDefault(k => k.Id == Knob.NicInterfaces) is { } interfaces)
        {
            var sameInterfaces = contributions.Where(c =>
                c.Knobs.TryGetValue(Knob.NicInterfaces, out var own) && own.Canonical == interfaces.Canonical).ToList();
            var previousInterfacesMatch = previousKnobs.TryGetValue(Knob.NicInterfaces, out var pi) && pi.Canonical == interfaces.Canonical;
            foreach (var id in Knob.NicSettings)
                Resolve(id, sameInterfaces, _ => previousInterfacesMatch);
            if (!result.Any(k => k.IsNic && k.Id != Knob.NicInterfaces))
            {
                result.Remove(interfaces);
                foreach (var list in won.Values) list.Remove(Knob.NicInterfaces);
            }
        }

        var spec = new NodeStateSpec
        {
            NodeName = nodeName,
            Revert = contributions.Count == 0,
            DryRun = contributions.Count > 0 && contributions.Any(c => c.DryRun),
            Sources = contributions.Count == 0
                ? null
                : contributions.OrderBy(c => c.Name, StringComparer.Ordinal).Select(c => new TuningSource
                {
                    Name = c.Name,
                    Generation = c.Generation,
                    Priority = c.Priority,
                    Knobs = won[c.Name].Count == 0 ? null : [.. won[c.Name].Order(StringComparer.Ordinal)],
                }).ToList(),
        };
        KnobSet.WriteTo(spec, result);
        // The budget was worked out for these hugepages; it is worked out anew (by the writer) only when they change.
        if (spec.Hugepages is { Count: > 0 } && previous?.HugepagesBudget is { } budget
            && KubernetesJson.Serialize(spec.Hugepages) == KubernetesJson.Serialize(previous.Hugepages))
            spec.HugepagesBudget = budget;
        return new MergeResult(spec, conflicts);
    }

    /// <summary>True when two specs ask the same of the node (so no write is needed).</summary>
    public static bool SameSpec(NodeStateSpec? a, NodeStateSpec? b) =>
        a is not null && b is not null && KubernetesJson.Serialize(a) == KubernetesJson.Serialize(b);
}
