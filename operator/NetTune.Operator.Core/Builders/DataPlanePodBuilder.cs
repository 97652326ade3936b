using System.Globalization;
using k8s.Models;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Builders;

/// <param name="MemoryPerSocket">Memory request and limit of each pod (equal, for Guaranteed QoS).</param>
public sealed record DataPlaneOptions(string Namespace, string MemoryPerSocket = "512Mi")
{
    /// <summary>
    /// CPU the operator's other pod on every tuned node (the agent) requests, in millicores: the scheduler counts it
    /// against the node's allocatable CPU, so the data plane's share leaves it room.
    /// </summary>
    public int AgentCpuMillis { get; init; } = 20;

    /// <summary>
    /// CPU, in millicores, left unrequested on a node when the data-plane pods are sized from what other pods request:
    /// room for a pod that comes later (a new DaemonSet's) and for requests that change.
    /// </summary>
    public int CpuMarginMillis { get; init; } = 500;

    /// <summary>
    /// A node label the data-plane pods require (operator Exists), present while the node's tuning is applied for the
    /// current boot; null or empty: none.
    /// </summary>
    public string? RequiredNodeLabel { get; init; } = Names.NodeTunedLabel;

    /// <summary>Images, host paths and ports a tuning's data plane may use; a refused one gets no pods.</summary>
    public DataPlanePolicy Policy { get; init; } = DataPlanePolicy.Any;

    /// <summary>Secrets (in <see cref="Namespace"/>) the kubelet pulls the data-plane image with.</summary>
    public IReadOnlyList<string> ImagePullSecrets { get; init; } = [];
}

/// <summary>What a socket of a node gets: its pod, or why it has none yet.</summary>
/// <param name="Socket">The NUMA node the pod is for; the lowest of its package's with dataPlane.podPer Package.</param>
/// <param name="Cpus">Whole CPUs the pod requests (0 when there is nothing to give it).</param>
/// <param name="Pod">The pod to run; null while it waits.</param>
/// <param name="WaitReason">A DataPlaneAvailable reason when the pod waits (see ConditionReasons).</param>
/// <param name="NumaNodes">The NUMA nodes the pod may run on: its own, or its package's.</param>
public sealed record SocketPod(int Socket, string Name, int Cpus, V1Pod? Pod, string? WaitReason = null, string? WaitMessage = null, IReadOnlyList<int>? NumaNodes = null);

/// <summary>The NUMA nodes that get one pod together: one NUMA node, or every NUMA node of a physical package.</summary>
/// <param name="Id">The lowest of its NUMA nodes: the pod's admin port offset and NUMA label.</param>
/// <param name="Package">The package with dataPlane.podPer Package; null for a NUMA node's pod.</param>
/// <param name="FreeCpus">Its CPUs outside the housekeeping CPUs.</param>
public sealed record PodUnit(int Id, int? Package, IReadOnlyList<int> NumaNodes, IReadOnlyList<int> FreeCpus, int ThreadsPerCore);

/// <summary>
/// One data-plane pod per NUMA socket of a tuned node. The pod asks for whole CPUs with requests equal to limits
/// (Guaranteed QoS); the kubelet's CPU manager (policy static) chooses which CPUs, and its Topology Manager (policy
/// single-numa-node) keeps them and the pod's devices on one NUMA node. The data plane runs one worker per CPU of the
/// affinity it is given and finds its NUMA node from those CPUs, so no CPU list goes on its command line. The pod is
/// placed by a required node affinity on the node's name, as the DaemonSet controller does, so the scheduler accounts
/// for it, honours cordons and taints, and a drained pod is not put back.
/// </summary>
public static class DataPlanePodBuilder
{
    public const string StaticRoot = "/srv/www";

    /// <summary>The environment variable holding the pod's IP (downward API), which the admin address is set to.</summary>
    public const string PodIpVariable = "POD_IP";

    /// <summary>Name of the declared admin port; the chart's PodMonitor scrapes /metrics on it.</summary>
    public const string MetricsPortName = "metrics";

    public static string PodName(string tuning, string node, int numaNode) => Names.ObjectName($"{tuning}-dp-{node}-numa{numaNode}");

