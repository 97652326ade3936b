using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;

namespace NetTune.Operator.Core.Planning;

/// <summary>
/// How much memory hugepages may hold on a node without taking what the kubelet has given pods: the hugepages it
/// already counts (allocatable hugepages-*) plus its allocatable memory less what the node's pods request. A pool
/// raised beyond that takes memory that scheduled pods were promised, while the kubelet, whose allocatable memory
/// shrinks only when it restarts, goes on scheduling against it. Worked out when a node's hugepages change (not at
/// every pod change: each new budget would be a new generation, and with it a new round of Shortfall retries).
/// </summary>
public static class HugepagesBudgets
{
    /// <summary>Null when the node does not publish its allocatable memory (nothing to work from).</summary>
    /// <param name="pods">The pods bound to the node; finished ones (Succeeded, Failed) are left out.</param>
    public static HugepagesBudget? Of(V1Node node, IEnumerable<V1Pod> pods)
    {
        var allocatable = node.Status?.Allocatable;
        if (allocatable is null || !allocatable.TryGetValue("memory", out var memory)) return null;
        var hugepages = allocatable.Where(kv => kv.Key.StartsWith("hugepages-", StringComparison.Ordinal)).Sum(kv => Bytes(kv.Value));
        var running = pods.Where(PodRequests.Holds).ToList();
        var requested = running.Sum(p => (long)PodRequests.Of(p, "memory"));
        var free = Math.Max(0, Bytes(memory) - requested);
        return new HugepagesBudget
        {
            MaxBytes = Math.Min(hugepages + free, 1L << 50),
            Basis = $"allocatable memory {Format(Bytes(memory))} less {Format(requested)} requested by {running.Count} pods, plus {Format(hugepages)} of hugepages the kubelet counts already",
        };
    }

    private static long Bytes(ResourceQuantity q) => (long)q.ToDecimal();

    private static string Format(long bytes) =>
        bytes == 0 ? "0" : bytes % (1L << 30) == 0 ? $"{bytes >> 30}Gi" : bytes % (1L << 20) == 0 ? $"{bytes >> 20}Mi" : bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
