using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// Pages of each size on every NUMA node that has memory, with per-node overrides, capped by the node's memory: what
/// all sizes together would take on a node must stay within maxNodeMemoryPercent of it, or nothing is planned there.
/// </summary>
public static class HugepagesPlanner
{
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Plan(HostSnapshot host, IReadOnlyList<HugepagesSpec>? specs)
    {
        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        specs ??= [];
        var percent = specs.Count == 0 ? 0 : specs.Min(s => s.MaxNodeMemoryPercent);
        foreach (var node in host.NumaNodes.Where(n => n.MemoryBytes > 0))
        {
            var wanted = new List<(HugepagesSpec Spec, long Pages, HugepagePool Pool)>();
            foreach (var spec in specs)
            {
                var pages = spec.PerNumaNode?.FirstOrDefault(o => o.NumaNode == node.Id)?.Pages ?? spec.PagesPerNumaNode;
                var pool = node.Hugepages.FirstOrDefault(p => p.Size == spec.Size);
                if (pool is null)
                {
                    notes.Add(new PlanNote(Knob(node, spec), KnobOutcome.Failed, $"node {node.Id} has no {spec.Size} hugepage pool (the CPU or kernel does not offer that size)"));
                    continue;
                }
                wanted.Add((spec, pages, pool));
            }
            var bytes = wanted.Sum(w => w.Pages * w.Pool.SizeKb * 1024);
            var cap = node.MemoryBytes * percent / 100;
            if (bytes > cap)
            {
                var what = string.Join(" and ", wanted.Select(w => $"{w.Pages} × {w.Spec.Size}"));
                foreach (var w in wanted)
                    notes.Add(new PlanNote(Knob(node, w.Spec), KnobOutcome.Failed,
                        $"refused on node {node.Id}: {what} = {Bytes(bytes)}, more than maxNodeMemoryPercent {percent}% of the node's {Bytes(node.MemoryBytes)} ({Bytes(cap)}); left at {w.Pool.Persistent}"));
                continue;
            }
            foreach (var w in wanted)
                knobs.Add(new DesiredKnob(Knob(node, w.Spec), KnobKind.Hugepages, w.Pool.Path,
                    w.Pool.Persistent.ToString(CultureInfo.InvariantCulture), w.Pages.ToString(CultureInfo.InvariantCulture)));
        }
        foreach (var spec in specs)
            foreach (var o in spec.PerNumaNode ?? [])
                if (host.Node(o.NumaNode) is null)
                    notes.Add(new PlanNote($"hugepages/node{o.NumaNode}/{spec.Size}", KnobOutcome.Skipped, $"this host has no NUMA node {o.NumaNode}"));
        return (knobs, notes);
    }

    private static string Knob(NumaNode node, HugepagesSpec spec) => $"hugepages/node{node.Id}/{spec.Size}";

    public static string Bytes(long bytes) =>
        bytes >= 1L << 40 ? $"{(bytes / (double)(1L << 40)).ToString("0.#", CultureInfo.InvariantCulture)} TiB"
        : bytes >= 1L << 30 ? $"{(bytes / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture)} GiB" : $"{bytes >> 20} MiB";
}