    public static string PodName(string tuning, string node, PodUnit unit) =>
        unit.Package is { } package ? Names.ObjectName($"{tuning}-dp-{node}-pkg{package}") : PodName(tuning, node, unit.Id);

    /// <summary>The admin port of one socket's pod: spec.dataPlane.adminPort plus the NUMA id.</summary>
    public static int AdminPort(DataPlaneSpec dp, int numaNode) => dp.AdminPort + numaNode;

    /// <summary>The CPUs of a socket that the data plane may get: the socket's, less the housekeeping CPUs the kubelet keeps for the system.</summary>
    public static IReadOnlyList<int> SocketCpus(NumaNodeInfo numa, string? housekeepingCpus)
    {
        CpuList.TryParse(numa.Cpus, out var cpus);
        CpuList.TryParse(housekeepingCpus, out var reserved);
        var skip = reserved.ToHashSet();
        return cpus.Where(c => !skip.Contains(c)).ToList();
    }

    /// <summary>The data plane's user: the image's own non-root "app" user (images/dataplane), stated so the kubelet checks it.</summary>
    public const long RunAsUser = 1654;

    // The Pod Security "restricted" profile: non-root, no privilege escalation, no capabilities, a seccomp profile
    // (restricted allows RuntimeDefault and Localhost). Nothing the data plane does needs more: ports >= 1024
    // (DataPlanePolicy), its own affinity and memory policy, io_uring, hugepage mmap of its emptyDir. A read-only
    // root; /tmp is an emptyDir.
    private static V1PodSecurityContext RestrictedPod(DataPlaneSpec dp) => new()
    {
        RunAsNonRoot = true,
        RunAsUser = RunAsUser,
        RunAsGroup = RunAsUser,
        SeccompProfile = SeccompProfile(dp),
    };

    /// <summary>
    /// The pods' seccomp profile: NetTune's is a Localhost profile the node's agent installed as part of its apply
    /// (the pods are made once the node reports Applied, so the kubelet finds the file).
    /// </summary>
    public static V1SeccompProfile SeccompProfile(DataPlaneSpec dp) => dp.EffectiveSeccompProfile() switch
    {
        { Type: SeccompProfileKind.NetTune } => new V1SeccompProfile { Type = "Localhost", LocalhostProfile = SeccompProfiles.NetTuneLocalhostProfile },
        { Type: SeccompProfileKind.Localhost, LocalhostProfile: var profile } => new V1SeccompProfile { Type = "Localhost", LocalhostProfile = profile },
        _ => new V1SeccompProfile { Type = "RuntimeDefault" },
    };

    private static V1SecurityContext RestrictedContainer => new()
    {
        AllowPrivilegeEscalation = false,
        ReadOnlyRootFilesystem = true,
        Capabilities = new V1Capabilities { Drop = ["ALL"] },
    };

    /// <summary>
    /// Whole CPUs the node's allocatable CPU leaves to each socket's pod: allocatable less the agent's request, in whole
    /// CPUs, shared equally by the sockets. Null when the node reports no allocatable CPU (no kubelet yet).
    /// </summary>
    public static int? AllocatableShare(V1Node? node, int sockets, DataPlaneOptions options)
    {
        if (sockets <= 0 || node?.Status?.Allocatable?.TryGetValue("cpu", out var cpu) != true) return null;
        var millis = (long)decimal.Floor(cpu!.ToDecimal() * 1000m) - options.AgentCpuMillis;
        return millis <= 0 ? 0 : (int)(millis / 1000 / sockets);
    }

    /// <summary>Hyper-threads per core among these CPUs (1 when the topology does not say).</summary>
    private static int ThreadsPerCore(NodeTopology topology, IEnumerable<int> cpus)
    {
        var onSocket = cpus.ToHashSet();
        var threads = 1;
        foreach (var cpu in topology.Cpus ?? [])
            if (onSocket.Contains(cpu.Id) && CpuList.TryParse(cpu.ThreadSiblings, out var siblings)) threads = Math.Max(threads, siblings.Count);
        return threads;
    }

