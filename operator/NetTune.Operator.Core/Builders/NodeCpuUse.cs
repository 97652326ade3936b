using System.Globalization;
using k8s.Models;

namespace NetTune.Operator.Core.Builders;

/// <summary>
/// The CPU that the pods on a node other than one tuning's data-plane pods request (CNI, CSI, exporters, the agent):
/// the scheduler counts it against the node's allocatable CPU before a data-plane pod, so a pod sized without it
/// stays Pending (Insufficient cpu).
/// </summary>
/// <param name="Millis">Their requests together, in millicores.</param>
/// <param name="Pods">How many pods request it.</param>
/// <param name="Largest">The largest few requesters as "namespace/name CPU", for the status message.</param>
public sealed record NodeCpuUse(long Millis, int Pods, IReadOnlyList<string> Largest)
{
    /// <summary>The pods bound to the node that hold resources, less those owned by the tuning (by uid).</summary>
    public static NodeCpuUse Of(IEnumerable<V1Pod> podsOnNode, string? tuningUid)
    {
        var others = podsOnNode
            .Where(p => PodRequests.Holds(p) && p.Metadata.OwnerReferences?.Any(o => o.Uid == tuningUid) != true)
            .Select(p => (Pod: p, Millis: PodRequests.CpuMillis(p))).ToList();
        var largest = others.Where(o => o.Millis > 0).OrderByDescending(o => o.Millis).ThenBy(o => o.Pod.Metadata.Name, StringComparer.Ordinal).Take(3)
            .Select(o => $"{o.Pod.Metadata.NamespaceProperty}/{o.Pod.Metadata.Name} {Cpu(o.Millis)}").ToList();
        return new NodeCpuUse(others.Sum(o => o.Millis), others.Count(o => o.Millis > 0), largest);
    }

    /// <summary>Millicores as Kubernetes writes CPU: whole CPUs without a unit, else millicores.</summary>
    public static string Cpu(long millis) =>
        millis % 1000 == 0 ? (millis / 1000).ToString(CultureInfo.InvariantCulture) : millis.ToString(CultureInfo.InvariantCulture) + "m";
}
