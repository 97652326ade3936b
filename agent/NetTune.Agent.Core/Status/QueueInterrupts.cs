using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

/// <summary>How many interrupts one NIC queue has had (all its vectors, all CPUs) and the CPU its first vector is on.</summary>
public sealed record QueueInterruptCount(string Nic, int Queue, int? Cpu, long Interrupts);

/// <summary>
/// Per-queue interrupt counts for the metrics: one entry per queue of each discovered NIC, not one per vector per CPU,
/// so the series stay bounded by the queues however many CPUs and devices the node has.
/// </summary>
public static class QueueInterrupts
{
    /// <summary>Each IRQ's count summed over the CPUs, from the text of /proc/interrupts.</summary>
    public static IReadOnlyDictionary<int, long> Parse(string? procInterrupts)
    {
        var counts = new Dictionary<int, long>();
        if (procInterrupts is null) return counts;
        var lines = procInterrupts.Split('\n');
        if (lines.Length == 0) return counts;
        var cpus = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon < 0 || !int.TryParse(line.AsSpan(0, colon).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var irq)) continue;
            long sum = 0;
            var columns = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (var c = 0; c < Math.Min(cpus, columns.Length); c++)
                if (long.TryParse(columns[c], NumberStyles.None, CultureInfo.InvariantCulture, out var n)) sum += n;
            counts[irq] = sum;
        }
        return counts;
    }

    public static IReadOnlyList<QueueInterruptCount> Of(HostSnapshot host, IReadOnlyDictionary<int, long> counts) =>
        host.Nics.SelectMany(nic => nic.Irqs.GroupBy(i => i.Queue).OrderBy(g => g.Key).Select(g =>
        {
            var first = g.OrderBy(i => i.Irq).First();
            int? cpu = CpuList.TryParse(first.AffinityList, out var l) && l.Count > 0 ? l[0] : null;
            return new QueueInterruptCount(nic.Name, g.Key, cpu, g.Sum(i => counts.GetValueOrDefault(i.Irq)));
        })).ToArray();
}