    /// <summary>
    /// The whole CPUs of <paramref name="free"/> that a pod may have with at most <paramref name="share"/>, rounded down
    /// to whole cores (an odd count on an SMT host is refused with SMTAlignmentError under the static policy's
    /// full-pcpus-only option); below one core, what there is.
    /// </summary>
    private static int Fit(int free, int? share, int threadsPerCore)
    {
        var count = share is { } most ? Math.Min(free, most) : free;
        if (threadsPerCore > 1 && count >= threadsPerCore) count -= count % threadsPerCore;
        return count;
    }

    /// <summary>
    /// The units of a node that get a pod: each NUMA node with CPUs outside the housekeeping CPUs, or with
    /// dataPlane.podPer Package each physical package (its NUMA nodes together: Intel SNC and AMD NPS give several per
    /// package); only those with a NUMA node <paramref name="only"/> holds when it is given. A NUMA node whose package
    /// the topology does not say (no CPU list) stays a unit of its own.
    /// </summary>
    public static IReadOnlyList<PodUnit> Units(DataPlaneSpec dp, NodeTopology topology, string? housekeepingCpus, IReadOnlySet<int>? only)
    {
        var packageOf = PackageOf(topology);
        var numas = (topology.NumaNodes ?? []).Where(n => SocketCpus(n, housekeepingCpus).Count > 0).OrderBy(n => n.Id).ToList();
        IEnumerable<IGrouping<int?, NumaNodeInfo>> groups = dp.PodPer == DataPlanePodUnit.Package ? numas.GroupBy(packageOf) : numas.GroupBy(_ => (int?)null);
        var units = new List<PodUnit>();
        foreach (var group in groups)
        {
            // Without a package, each NUMA node is its own unit.
            var sets = group.Key is null ? group.Select(n => new[] { n }) : [group.ToArray()];
            foreach (var set in sets)
            {
                if (only is not null && !set.Any(n => only.Contains(n.Id))) continue;
                var free = set.SelectMany(n => SocketCpus(n, housekeepingCpus)).Order().ToList();
                units.Add(new PodUnit(set.Min(n => n.Id), group.Key, set.Select(n => n.Id).ToList(), free, ThreadsPerCore(topology, free)));
            }
        }
        return units.OrderBy(u => u.Id).ToList();
    }

    /// <summary>The physical package of a NUMA node: that of its first CPU; null when the topology lists no CPUs.</summary>
    private static Func<NumaNodeInfo, int?> PackageOf(NodeTopology topology)
    {
        var packages = (topology.Cpus ?? []).GroupBy(c => c.Id).ToDictionary(g => g.Key, g => g.First().Package);
        return n => CpuList.TryParse(n.Cpus, out var cpus) && cpus.Count > 0 && packages.TryGetValue(cpus[0], out var p) ? p : null;
    }

