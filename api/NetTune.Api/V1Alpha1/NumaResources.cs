namespace NetTune.Api.V1Alpha1;

/// <summary>
/// The extended resources through which a data-plane pod asks for a NUMA node. Kubernetes gives a pod no field to name
/// one; a device does carry one: the agent's device plugin advertises one resource per NUMA node whose devices all sit
/// on that node, and the kubelet's Topology Manager (policy single-numa-node, restricted or best-effort) then takes the
/// pod's exclusive CPUs from the node of the device it was given.
/// </summary>
public static class NumaResources
{
    /// <summary>The kubelet's device-plugins folder, where the agent's plugin serves and registers: fixed in every kubelet, whatever its --root-dir.</summary>
    public const string KubeletDevicePluginDir = "/var/lib/kubelet/device-plugins";

    /// <summary>The resources' prefix: the API group as the domain (an extended resource name is domain/name).</summary>
    public const string Prefix = ApiGroup.Name + "/numa-node-";

    /// <summary>The resource of NUMA node <paramref name="numaNode"/>, such as nettune.io/numa-node-1.</summary>
    public static string ResourceName(int numaNode) => Prefix + numaNode.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The NUMA node a resource name of <see cref="Prefix"/> stands for; false for any other name.</summary>
    public static bool TryParseNode(string resource, out int numaNode)
    {
        numaNode = -1;
        return resource.StartsWith(Prefix, StringComparison.Ordinal)
            && int.TryParse(resource.AsSpan(Prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out numaNode);
    }
}
