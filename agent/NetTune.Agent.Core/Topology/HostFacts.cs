using System.Globalization;
using NetTune.Agent.Core.Host;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Topology;

/// <summary>Whether the agent's network namespace is the host's, and how that was told.</summary>
public sealed record NetNamespaceInfo(bool? SameAsHost, string Detail)
{
    public static readonly NetNamespaceInfo Unknown = new(null, "the network namespaces were not compared");
}

/// <summary>
/// The facts about a host that guard the tuning rather than feed it: which interfaces carry the node's own traffic,
/// whether net sysctls would land in the host's namespace, which CPUs are kept free of housekeeping, and what the
/// kernel offers for enumerated sysctls. Read from procfs and sysfs under the host root.
/// </summary>
public sealed partial class HostFactsDiscovery(IHostFileSystem fs)
{
    public const string AvailableCongestionControlPath = "proc/sys/net/ipv4/tcp_available_congestion_control";

    /// <summary>
    /// Interfaces that carry a default route (IPv4 or IPv6), plus every device below them (bond slaves, a VLAN's
    /// parent), each with the reason. proc/net is the reading process's namespace: the agent's, checked to be the host's.
    /// </summary>
    public IReadOnlyDictionary<string, string> ManagementInterfaces()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var ifName in DefaultRouteInterfaces())
        {
            if (result.ContainsKey(ifName)) continue;
            result[ifName] = $"{ifName} carries the node's default route";
            AddLowerDevices(ifName, ifName, result, depth: 0);
        }
        return result;
    }

    private IEnumerable<string> DefaultRouteInterfaces()
    {
        // Iface Destination Gateway Flags RefCnt Use Metric Mask ...: hex fields; a default route has destination and mask 0.
        foreach (var line in Lines("proc/net/route").Skip(1))
        {
            var f = line.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 8 && f[1] == "00000000" && f[7] == "00000000" && int.TryParse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var flags) && (flags & 1) != 0)
                yield return f[0];
        }
        // dest prefixlen src srcprefixlen nexthop metric refcnt use flags iface; the kernel lists ::/0 unreachable on lo.
        foreach (var line in Lines("proc/net/ipv6_route"))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 10 && f[0].All(c => c == '0') && f[1] == "00" && f[9] != "lo"
                && int.TryParse(f[8], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var flags) && (flags & 0x200) == 0)
                yield return f[9];
        }
    }

    private void AddLowerDevices(string ifName, string top, Dictionary<string, string> result, int depth)
    {
        if (depth > 8) return;
        // Stacked devices link their lower devices as lower_NAME (bond slaves, a VLAN's parent, macvlan); bonding also lists its slaves.
        var lower = fs.List($"sys/class/net/{ifName}").Where(e => e.StartsWith("lower_", StringComparison.Ordinal)).Select(e => e["lower_".Length..]).ToList();
        var slaves = fs.Read($"sys/class/net/{ifName}/bonding/slaves");
        if (slaves.Ok) lower.AddRange(slaves.Text!.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        foreach (var dev in lower.Distinct())
        {
            if (result.ContainsKey(dev)) continue;
            result[dev] = $"{dev} is below {ifName}" + (ifName == top ? "" : $" (below {top})") + $", which carries the node's default route";
            AddLowerDevices(dev, top, result, depth + 1);
        }
    }

    /// <summary>
    /// Compares the agent's network namespace with that of the host's init process: proc/self/ns/net with
    /// proc/1/ns/net. Where pid 1's link cannot be read (a sandbox that withholds a capability pid 1 has), the two
    /// namespaces' interfaces and routes are compared instead: proc/PID/net is readable and shows that PID's namespace.
    /// </summary>
    public NetNamespaceInfo NetNamespace()
    {
        var self = ReadLink("proc/self/ns/net");
        var init = ReadLink("proc/1/ns/net");
        if (self is not null && init is not null)
            return self == init
                ? new(true, $"the agent's network namespace {self} is the host's")
                : new(false, $"the agent's network namespace {self} is not the host's {init}");
        var selfView = NetworkView("proc/self/net");
        var initView = NetworkView("proc/1/net");
        if (selfView is null || initView is null)
            return new(null, "cannot tell whether the agent's network namespace is the host's: neither proc/1/ns/net nor proc/1/net can be read");
        return selfView == initView
            ? new(true, "the agent sees the same interfaces and routes as the host's init process (proc/1/ns/net unreadable)")
            : new(false, "the agent sees other interfaces or routes than the host's init process: it runs in another network namespace");
    }

    private string? NetworkView(string dir)
    {
        var dev = fs.Read($"{dir}/dev");
        var route = fs.Read($"{dir}/route");
        if (!dev.Ok || !route.Ok) return null;
        // Interface names only: the counters move between the two reads.
        var names = dev.Text!.Split('\n').Skip(2).Select(l => l.Split(':')[0].Trim()).Where(n => n.Length > 0).Order(StringComparer.Ordinal);
        var inet6 = fs.Read($"{dir}/if_inet6");
        return string.Join(",", names) + "\n" + route.Text + "\n" + (inet6.Ok ? inet6.Text : "");
    }

    private string? ReadLink(string path)
    {
        try
        {
            return new FileInfo(Path.Join(fs.Root, path)).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>nohz_full CPUs: the kernel keeps the tick (and with it housekeeping) off them.</summary>
    public IReadOnlyList<int> NohzFullCpus() => CpuList.TryParse(Value("sys/devices/system/cpu/nohz_full")?.Trim() is { Length: > 0 } t && t != "(null)" ? t : "", out var c) ? c : [];

    /// <summary>
    /// The kubelet's CPU manager checkpoint, <c>cpu_manager_state</c> in its root dir (under the host root: the DaemonSet
    /// mounts the kubelet's root dir read-only at the same path below /host). Its entries are the CPUs the static
    /// policy gave containers exclusively: interrupts and packet steering there would land on a Guaranteed pod's
    /// dedicated core. The kubelet replaces the file (write and rename) whenever an assignment changes.
    /// </summary>
    public KubeletCpuAssignment KubeletCpus(string kubeletRootDir)
    {
        var path = $"{kubeletRootDir.Trim('/')}/{KubeletCpuAssignment.FileName}";
        var text = Value(path);
        if (text is null) return new KubeletCpuAssignment("/" + path, Found: false, Policy: null, ExclusiveCpus: []);
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            var root = doc.RootElement;
            var policy = root.TryGetProperty("policyName", out var p) && p.ValueKind == System.Text.Json.JsonValueKind.String ? p.GetString() : null;
            var cpus = new SortedSet<int>();
            var byContainer = new Dictionary<(string Pod, string Container), IReadOnlyList<int>>();
            if (root.TryGetProperty("entries", out var entries) && entries.ValueKind == System.Text.Json.JsonValueKind.Object)
                foreach (var pod in entries.EnumerateObject().Where(e => e.Value.ValueKind == System.Text.Json.JsonValueKind.Object))
                    foreach (var container in pod.Value.EnumerateObject())
                        if (container.Value.ValueKind == System.Text.Json.JsonValueKind.String && CpuList.TryParse(container.Value.GetString(), out var set))
                        {
                            cpus.UnionWith(set);
                            byContainer[(pod.Name, container.Name)] = set.Order().ToArray();
                        }
            var dataPlanes = DataPlaneContainers()
                .Where(d => byContainer.ContainsKey((d.Pod, d.Container)))
                .Select(d => new DataPlaneCpus(d.Pod, d.Container, d.NumaNode, byContainer[(d.Pod, d.Container)]))
                .OrderBy(d => d.NumaNode).ThenBy(d => d.PodUid, StringComparer.Ordinal).ToArray();
            return new KubeletCpuAssignment("/" + path, Found: true, policy, cpus.ToArray()) { DataPlanes = dataPlanes };
        }
        catch (System.Text.Json.JsonException e)
        {
            return new KubeletCpuAssignment("/" + path, Found: true, Policy: null, ExclusiveCpus: [], Error: e.Message);
        }
    }

    /// <summary>
    /// The containers that hold a NUMA node's data-plane device (nettune.io/numa-node-N, which only the agent's device
    /// plugin advertises), from the kubelet's device manager checkpoint: which pods are the data plane comes from what
    /// the kubelet admitted, not from a pod's or container's name anyone can choose. Unreadable or absent: none.
    /// </summary>
    private IEnumerable<(string Pod, string Container, int NumaNode)> DataPlaneContainers()
    {
        if (Value(KubeletCpuAssignment.DeviceCheckpoint) is not { } text) yield break;
        var found = new List<(string, string, int)>();
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && doc.RootElement.TryGetProperty("Data", out var data) && data.ValueKind == System.Text.Json.JsonValueKind.Object
                && data.TryGetProperty("PodDeviceEntries", out var entries) && entries.ValueKind == System.Text.Json.JsonValueKind.Array)
                foreach (var e in entries.EnumerateArray())
                    if (e.ValueKind == System.Text.Json.JsonValueKind.Object
                        && Text(e, "PodUID") is { } pod && Text(e, "ContainerName") is { } container && Text(e, "ResourceName") is { } resource
                        && NumaResources.TryParseNode(resource, out var node))
                        found.Add((pod, container, node));
        }
        catch (System.Text.Json.JsonException)
        {
            // A checkpoint being rewritten or damaged names no data plane; the next poll reads it again.
        }
        foreach (var f in found) yield return f;

        static string? Text(System.Text.Json.JsonElement e, string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
    }

    /// <summary>
    /// The kubelet's Memory Manager policy: from its checkpoint <c>memory_manager_state</c> in the kubelet's root dir
    /// (what the running kubelet uses), else from a kubelet config file kept there (kubeadm's <c>config.yaml</c>).
    /// With the Static policy a kubelet restart after the hugepage pools changed fails the checkpoint's state check,
    /// and the node stays NotReady until someone removes the file.
    /// </summary>
    public KubeletMemoryManager KubeletMemoryManager(string kubeletRootDir)
    {
        var root = kubeletRootDir.Trim('/');
        var checkpoint = $"{root}/{Topology.KubeletMemoryManager.CheckpointName}";
        if (Value(checkpoint) is { } text)
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && doc.RootElement.TryGetProperty("policyName", out var p)
                    && p.ValueKind == System.Text.Json.JsonValueKind.String)
                    return new(p.GetString(), "/" + checkpoint);
            }
            catch (System.Text.Json.JsonException)
            {
                // Unreadable: the config file may still say.
            }
        }
        var config = $"{root}/config.yaml";
        if (Value(config) is { } yaml && MemoryManagerPolicyLine().Match(yaml) is { Success: true } m)
            return new(m.Groups[1].Value, "/" + config);
        return new(null, null);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"(?m)^memoryManagerPolicy:\s*[""']?([A-Za-z]+)")]
    private static partial System.Text.RegularExpressions.Regex MemoryManagerPolicyLine();

    public IReadOnlyList<string>? AvailableCongestionControl() =>
        Value(AvailableCongestionControlPath)?.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);

    private string? Value(string path)
    {
        var r = fs.Read(path);
        return r.Ok ? TopologyDiscovery.StripNewline(r.Text!) : null;
    }

    private IEnumerable<string> Lines(string path)
    {
        var r = fs.Read(path);
        return r.Ok ? r.Text!.Split('\n', StringSplitOptions.RemoveEmptyEntries) : [];
    }
}