    /// <summary>
    /// The pods of a node, or, for each unit (NUMA node or package), why it gets none (yet). <paramref name="others"/> is
    /// what the node's other pods request (null when not known: then only the agent's request is counted);
    /// <paramref name="running"/> are the tuning's pods on the node, whose size is kept while their cap is unchanged.
    /// </summary>
    public static IReadOnlyList<SocketPod> Plan(NetworkTuning tuning, string node, V1Node? nodeObject, NodeTopology? topology, DataPlaneOptions options,
        NodeCpuUse? others = null, IReadOnlyList<V1Pod>? running = null)
    {
        var result = new List<SocketPod>();
        var dp = tuning.Spec.DataPlane;
        if (dp is null || !dp.Enabled || topology?.NumaNodes is null) return result;
        // The admission webhook refuses such tunings; this catches those admitted before the lists changed.
        if (options.Policy.Refusal(dp) is not null) return result;
        // The deprecated irqAffinity.reservedCpus keeps its old effect on the count when no housekeeping CPUs are given.
        var reserved = tuning.Spec.Nic?.HousekeepingCpus ?? tuning.Spec.Nic?.IrqAffinity?.ReservedCpus;
        var (only, _) = PodNumaNodes(tuning, node, topology);
        var units = Units(dp, topology, reserved, only);
        var names = units.Select(u => PodName(tuning.Metadata.Name, node, u)).ToList();
        var sizes = Size(dp, node, units, names, nodeObject, options, others, running ?? []);

        // The kubelet counts hugepages at its start only: a pod asking for pages the node's allocatable does not show
        // yet would stay Pending (Insufficient hugepages-2Mi), so it is not created until they show.
        var hugepagesShort = HugepagesShortfall(tuning, nodeObject, units.SelectMany(u => u.NumaNodes));

        for (var i = 0; i < units.Count; i++)
        {
            var (unit, name, (cpus, cap, why)) = (units[i], names[i], sizes[i]);
            var missing = unit.NumaNodes.Select(NumaResources.ResourceName).Where(r => !Advertises(nodeObject, r)).ToList();
            SocketPod Waiting(string reason, string message) => new(unit.Id, name, cpus, null, reason, message, unit.NumaNodes);
            if (cpus == 0)
                result.Add(Waiting(ConditionReasons.NoAllocatableCpu, why!));
            else if (cpus > unit.FreeCpus.Count)
                result.Add(Waiting(ConditionReasons.NoAllocatableCpu,
                    $"dataPlane.cpusPerSocket is {cpus} but {Describe(unit)} of node {node} has {unit.FreeCpus.Count} CPUs outside the housekeeping CPUs; " +
                    (unit.Package is null ? "single-numa-node cannot admit it" : "the package cannot hold it")));
            else if (hugepagesShort is { } shortMessage)
                result.Add(Waiting(ConditionReasons.HugepagesNotAllocatable, shortMessage));
            else if (missing.Count > 0)
                result.Add(Waiting(ConditionReasons.NumaResourceNotAllocatable,
                    $"node {node} does not advertise {string.Join(", ", missing)} in its allocatable resources yet: the pod asks for it to be " +
                    $"placed on {Describe(unit)}, and the node's agent registers it with the kubelet (its device plugin, in {NumaResources.KubeletDevicePluginDir})"));
            else
                result.Add(new SocketPod(unit.Id, name, cpus, BuildPod(tuning, dp, node, unit, name, cpus, cap, options), NumaNodes: unit.NumaNodes));
        }
        return result;
    }

    private static string Describe(PodUnit unit) =>
        unit.Package is { } package ? $"package {package} (NUMA node{(unit.NumaNodes.Count == 1 ? "" : "s")} {string.Join(", ", unit.NumaNodes)})" : $"NUMA node {unit.Id}";

