using System.Globalization;
using k8s.Models;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Builders;

/// <param name="MemoryPerSocket">Memory request and limit of each pod (equal, for Guaranteed QoS).</param>
public sealed record DataPlaneOptions(string Namespace, string MemoryPerSocket = "512Mi")
{
    /// <summary>Images, host paths and ports a tuning's data plane may use; a refused one gets no pods.</summary>
    public DataPlanePolicy Policy { get; init; } = DataPlanePolicy.Any;
}

/// <summary>
/// One data-plane pod per NUMA socket of a tuned node: bound to the node by nodeName, Guaranteed QoS with as many whole
/// CPUs as the socket has (less the reserved ones) so the static CPU manager pins it there, the socket's hugepages,
/// host networking, and its NUMA id and CPU list on the command line.
/// </summary>
public static class DataPlanePodBuilder
{
    public const string StaticRoot = "/srv/www";

    /// <summary>Name of the declared admin port; the chart's PodMonitor scrapes /metrics on it.</summary>
    public const string MetricsPortName = "metrics";

    public static string PodName(string tuning, string node, int numaNode) => Names.ObjectName($"{tuning}-dp-{node}-numa{numaNode}");

    /// <summary>The admin port of one socket's pod: spec.dataPlane.adminPort plus the NUMA id.</summary>
    public static int AdminPort(DataPlaneSpec dp, int numaNode) => dp.AdminPort + numaNode;

    /// <summary>The CPUs of a socket that the data plane gets: the socket's, less the tuning's reserved CPUs.</summary>
    public static IReadOnlyList<int> SocketCpus(NumaNodeInfo numa, string? reservedCpus)
    {
        CpuList.TryParse(numa.Cpus, out var cpus);
        CpuList.TryParse(reservedCpus, out var reserved);
        var skip = reserved.ToHashSet();
        return cpus.Where(c => !skip.Contains(c)).ToList();
    }

    /// <summary>The data plane's user: the image's own non-root "app" user (images/dataplane), stated so the kubelet checks it.</summary>
    public const long RunAsUser = 1654;

    // The Pod Security "restricted" profile: non-root, no privilege escalation, no capabilities, the runtime's
    // seccomp profile. Nothing the data plane does needs more: ports >= 1024 (DataPlanePolicy), its own affinity
    // and memory policy, io_uring, hugepage mmap of its emptyDir. A read-only root; /tmp is an emptyDir.
    private static V1PodSecurityContext RestrictedPod => new()
    {
        RunAsNonRoot = true,
        RunAsUser = RunAsUser,
        RunAsGroup = RunAsUser,
        SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
    };

    private static V1SecurityContext RestrictedContainer => new()
    {
        AllowPrivilegeEscalation = false,
        ReadOnlyRootFilesystem = true,
        Capabilities = new V1Capabilities { Drop = ["ALL"] },
    };

    public static IReadOnlyList<V1Pod> Build(NetworkTuning tuning, string node, NodeTopology? topology, DataPlaneOptions options)
    {
        var pods = new List<V1Pod>();
        var dp = tuning.Spec.DataPlane;
        if (dp is null || !dp.Enabled || topology?.NumaNodes is null) return pods;
        // The admission webhook refuses such tunings; this catches those admitted before the lists changed.
        if (options.Policy.Refusal(dp) is not null) return pods;
        foreach (var numa in topology.NumaNodes.OrderBy(n => n.Id))
        {
            var cpus = SocketCpus(numa, tuning.Spec.Nic?.IrqAffinity?.ReservedCpus);
            if (cpus.Count == 0) continue;
            pods.Add(BuildPod(tuning, dp, node, numa.Id, cpus, options));
        }
        return pods;
    }

    private static V1Pod BuildPod(NetworkTuning tuning, DataPlaneSpec dp, string node, int numaNode, IReadOnlyList<int> cpus, DataPlaneOptions options)
    {
        var cpuList = CpuList.Format(cpus);
        // Each socket's pod has its own admin port on the shared host network namespace.
        var adminPort = AdminPort(dp, numaNode);
        var name = tuning.Metadata.Name;
        var resources = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new(cpus.Count.ToString(CultureInfo.InvariantCulture)),
            ["memory"] = new(options.MemoryPerSocket),
        };
        var volumes = new List<V1Volume>();
        var mounts = new List<V1VolumeMount>();
        var hugepages = false;
        foreach (var pages in tuning.Spec.Hugepages ?? [])
        {
            var count = pages.PerNumaNode?.FirstOrDefault(o => o.NumaNode == numaNode)?.Pages ?? pages.PagesPerNumaNode;
            if (count <= 0) continue;
            var quantity = pages.Size == "1Gi" ? $"{count}Gi" : $"{(long)count * 2}Mi";
            resources["hugepages-" + pages.Size] = new ResourceQuantity(quantity);
            var volume = "hugepages-" + pages.Size.ToLowerInvariant();
            volumes.Add(new V1Volume { Name = volume, EmptyDir = new V1EmptyDirVolumeSource { Medium = "HugePages-" + pages.Size } });
            mounts.Add(new V1VolumeMount { Name = volume, MountPath = "/dev/hugepages-" + pages.Size.ToLowerInvariant() });
            hugepages |= pages.Size == "2Mi";
        }

        // The data plane knows nothing of Kubernetes: everything it needs arrives as flags.
        var args = new List<string>();
        if (dp.Mode == DataPlaneMode.Proxy) args.AddRange(["--upstream", string.Join(',', dp.Proxy?.Upstreams ?? [])]);
        else args.AddRange(["--root", StaticRoot]);
        args.AddRange(
        [
            "--port", dp.Port.ToString(CultureInfo.InvariantCulture),
            "--admin-port", adminPort.ToString(CultureInfo.InvariantCulture),
            "--cpus", cpuList,
            "--numa-node", numaNode.ToString(CultureInfo.InvariantCulture),
            "--io-engine", dp.IoEngine switch { IoEngine.IoUring => "iouring", IoEngine.Epoll => "epoll", _ => "auto" },
        ]);
        if (dp.WorkersPerSocket is { } workers) args.AddRange(["--workers", workers.ToString(CultureInfo.InvariantCulture)]);
        if (hugepages) args.Add("--hugepages");
        var env = new List<V1EnvVar>
        {
            new() { Name = "NETTUNE_NUMA_NODE", Value = numaNode.ToString(CultureInfo.InvariantCulture) },
            new() { Name = "NETTUNE_CPUS", Value = cpuList },
            new() { Name = "NETTUNE_MODE", Value = dp.Mode.ToString() },
            new() { Name = "NODE_NAME", Value = node },
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
                Name = PodName(name, node, numaNode),
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
                NodeName = node,
                HostNetwork = true,
                DnsPolicy = "ClusterFirstWithHostNet",
                RestartPolicy = "Always",
                TerminationGracePeriodSeconds = 30,
                Tolerations = [new V1Toleration { OperatorProperty = "Exists" }],
                Containers = [container],
                Volumes = volumes,
                // The data plane never talks to the API server: no token to steal from a host-network pod.
                AutomountServiceAccountToken = false,
                SecurityContext = RestrictedPod,
            },
        };
        pod.Metadata.Annotations = new Dictionary<string, string> { [Names.SpecHashAnnotation] = Names.Hash(pod.Spec) };
        return pod;
    }
}