/// <summary>What the kubelet's CPU manager checkpoint says: its policy and the CPUs given containers exclusively.</summary>
/// <param name="Path">The checkpoint's path on the host.</param>
public sealed record KubeletCpuAssignment(string Path, bool Found, string? Policy, IReadOnlyList<int> ExclusiveCpus, string? Error = null)
{
    public const string FileName = "cpu_manager_state";
    /// <summary>
    /// The kubelet's device manager checkpoint (which container holds which device), under the host root: in the
    /// device-plugins folder, which is fixed whatever the kubelet's --root-dir and mounted for the device plugin.
    /// </summary>
    public static readonly string DeviceCheckpoint = NumaResources.KubeletDevicePluginDir.TrimStart('/') + "/kubelet_internal_checkpoint";

    /// <summary>The data-plane containers and the CPUs the kubelet gave each, by NUMA node.</summary>
    public IReadOnlyList<DataPlaneCpus> DataPlanes { get; init; } = [];

    /// <summary>Whether anything the planner reads from the kubelet differs: the exclusive CPUs, or a data-plane container's CPUs.</summary>
    public bool SameAs(KubeletCpuAssignment other) =>
        Found == other.Found && ExclusiveCpus.SequenceEqual(other.ExclusiveCpus)
        && DataPlanes.Select(d => d.ToString()).SequenceEqual(other.DataPlanes.Select(d => d.ToString()), StringComparer.Ordinal);
    public const string DefaultKubeletRootDir = "/var/lib/kubelet";