    /// <summary>
    /// Each unit's whole CPUs, its cap (what it could have without counting other pods) and, when 0, why. The cap is
    /// the unit's free CPUs, capped by the node's allocatable CPU less the agent's request shared by the units, in whole
    /// cores. A running pod keeps its size while its cap is unchanged; the others share what allocatable leaves after
    /// the node's other pods' requests, the margin and the kept pods, so a pod fits beside what already runs there.
    /// </summary>
    private static List<(int Cpus, int Cap, string? Why)> Size(DataPlaneSpec dp, string node, IReadOnlyList<PodUnit> units, IReadOnlyList<string> names,
        V1Node? nodeObject, DataPlaneOptions options, NodeCpuUse? others, IReadOnlyList<V1Pod> running)
    {
        var share = AllocatableShare(nodeObject, units.Count, options);
        var caps = units.Select(u => Fit(u.FreeCpus.Count, share, u.ThreadsPerCore)).ToList();
        var sizes = new List<(int Cpus, int Cap, string? Why)>();
        if (dp.CpusPerSocket is { } asked) return caps.Select(cap => (asked, cap, (string?)null)).ToList();

        var kept = new int?[units.Count];
        for (var i = 0; i < units.Count; i++)
        {
            var pod = running.FirstOrDefault(p => p.Metadata.Name == names[i] && p.Metadata.DeletionTimestamp is null && PodRequests.Holds(p));
            var cpus = pod is null ? 0 : (int)decimal.Floor(PodRequests.Of(pod, "cpu"));
            var capWas = Names.Annotation(pod?.Metadata, Names.CpuCapAnnotation);
            if (cpus >= 1 && cpus <= caps[i] && (capWas is null || capWas == caps[i].ToString(CultureInfo.InvariantCulture))) kept[i] = cpus;
        }
        var allocatable = nodeObject?.Status?.Allocatable?.TryGetValue("cpu", out var cpu) == true ? (long)decimal.Floor(cpu!.ToDecimal() * 1000m) : (long?)null;
        if (others is null || allocatable is null)
            return caps.Select((cap, i) => (kept[i] ?? cap, cap, cap == 0
                ? $"node {node} has no whole CPU left for {Describe(units[i])}'s pod (allocatable CPU less {options.AgentCpuMillis}m for the agent, shared by {units.Count} pods)"
                : null)).ToList();

        var keptMillis = kept.Sum(k => (k ?? 0) * 1000L);
        var left = Math.Max(0, allocatable.Value - others.Millis - options.CpuMarginMillis - keptMillis);
        var sharing = kept.Count(k => k is null);
        var each = sharing == 0 ? 0 : (int)(left / 1000 / sharing);
        for (var i = 0; i < units.Count; i++)
        {
            if (kept[i] is { } keep)
            {
                sizes.Add((keep, caps[i], null));
                continue;
            }
            var cpus = Fit(units[i].FreeCpus.Count, Math.Min(caps[i], each), units[i].ThreadsPerCore);
            sizes.Add((cpus, caps[i], cpus > 0 ? null
                : $"node {node} has no whole CPU left for {Describe(units[i])}'s pod: allocatable CPU {NodeCpuUse.Cpu(allocatable.Value)} less " +
                  $"{NodeCpuUse.Cpu(others.Millis)} requested by {others.Pods} other pods{(others.Largest.Count > 0 ? " (" + string.Join(", ", others.Largest) + ")" : "")}" +
                  $"{(keptMillis > 0 ? $", {NodeCpuUse.Cpu(keptMillis)} of this tuning's running pods" : "")} and a margin of {NodeCpuUse.Cpu(options.CpuMarginMillis)} " +
                  $"leaves {NodeCpuUse.Cpu(left)} for {sharing} pod{(sharing == 1 ? "" : "s")}"));
        }
        return sizes;
    }

    /// <summary>
    /// The NUMA nodes of a node that get the tuning's pods: null for every one (numaNodes All; no selected NIC on the
    /// node; a selected NIC whose NUMA node is unknown or has no CPUs), else those of the selected NICs. The note says
    /// what was left out or why every node gets one, for the status.
    /// </summary>
    public static (IReadOnlySet<int>? Only, string? Note) PodNumaNodes(NetworkTuning tuning, string node, NodeTopology topology)
    {
        if (tuning.Spec.DataPlane?.NumaNodes == DataPlaneNumaNodes.All) return (null, null);
        var nics = (topology.Nics ?? []).Where(n => InterfaceMatcher.Matches(tuning.Spec.Nic?.Interfaces, n.Name, n.Driver)).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        if (nics.Count == 0) return (null, null);
        var unknown = nics.Where(n => n.NumaNode < 0).Select(n => n.Name).ToList();
        if (unknown.Count > 0)
            return (null, $"node {node}: the NUMA node of {string.Join(", ", unknown.Take(8))} is unknown (numa_node -1): a pod on every NUMA node");
        var withCpus = (topology.NumaNodes ?? []).Where(n => CpuList.TryParse(n.Cpus, out var cpus) && cpus.Count > 0).Select(n => n.Id).ToHashSet();
        var local = nics.Select(n => n.NumaNode).Where(withCpus.Contains).ToHashSet();
        var where = string.Join(", ", nics.Take(8).Select(n => $"{n.Name} on {n.NumaNode}"));
        if (local.Count == 0)
            return (null, $"node {node}: no selected NIC is on a NUMA node with CPUs ({where}): a pod on every NUMA node");
        // With a pod per package, the NUMA nodes that share a package with a NIC's are covered by its pod.
        var packageOf = PackageOf(topology);
        var covered = tuning.Spec.DataPlane?.PodPer == DataPlanePodUnit.Package
            ? (topology.NumaNodes ?? []).Where(n => packageOf(n) is { } p && (topology.NumaNodes ?? []).Any(l => local.Contains(l.Id) && packageOf(l) == p)).Select(n => n.Id).ToHashSet()
            : local;
        var left = withCpus.Except(local).Except(covered).Order().ToList();
        return (local, left.Count == 0 ? null
            : $"node {node}: no pod on NUMA node{(left.Count == 1 ? "" : "s")} {string.Join(", ", left)}, which no selected NIC is on ({where}); dataPlane.numaNodes All puts one on every NUMA node");
    }

