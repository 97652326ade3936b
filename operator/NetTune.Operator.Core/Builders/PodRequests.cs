using k8s.Models;

namespace NetTune.Operator.Core.Builders;

/// <summary>What the scheduler counts of a pod against its node's allocatable resources.</summary>
public static class PodRequests
{
    /// <summary>
    /// The pod's request of <paramref name="resource"/>: the larger of its containers' sum and its largest init container,
    /// plus its overhead (the scheduler's rule). Requests a container leaves out while setting limits were defaulted
    /// to the limits by the API server.
    /// </summary>
    public static decimal Of(V1Pod pod, string resource)
    {
        decimal Container(V1Container c) => c.Resources?.Requests is { } r && r.TryGetValue(resource, out var q) ? q.ToDecimal() : 0m;
        var containers = pod.Spec?.Containers?.Sum(Container) ?? 0m;
        var init = pod.Spec?.InitContainers is { Count: > 0 } inits ? inits.Max(Container) : 0m;
        var overhead = pod.Spec?.Overhead is { } o && o.TryGetValue(resource, out var q) ? q.ToDecimal() : 0m;
        return Math.Max(containers, init) + overhead;
    }

    /// <summary>The pod's CPU request in millicores, rounded up.</summary>
    public static long CpuMillis(V1Pod pod) => (long)decimal.Ceiling(Of(pod, "cpu") * 1000m);

    /// <summary>Pods that still hold their node's resources: a Succeeded or Failed pod holds none.</summary>
    public static bool Holds(V1Pod pod) => pod.Status?.Phase is not ("Succeeded" or "Failed");
}
