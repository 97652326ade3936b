using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.DevicePlugin;

/// <summary>One device of a NUMA node's resource: an ID and the node it names in its topology.</summary>
public sealed record NumaDevice(string Id, int NumaNode);

/// <summary>
/// What the device plugin offers for one NUMA node: the extended resource, the socket (a file name in the kubelet's
/// device-plugins folder) it serves it on, and its devices.
/// </summary>
public sealed record NumaResource(int NumaNode, string ResourceName, string SocketName, IReadOnlyList<NumaDevice> Devices)
{
    public bool Owns(string deviceId) => Devices.Any(d => d.Id == deviceId);
}

/// <summary>
/// The device plugin's decisions, free of I/O: which resources a topology gets, which devices to prefer, and whether
/// an allocation names only this resource's devices.
/// </summary>
public static class NumaDevicePlan
{
    /// <summary>
    /// Devices per NUMA node: each data-plane pod takes one, so this many pods (of as many tunings) can be pinned to a
    /// node at once; the count is a capacity, not hardware.
    /// </summary>
    public const int DevicesPerNumaNode = 4;

    /// <summary>The device plugin API version the plugin speaks (the kubelet refuses others).</summary>
    public const string ApiVersion = "v1beta1";

    /// <summary>The kubelet's registration socket in the device-plugins folder.</summary>
    public const string KubeletSocketName = "kubelet.sock";

    public const string DefaultDirectory = NumaResources.KubeletDevicePluginDir;

    public const string Healthy = "Healthy";

    /// <summary>The environment variable the container gets from Allocate, naming the NUMA node of its device.</summary>
    public const string NumaNodeVariable = "NETTUNE_NUMA_NODE";

    /// <summary>
    /// One resource per NUMA node that has CPUs: a memory-only node (CXL, some NPS setups) can host no pinned pod, and
    /// advertising it would let the scheduler place a pod the Topology Manager must refuse.
    /// </summary>
    public static IReadOnlyList<NumaResource> Plan(IEnumerable<NumaNode> numaNodes, int devicesPerNode = DevicesPerNumaNode)
    {
        var result = new List<NumaResource>();
        foreach (var numa in numaNodes.Where(n => n.Id >= 0 && n.Cpus.Count > 0).OrderBy(n => n.Id))
        {
            var id = numa.Id.ToString(CultureInfo.InvariantCulture);
            var devices = Enumerable.Range(0, devicesPerNode).Select(i => new NumaDevice($"numa{id}-{i}", numa.Id)).ToList();
            result.Add(new NumaResource(numa.Id, NumaResources.ResourceName(numa.Id), $"nettune-numa-node-{id}.sock", devices));
        }
        return result;
    }

    /// <summary>
    /// The devices to prefer for a request of <paramref name="size"/>: those the kubelet says must be included, then
    /// the available ones in order. All devices of a resource are alike (one NUMA node), so order is all there is to
    /// choose; IDs that are not this resource's are never offered back.
    /// </summary>
    public static IReadOnlyList<string> Preferred(NumaResource resource, IEnumerable<string> available, IEnumerable<string> mustInclude, int size)
    {
        var chosen = new List<string>();
        foreach (var id in mustInclude.Concat(available))
        {
            if (chosen.Count >= size) break;
            if (resource.Owns(id) && !chosen.Contains(id)) chosen.Add(id);
        }
        return chosen;
    }

    /// <summary>Null when every ID is one of the resource's devices, else why the allocation is refused.</summary>
    public static string? AllocationRefusal(NumaResource resource, IReadOnlyCollection<string> deviceIds)
    {
        if (deviceIds.Count == 0) return $"{resource.ResourceName}: an allocation names no device";
        var unknown = deviceIds.Where(id => !resource.Owns(id)).ToList();
        return unknown.Count == 0 ? null
            : $"{resource.ResourceName}: unknown device{(unknown.Count == 1 ? "" : "s")} {string.Join(", ", unknown.Take(8))}";
    }
}

/// <summary>Which kubelet registration socket was seen: its birth and modification times tell a re-created socket from the old one.</summary>
public readonly record struct SocketIdentity(long CreatedTicks, long WrittenTicks);

public enum RegistrationAction
{
    /// <summary>Registered with the kubelet that runs now, and serving: nothing to do.</summary>
    None,
    /// <summary>No kubelet socket: wait (the kubelet is down or starting).</summary>
    WaitForKubelet,
    /// <summary>(Re)start serving on fresh sockets and register every resource.</summary>
    ServeAndRegister,
}

/// <summary>
/// When to register again. A kubelet that starts removes every socket in its device-plugins folder (ours too) and
/// makes its own kubelet.sock anew, then forgets every plugin until it registers again: a changed kubelet.sock or a
/// missing socket of ours both mean the plugin must serve on new sockets and register again.
/// </summary>
public static class RegistrationWatch
{
    public static RegistrationAction Decide(SocketIdentity? registeredWith, SocketIdentity? kubeletNow, bool ownSocketsPresent)
    {
        if (kubeletNow is null) return RegistrationAction.WaitForKubelet;
        if (registeredWith != kubeletNow || !ownSocketsPresent) return RegistrationAction.ServeAndRegister;
        return RegistrationAction.None;
    }
}