    /// <summary>True when the node's allocatable shows at least one of <paramref name="resource"/>.</summary>
    public static bool Advertises(V1Node? node, string resource) =>
        node?.Status?.Allocatable?.TryGetValue(resource, out var quantity) == true && quantity.ToDecimal() >= 1;

    /// <summary>The pods to run on a node (those that need not wait).</summary>
    public static IReadOnlyList<V1Pod> Build(NetworkTuning tuning, string node, V1Node? nodeObject, NodeTopology? topology, DataPlaneOptions options,
        NodeCpuUse? others = null) =>
        Plan(tuning, node, nodeObject, topology, options, others).Where(s => s.Pod is not null).Select(s => s.Pod!).ToList();

    /// <summary>Hugepages of one size a socket's pod requests, in bytes (0: none).</summary>
    public static long HugepageBytes(HugepagesSpec pages, int numaNode)
    {
        var count = pages.PerNumaNode?.FirstOrDefault(o => o.NumaNode == numaNode)?.Pages ?? pages.PagesPerNumaNode;
        return count <= 0 ? 0 : (long)count * (pages.Size == "1Gi" ? 1L << 30 : 2L << 20);
    }

    /// <summary>Null when the node's allocatable shows every hugepage the sockets' pods request, else what is missing.</summary>
    public static string? HugepagesShortfall(NetworkTuning tuning, V1Node? node, IEnumerable<int> sockets)
    {
        var ids = sockets.ToList();
        var missing = new List<string>();
        foreach (var pages in tuning.Spec.Hugepages ?? [])
        {
            var wanted = ids.Sum(id => HugepageBytes(pages, id));
            if (wanted == 0) continue;
            var resource = "hugepages-" + pages.Size;
            var shown = node?.Status?.Allocatable?.TryGetValue(resource, out var q) == true ? (long)q!.ToDecimal() : 0;
            if (shown < wanted) missing.Add($"{resource} allocatable {Bytes(shown)}, the pods need {Bytes(wanted)}");
        }
        if (missing.Count == 0) return null;
        return $"node {node?.Metadata?.Name}: {string.Join("; ", missing)}; the kubelet counts hugepages when it starts, so the pages the agent reserved show once the kubelet restarted";
    }

    private static string Bytes(long bytes) =>
        bytes % (1L << 30) == 0 && bytes > 0 ? $"{bytes >> 30}Gi" : $"{bytes >> 20}Mi";

    private static V1Pod BuildPod(NetworkTuning tuning, DataPlaneSpec dp, string node, PodUnit unit, string podName, int cpus, int cap, DataPlaneOptions options)
    {
        // Each socket's pod has its own admin port on the shared host network namespace.
        var numaNode = unit.Id;
        var adminPort = AdminPort(dp, numaNode);
        var name = tuning.Metadata.Name;
        var resources = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new(cpus.ToString(CultureInfo.InvariantCulture)),
            ["memory"] = new(options.MemoryPerSocket),
        };
        // One device of each of its NUMA nodes' resources: their topology is what makes the Topology Manager take the
        // pod's CPUs from those nodes (a pod has no field to name a NUMA node).
        foreach (var numa in unit.NumaNodes) resources[NumaResources.ResourceName(numa)] = new("1");
        var volumes = new List<V1Volume>();
        var mounts = new List<V1VolumeMount>();
        var hugepages = false;
        foreach (var pages in tuning.Spec.Hugepages ?? [])
        {
            var bytes = unit.NumaNodes.Sum(numa => HugepageBytes(pages, numa));
            if (bytes == 0) continue;
            var quantity = pages.Size == "1Gi" ? $"{bytes >> 30}Gi" : $"{bytes >> 20}Mi";
            resources["hugepages-" + pages.Size] = new ResourceQuantity(quantity);
            var volume = "hugepages-" + pages.Size.ToLowerInvariant();
            volumes.Add(new V1Volume { Name = volume, EmptyDir = new V1EmptyDirVolumeSource { Medium = "HugePages-" + pages.Size } });
            mounts.Add(new V1VolumeMount { Name = volume, MountPath = "/dev/hugepages-" + pages.Size.ToLowerInvariant() });
            hugepages |= pages.Size == "2Mi";
        }

