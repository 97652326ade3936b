using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>
/// Pages of each size on every NUMA node that has memory, with per-node overrides, capped three ways: what all sizes
/// together would take on a node must stay within maxNodeMemoryPercent of it; what they would take on the whole node
/// within the operator's budget (memory the kubelet has not given pods); and with the kubelet's Static Memory Manager
/// no pool changes at run time at all (its state check would keep the node NotReady after the next kubelet restart).
/// </summary>
public static class HugepagesPlanner
{
    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Plan(HostSnapshot host, IReadOnlyList<HugepagesSpec>? specs, HugepagesBudget? budget = null)
    {
        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        specs ??= [];
        var percent = specs.Count == 0 ? 0 : specs.Min(s => s.MaxNodeMemoryPercent);
        var planned = new List<(NumaNode Node, HugepagesSpec Spec, long Pages, HugepagePool Pool)>();
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
            planned.AddRange(wanted.Select(w => (node, w.Spec, w.Pages, w.Pool)));
        }

        if (host.KubeletMemoryManager.Static && planned.Any(p => p.Pages != p.Pool.Persistent))
        {
            var bootLine = BootCommandLine(planned.Select(p => (p.Node.Id, p.Spec.Size, p.Pages)));
            foreach (var p in planned)
            {
                if (p.Pages == p.Pool.Persistent) knobs.Add(Desired(p.Node, p.Spec, p.Pages, p.Pool));
                else notes.Add(new PlanNote(Knob(p.Node, p.Spec), KnobOutcome.Failed,
                    $"{MemoryManagerRefusal}: the kubelet's Memory Manager runs the Static policy ({host.KubeletMemoryManager.Source}), and a kubelet " +
                    $"restart after a pool changes fails its state check (the node stays NotReady until memory_manager_state is removed); left at {p.Pool.Persistent} " +
                    $"of {p.Pages}. Reserve the pages at boot on the kernel command line: {bootLine} (the per-NUMA-node form needs Linux 5.16 or later), then reboot"));
            }
            return (knobs, [.. notes, .. OverridesOfMissingNodes(host, specs)]);
        }

        // The whole node against the operator's budget; a plan that takes no more than the pools hold now is never refused.
        var targets = planned.GroupBy(p => (p.Node.Id, p.Pool.Size)).ToDictionary(g => g.Key, g => g.First().Pages);
        var after = host.NumaNodes.SelectMany(n => n.Hugepages.Select(pool =>
            (targets.TryGetValue((n.Id, pool.Size), out var pages) ? pages : pool.Persistent) * pool.SizeKb * 1024)).Sum();
        var now = host.NumaNodes.SelectMany(n => n.Hugepages).Sum(pool => pool.Persistent * pool.SizeKb * 1024);
        if (budget is not null && after > budget.MaxBytes && after > now)
        {
            foreach (var p in planned)
                notes.Add(new PlanNote(Knob(p.Node, p.Spec), KnobOutcome.Failed,
                    $"{BudgetRefusal}: hugepages would hold {Bytes(after)} on this node, more than its budget of {Bytes(budget.MaxBytes)}" +
                    $"{(budget.Basis is { Length: > 0 } basis ? $" ({basis})" : "")}: the rest is memory the kubelet has given pods; left at {p.Pool.Persistent} of {p.Pages}"));
            return (knobs, [.. notes, .. OverridesOfMissingNodes(host, specs)]);
        }
        knobs.AddRange(planned.Select(p => Desired(p.Node, p.Spec, p.Pages, p.Pool)));
        return (knobs, [.. notes, .. OverridesOfMissingNodes(host, specs)]);
    }

    /// <summary>The start of the message of a pool refused because the kubelet's Memory Manager is Static.</summary>
    public const string MemoryManagerRefusal = "not changed at run time";

    /// <summary>The start of the message of a pool refused for the node's hugepages budget.</summary>
    public const string BudgetRefusal = "refused for the node's hugepages budget";

    /// <summary>
    /// The kernel command line that reserves these pools at boot: <c>hugepagesz=2M hugepages=0:512,1:512</c> per size
    /// (the node form, Linux 5.16+), or the plain count when every node gets the same.
    /// </summary>
    public static string BootCommandLine(IEnumerable<(int Node, string Size, long Pages)> pools) =>
        string.Join(" ", pools.GroupBy(p => p.Size, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g =>
            $"hugepagesz={g.Key.TrimEnd('i')} hugepages={string.Join(",", g.OrderBy(p => p.Node).Select(p => $"{p.Node}:{p.Pages}"))}"));

    private static DesiredKnob Desired(NumaNode node, HugepagesSpec spec, long pages, HugepagePool pool) =>
        new(Knob(node, spec), KnobKind.Hugepages, pool.Path, pool.Persistent.ToString(CultureInfo.InvariantCulture), pages.ToString(CultureInfo.InvariantCulture));

    private static IEnumerable<PlanNote> OverridesOfMissingNodes(HostSnapshot host, IReadOnlyList<HugepagesSpec> specs) =>
        from spec in specs
        from o in spec.PerNumaNode ?? []
        where host.Node(o.NumaNode) is null
        select new PlanNote($"hugepages/node{o.NumaNode}/{spec.Size}", KnobOutcome.Skipped, $"this host has no NUMA node {o.NumaNode}");

    private static string Knob(NumaNode node, HugepagesSpec spec) => $"hugepages/node{node.Id}/{spec.Size}";

    public static string Bytes(long bytes) =>
        bytes >= 1L << 40 ? $"{(bytes / (double)(1L << 40)).ToString("0.#", CultureInfo.InvariantCulture)} TiB"
        : bytes >= 1L << 30 ? $"{(bytes / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture)} GiB" : $"{bytes >> 20} MiB";
}
