namespace NetTune.LocalCluster;

/// <summary>How the one real node of a local cluster is set up.</summary>
public sealed record NodeOptions
{
    /// <summary>The Node's name (the kubelet's --hostname-override).</summary>
    public string Name { get; init; } = "nettune-node";

    /// <summary>
    /// The CPU manager policy: <c>static</c> (the production setup for pinned workloads: Guaranteed containers with
    /// whole CPUs get them exclusively) or <c>none</c>.
    /// </summary>
    public string CpuManagerPolicy { get; init; } = "static";

    /// <summary>The Topology Manager policy: <c>single-numa-node</c> (production), <c>restricted</c>, <c>best-effort</c>, <c>none</c>.</summary>
    public string TopologyManagerPolicy { get; init; } = "single-numa-node";

    /// <summary>
    /// CPU held back for the system and the kubelet (kubeReserved). The static policy keeps ceil(this) whole CPUs
    /// out of exclusive use (on 2 CPUs: CPU 0 stays shared, CPU 1 can be given to one Guaranteed container) while
    /// allocatable drops by only this much, so the node's other pods still fit. reservedSystemCPUs: "0" would hold
    /// back the same CPU but take a whole CPU off allocatable, leaving one CPU for every pod together.
    /// </summary>
    public string KubeReservedCpu { get; init; } = "100m";

    /// <summary>Labels the Node registers with.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Pod network of the node's bridge; its first address is the node's (and the kubelet's) IP.</summary>
    public string PodSubnet { get; init; } = "10.244.0.0/24";

    public string NodeIp => PodSubnet[..PodSubnet.LastIndexOf('.')] + ".1";

    public int PodSubnetPrefix => int.Parse(PodSubnet[(PodSubnet.IndexOf('/') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
}