        // The data plane knows nothing of Kubernetes: everything it needs arrives as flags. Its CPUs and NUMA node are
        // whatever the kubelet gave the container: it reads them from its affinity.
        var args = new List<string>();
        if (dp.Mode == DataPlaneMode.Proxy) args.AddRange(["--upstream", string.Join(',', dp.Proxy?.Upstreams ?? [])]);
        else args.AddRange(["--root", StaticRoot]);
        args.AddRange(
        [
            "--port", dp.Port.ToString(CultureInfo.InvariantCulture),
            "--admin-port", adminPort.ToString(CultureInfo.InvariantCulture),
            // The admin port listens on the pod IP only (the node's address: host network), where the kubelet's
            // probes (no host: set), the PodMonitor's scrape and the operator's /readyz read all go; not on 0.0.0.0,
            // which would open it on every other interface of the node too. The kubelet expands $(POD_IP).
            "--admin-address", $"$({PodIpVariable})",
            "--io-engine", dp.IoEngine switch { IoEngine.IoUring => "iouring", IoEngine.Epoll => "epoll", _ => "auto" },
        ]);
        if (dp.WorkersPerSocket is { } workers) args.AddRange(["--workers", workers.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange(MemoryFlags(new ResourceQuantity(options.MemoryPerSocket), dp.WorkersPerSocket ?? cpus, dp.Mode == DataPlaneMode.Proxy));
        if (hugepages) args.Add("--hugepages");
        var env = new List<V1EnvVar>
        {
            new() { Name = "NETTUNE_SOCKET", Value = numaNode.ToString(CultureInfo.InvariantCulture) },
            new() { Name = "NETTUNE_MODE", Value = dp.Mode.ToString() },
            new() { Name = "NODE_NAME", Value = node },
            new() { Name = PodIpVariable, ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "status.podIP" } } },
        };
        if (dp.Mode == DataPlaneMode.StaticFiles && dp.StaticFiles?.HostPath is { } hostPath)
        {
            volumes.Add(new V1Volume { Name = "static-root", HostPath = new V1HostPathVolumeSource { Path = hostPath, Type = "Directory" } });
            mounts.Add(new V1VolumeMount { Name = "static-root", MountPath = StaticRoot, ReadOnlyProperty = true });
        }

