using System.Globalization;
using k8s.Models;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

public enum KubeletHugepagesState { Visible, RestartRequired, RestartFailed, Unknown }

/// <summary>What the kubelet shows of the kernel's hugepages, and the message for the KubeletRestartRequired condition.</summary>
public sealed record KubeletHugepagesCheck(KubeletHugepagesState State, string Message, string Signature);

/// <summary>
/// The kubelet reads hugepage capacity once, when it starts (kubernetes#111757): pages the agent reserves later are
/// in the kernel but not in the node's capacity, so pods asking for them stay Pending. This compares the two.
/// </summary>
public static class KubeletHugepages
{
    /// <param name="capacity">status.capacity of the node; null when the node could not be read.</param>
    public static KubeletHugepagesCheck Compare(HostSnapshot host, IReadOnlyList<HugepagesSpec> specs,
        IDictionary<string, ResourceQuantity>? capacity, IDictionary<string, ResourceQuantity>? allocatable, string? nodeError = null)
    {
        var sizes = specs.Select(s => s.Size).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var kernel = sizes.Select(size =>
        {
            var pools = host.NumaNodes.SelectMany(n => n.Hugepages).Where(p => p.Size == size).ToArray();
            var pages = pools.Sum(p => p.Total);
            return (Resource: $"hugepages-{size}", Pages: pages, Bytes: pages * (pools.FirstOrDefault()?.SizeKb ?? 0) * 1024);
        }).ToArray();
        var signature = string.Join(",", kernel.Select(k => $"{k.Resource}={k.Bytes}"));
        if (capacity is null)
            return new(KubeletHugepagesState.Unknown, $"cannot read this node's capacity ({nodeError ?? "no status"}); whether pods can get the hugepages is unknown", signature);
        var gaps = new List<string>();
        var seen = new List<string>();
        foreach (var (resource, pages, bytes) in kernel)
        {
            var cap = Bytes(capacity, resource);
            var alloc = allocatable is null ? null : Bytes(allocatable, resource);
            // A node that never had a pool of this size lists none; nothing in the kernel either is no gap.
            if (cap != bytes && !(bytes == 0 && cap is null))
                gaps.Add($"the kernel holds {pages} pages ({Format(bytes)}) of {resource}, the node's capacity says {Format(cap)} and allocatable {Format(alloc)}");
            else
                seen.Add($"{resource} {Format(bytes)} ({pages} pages; allocatable {Format(alloc)})");
        }
        return gaps.Count == 0
            ? new(KubeletHugepagesState.Visible, "the node's capacity shows the kernel's hugepages: " + string.Join(", ", seen), signature)
            : new(KubeletHugepagesState.RestartRequired, string.Join("; ", gaps) +
                ". The kubelet reads hugepages only when it starts: restart it on this node (systemctl restart kubelet), or run the agent with --kubelet-restart-command", signature);
    }

    private static long? Bytes(IDictionary<string, ResourceQuantity> resources, string name) =>
        resources.TryGetValue(name, out var q) ? (long)q.ToDecimal() : null;

    /// <summary>As Kubernetes writes quantities: 64Mi, 2Gi, 0.</summary>
    public static string Format(long? bytes) => bytes switch
    {
        null => "nothing",
        0 => "0",
        var b when b % (1L << 30) == 0 => $"{b / (1L << 30)}Gi",
        var b when b % (1L << 20) == 0 => $"{b / (1L << 20)}Mi",
        var b => b.Value.ToString(CultureInfo.InvariantCulture),
    };
}
