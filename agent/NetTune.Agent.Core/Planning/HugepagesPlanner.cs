using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>Pages of each size on every NUMA node that has memory, with per-node overrides.</summary>
public static class HugepagesPlanner
{
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Plan(HostSnapshot host, IReadOnlyList<HugepagesSpec>? specs)
    {
        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        foreach (var spec in specs ?? [])
        {
            foreach (var node in host.NumaNodes.Where(n => n.MemoryBytes > 0))
            {
                var pages = spec.PerNumaNode?.FirstOrDefault(o => o.NumaNode == node.Id)?.Pages ?? spec.PagesPerNumaNode;
                var knob = $"hugepages/node{node.Id}/{spec.Size}";
                var pool = node.Hugepages.FirstOrDefault(p => p.Size == spec.Size);
                if (pool is null)
                {
                    notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"node {node.Id} has no {spec.Size} hugepage pool (the CPU or kernel does not offer that size)"));
                    continue;
                }
                knobs.Add(new DesiredKnob(knob, KnobKind.Hugepages, pool.Path, pool.Total.ToString(CultureInfo.InvariantCulture), pages.ToString(CultureInfo.InvariantCulture)));
            }
            foreach (var o in spec.PerNumaNode ?? [])
                if (host.Node(o.NumaNode) is null)
                    notes.Add(new PlanNote($"hugepages/node{o.NumaNode}/{spec.Size}", KnobOutcome.Skipped, $"this host has no NUMA node {o.NumaNode}"));
        }
        return (knobs, notes);
    }
}