        var container = new V1Container
        {
            Name = "dataplane",
            Image = dp.Image,
            ImagePullPolicy = "IfNotPresent",
            Args = args,
            Env = env,
            // With host networking every declared port is also a host port, and the scheduler refuses a second pod
            // with the same host port on the node. The admin port (the PodMonitor scrapes it by the name "metrics")
            // is adminPort + NUMA id, so each socket's pod declares its own. The data port stays undeclared: every
            // socket's pod listens on it, sharing it through SO_REUSEPORT, and declaring it would let only one of
            // them be scheduled per node.
            Ports = [new V1ContainerPort { Name = MetricsPortName, ContainerPort = adminPort, Protocol = "TCP" }],
            // Requests equal limits in whole CPUs: Guaranteed QoS, so the kubelet's static CPU manager gives exclusive CPUs.
            Resources = new V1ResourceRequirements { Requests = resources, Limits = new Dictionary<string, ResourceQuantity>(resources) },
            ReadinessProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = "/readyz", Port = adminPort },
                PeriodSeconds = 5,
                FailureThreshold = 2,
            },
            LivenessProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = adminPort },
                PeriodSeconds = 10,
                FailureThreshold = 3,
            },
            VolumeMounts = [.. mounts, new V1VolumeMount { Name = "tmp", MountPath = "/tmp" }],
            SecurityContext = RestrictedContainer,
        };
        volumes.Add(new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource { SizeLimit = new ResourceQuantity("16Mi") } });

        var pod = new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta
            {
                Name = podName,
                NamespaceProperty = options.Namespace,
                Labels = new Dictionary<string, string>
                {
                    [Names.AppName] = Names.DataPlaneApp,
                    [Names.ManagedBy] = Names.ManagedByValue,
                    [Names.TuningLabel] = Names.LabelValue(name),
                    [Names.NodeLabel] = Names.LabelValue(node),
                    [Names.NumaLabel] = numaNode.ToString(CultureInfo.InvariantCulture),
                },
                OwnerReferences = [AgentDaemonSetBuilder.OwnerReference(tuning, controller: true)],
            },
            Spec = new V1PodSpec
            {
                Affinity = new V1Affinity { NodeAffinity = new V1NodeAffinity { RequiredDuringSchedulingIgnoredDuringExecution = new V1NodeSelector { NodeSelectorTerms = [NodeTerm(node, options)] } } },
                PriorityClassName = string.IsNullOrEmpty(dp.PriorityClassName) ? null : dp.PriorityClassName,
                HostNetwork = true,
                DnsPolicy = "ClusterFirstWithHostNet",
                RestartPolicy = "Always",
                TerminationGracePeriodSeconds = 30,
                Containers = [container],
                Volumes = volumes,
                // The data plane never talks to the API server: no token to steal from a host-network pod.
                AutomountServiceAccountToken = false,
                ImagePullSecrets = PullSecrets.References(options.ImagePullSecrets),
                SecurityContext = RestrictedPod(dp),
            },
        };
        pod.Metadata.Annotations = new Dictionary<string, string>
        {
            [Names.SpecHashAnnotation] = Names.Hash(pod.Spec),
            [Names.CpuCapAnnotation] = cap.ToString(CultureInfo.InvariantCulture),
        };
        return pod;
    }

    /// <summary>
    /// The connection, file-cache and upstream limits for a pod with <paramref name="memory"/> as its limit and
    /// <paramref name="workers"/> workers, computed with the data plane's own budget (MemoryBudget) at its default
    /// session sizes: passed as flags, so the pod's numbers are visible in its spec and need no cgroup reading.
    /// </summary>
    public static IReadOnlyList<string> MemoryFlags(ResourceQuantity memory, int workers, bool proxy)
    {
        var limits = MemoryBudget.Derive((long)memory.ToDecimal(), Math.Max(1, workers),
            proxy ? MemoryBudget.DefaultProxySessionBytes : MemoryBudget.DefaultStaticSessionBytes, proxy);
        var flags = new List<string> { "--max-connections", limits.MaxConnectionsPerWorker.ToString(CultureInfo.InvariantCulture) };
        if (proxy) flags.AddRange(["--upstream-max-connections", limits.UpstreamConnectionsPerWorker.ToString(CultureInfo.InvariantCulture)]);
        else flags.AddRange(["--memory-cache-bytes", limits.MemoryCacheBytesPerWorker.ToString(CultureInfo.InvariantCulture)]);
        return flags;
    }

    /// <summary>
    /// The node by name (matchFields on metadata.name, as the DaemonSet controller places its pods) and, when set, the
    /// label that says the node's tuning is applied for this boot. No tolerations: a cordoned or tainted node gets no new pod.
    /// </summary>
    public static V1NodeSelectorTerm NodeTerm(string node, DataPlaneOptions options) => new()
    {
        MatchFields = [new V1NodeSelectorRequirement { Key = "metadata.name", OperatorProperty = "In", Values = [node] }],
        MatchExpressions = string.IsNullOrEmpty(options.RequiredNodeLabel)
            ? null
            : [new V1NodeSelectorRequirement { Key = options.RequiredNodeLabel, OperatorProperty = "Exists" }],
    };

    /// <summary>The node a data-plane pod is for: the pod's node if bound, else its node label.</summary>
    public static string NodeOf(V1Pod pod) =>
        pod.Spec?.NodeName is { Length: > 0 } bound ? bound
        : pod.Spec?.Affinity?.NodeAffinity?.RequiredDuringSchedulingIgnoredDuringExecution?.NodeSelectorTerms?.FirstOrDefault()?.MatchFields?
              .FirstOrDefault(f => f.Key == "metadata.name")?.Values?.FirstOrDefault()
          ?? "";
}