    public string Describe() =>
        !Found ? $"no kubelet CPU manager checkpoint at {Path}: no CPU is known to be a container's exclusively (mount the kubelet's root dir, --kubelet-root-dir)"
        : Error is not null ? $"the kubelet CPU manager checkpoint {Path} is unreadable ({Error})"
        : $"kubelet CPU manager policy {Policy ?? "unknown"} ({Path}): exclusive CPUs {(ExclusiveCpus.Count == 0 ? "none" : CpuList.Format(ExclusiveCpus))}";
}

/// <summary>A data-plane container (it holds NUMA node <see cref="NumaNode"/>'s device) and its exclusive CPUs, ascending: the data plane runs worker i on the i-th.</summary>
public sealed record DataPlaneCpus(string PodUid, string Container, int NumaNode, IReadOnlyList<int> Cpus)
{
    public override string ToString() => $"{PodUid}/{Container} numa{NumaNode} cpus {CpuList.Format(Cpus)}";
}

/// <summary>The kubelet's Memory Manager policy (None, Static) and where it was read; both null when nothing says.</summary>
public sealed record KubeletMemoryManager(string? Policy, string? Source)
{
    public const string CheckpointName = "memory_manager_state";

    /// <summary>Static: hugepage pools must not change while the kubelet runs; they are reserved at boot.</summary>
    public bool Static => string.Equals(Policy, "Static", StringComparison.OrdinalIgnoreCase);
}
