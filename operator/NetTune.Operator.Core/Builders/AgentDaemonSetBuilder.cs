using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Builders;

public sealed record AgentOptions(string Namespace, string Image, string JournalHostPath = "/var/lib/nettune", int MetricsPort = 9101)
{
    /// <summary>The agents' --log-level; null leaves the agent's own default.</summary>
    public string? LogLevel { get; init; }

    public V1ResourceRequirements Resources { get; init; } = DefaultResources();

    /// <summary>By default every taint: the agent must reach every node it is asked to tune.</summary>
    public IList<V1Toleration> Tolerations { get; init; } = [new V1Toleration { OperatorProperty = "Exists" }];

    /// <summary>Labels every agent node must have, on top of the tunings' selectors; null or empty: none.</summary>
    public IDictionary<string, string>? NodeSelector { get; init; }

    /// <summary>
    /// Secrets (in the agents' namespace) the kubelet pulls the agent image with. On the pod spec rather than on the
    /// agent ServiceAccount, which the operator deletes with the last tuning and makes anew.
    /// </summary>
    public IReadOnlyList<string> ImagePullSecrets { get; init; } = [];

    /// <summary>How the agents get their kubelet restarted for hugepages; by default they only report KubeletRestartRequired.</summary>
    public KubeletRestart KubeletRestart { get; init; } = KubeletRestart.None;

    /// <summary>
    /// The kubelet's root dir on the nodes (its --root-dir): mounted read-only into the agent at the same path below
    /// /host, for the CPU manager checkpoint that says which CPUs containers hold exclusively; its seccomp folder is
    /// mounted read-write over it, for NetTune's seccomp profile for the data-plane pods.
    /// </summary>
    public string KubeletRootDir { get; init; } = SeccompProfiles.DefaultKubeletRootDir;

    /// <summary>The host's kubelet seccomp folder, where the agents install NetTune's profile and the kubelet reads Localhost profiles.</summary>
    public string KubeletSeccompDir => KubeletRootDir.TrimEnd('/') + "/seccomp";

    public static V1ResourceRequirements DefaultResources() => new()
    {
        Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("20m"), ["memory"] = new("64Mi") },
        Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m"), ["memory"] = new("256Mi") },
    };
}

/// <summary>
/// How an agent gets its node's kubelet restarted once the kernel holds hugepages the kubelet (which counts them at its
/// start only) does not show: not at all (the KubeletRestartRequired condition tells an admin), by a request file in the
/// agent's host folder that a host-side watcher acts on, or by a command run in the agent pod with the host's PID
/// namespace (nsenter into PID 1, systemctl).
/// </summary>
/// <param name="RequestFile">The file, inside the agent's journal folder (on the host: in the journal's hostPath).</param>
public sealed record KubeletRestart(string? RequestFile, string? Command)
{
    public const string RequestFileName = "kubelet-restart-request";

    public static readonly KubeletRestart None = new(null, null);

    /// <summary>Parses none, request-file or command:COMMAND.</summary>
    public static bool TryParse(string text, out KubeletRestart restart, out string? error)
    {
        restart = None;
        error = null;
        if (text is "" or "none") return true;
        if (text == "request-file")
        {
            restart = new KubeletRestart(AgentDaemonSetBuilder.JournalDir + "/" + RequestFileName, null);
            return true;
        }
        if (text.StartsWith("command:", StringComparison.Ordinal) && text["command:".Length..].Trim() is { Length: > 0 } command)
        {
            restart = new KubeletRestart(null, command);
            return true;
        }
        error = $"'{text}' is none, request-file or command:COMMAND (e.g. command:nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet)";
        return false;
    }
}

/// <summary>
/// The node agent DaemonSet, shared by every NetworkTuning (one agent per node, whatever the number of tunings): it
/// runs on the nodes that carry the operator's agent label (those any served tuning selects, and those not yet
/// reverted). Nothing owns it: the garbage collector would remove it with the last tuning, and the agents with it,
/// while nodes the tuning timed out on still hold their settings. The operator deletes it once no tuning is served and
/// no node needs an agent any more (<see cref="AgentPlacement"/>).
/// </summary>
public static class AgentDaemonSetBuilder
{
    public const string AgentPriorityClass = "system-node-critical";

    /// <summary>
    /// The tunings the agents serve: live ones, and deleted ones whose revert is still pending (they keep the
    /// finalizer until their nodes reported Reverted). A deleted tuning without the finalizer is on its way out of
    /// the API server; the DaemonSet must neither be created nor kept for it.
    /// </summary>
    public static IReadOnlyList<NetworkTuning> ServedTunings(IEnumerable<NetworkTuning> tunings) =>
        tunings.Where(t => t.Metadata.DeletionTimestamp is null || (t.Metadata.Finalizers?.Contains(Names.Finalizer) ?? false)).ToList();

    public const string JournalDir = "/var/lib/nettune";

    /// <summary>Where the host's folders are mounted in the agent container, so host paths keep their names under it.</summary>
    public const string HostRoot = "/host";

    private static List<string> Args(AgentOptions options)
    {
        var args = new List<string> { "--host-root", HostRoot, "--journal-dir", JournalDir, "--metrics-port", options.MetricsPort.ToString(), "--kubelet-root-dir", options.KubeletRootDir };
        if (options.LogLevel is { } level) args.AddRange(["--log-level", level]);
        if (options.KubeletRestart.Command is { } command) args.AddRange(["--kubelet-restart-command", command]);
        else if (options.KubeletRestart.RequestFile is { } file) args.AddRange(["--kubelet-restart-request-file", file]);
        return args;
    }

    public static V1DaemonSet Build(AgentOptions options)
    {
        var labels = new Dictionary<string, string>
        {
            [Names.AppName] = Names.AgentApp,
            [Names.ManagedBy] = Names.ManagedByValue,
        };
        var selectorLabels = new Dictionary<string, string> { [Names.AppName] = Names.AgentApp };

        // Placed by a node label the operator manages (see AgentPlacement), not by the tunings' selectors: a node
        // relabelled out of every selector must keep its agent until it reported Reverted, and the DaemonSet controller
        // would remove the agent at once if the affinity followed the selectors.
        var nodeSelector = new Dictionary<string, string>(options.NodeSelector ?? new Dictionary<string, string>()) { [Names.AgentNodeLabel] = AgentPlacement.LabelValue };

        var container = new V1Container
        {
            Name = "agent",
            Image = options.Image,
            ImagePullPolicy = "IfNotPresent",
            // The agent reads NODE_NAME; the journal folder and metrics port go by flags it shares with its issue.
            Args = Args(options),
            Env =
            [
                new V1EnvVar { Name = "NODE_NAME", ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = "spec.nodeName" } } },
            ],
            SecurityContext = new V1SecurityContext { Privileged = true },
            Resources = options.Resources,
            VolumeMounts =
            [
                new V1VolumeMount { Name = "host-sys", MountPath = "/host/sys" },
                new V1VolumeMount { Name = "host-proc", MountPath = "/host/proc" },
                new V1VolumeMount { Name = "journal", MountPath = JournalDir },
                // The file is replaced (written and renamed) on every change: its folder is mounted, not the file.
                // HostToContainer: pod volumes the kubelet unmounts on the host go from the agent's copy too; a
                // private copy would keep them busy and the kubelet could not remove the pods' folders.
                new V1VolumeMount { Name = "kubelet-root", MountPath = HostRoot + options.KubeletRootDir, ReadOnlyProperty = true, MountPropagation = "HostToContainer" },
                new V1VolumeMount { Name = "kubelet-seccomp", MountPath = HostRoot + options.KubeletSeccompDir },
                // The NUMA device plugin's sockets go there, and it registers on the kubelet's socket there.
                new V1VolumeMount { Name = "device-plugins", MountPath = HostRoot + NumaResources.KubeletDevicePluginDir },
                PodBoundToken.Mount,
            ],
            Ports = [new V1ContainerPort { Name = "metrics", ContainerPort = options.MetricsPort }],
            // The liveness probe waits for the startup probe: an agent still starting on a slow node (the JIT-compiled
            // agent took 50 s to 2 min to listen on an emulated two-socket guest, and then answered /healthz in over
            // 1 s, the default timeout, while still compiling) would otherwise be killed before it listens, over and over.
            StartupProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = options.MetricsPort },
                PeriodSeconds = 5,
                TimeoutSeconds = 5,
                FailureThreshold = 60,
            },
            LivenessProbe = new V1Probe
            {
                HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = options.MetricsPort },
                PeriodSeconds = 20,
                TimeoutSeconds = 5,
                FailureThreshold = 3,
            },
        };

        var template = new V1PodTemplateSpec
        {
            Metadata = new V1ObjectMeta { Labels = labels },
            Spec = new V1PodSpec
            {
                ServiceAccountName = Names.AgentServiceAccount,
                // A restart command reaches the kubelet through the host's PID 1 (nsenter); nothing else needs it.
                HostPID = options.KubeletRestart.Command is not null ? true : null,
                AutomountServiceAccountToken = false,
                ImagePullSecrets = PullSecrets.References(options.ImagePullSecrets),
                HostNetwork = true,
                DnsPolicy = "ClusterFirstWithHostNet",
                // The agent holds the node's tuning and its revert: it must neither be preempted nor evicted first.
                PriorityClassName = AgentPriorityClass,
                Tolerations = options.Tolerations.Count == 0 ? null : options.Tolerations,
                NodeSelector = nodeSelector,
                TerminationGracePeriodSeconds = 30,
                Containers = [container],
                Volumes =
                [
                    new V1Volume { Name = "host-sys", HostPath = new V1HostPathVolumeSource { Path = "/sys", Type = "Directory" } },
                    new V1Volume { Name = "host-proc", HostPath = new V1HostPathVolumeSource { Path = "/proc", Type = "Directory" } },
                    new V1Volume { Name = "journal", HostPath = new V1HostPathVolumeSource { Path = options.JournalHostPath, Type = "DirectoryOrCreate" } },
                    // Directory: a kubelet root that is not there is a misconfigured chart value, said by the pod's
                    // events, rather than an agent that would put interrupts on Guaranteed pods' CPUs unknowingly.
                    new V1Volume { Name = "kubelet-root", HostPath = new V1HostPathVolumeSource { Path = options.KubeletRootDir, Type = "Directory" } },
                    // NetTune's seccomp profile goes there; the kubelet reads Localhost profiles from it.
                    new V1Volume { Name = "kubelet-seccomp", HostPath = new V1HostPathVolumeSource { Path = options.KubeletSeccompDir, Type = "DirectoryOrCreate" } },
                    // Fixed in every kubelet, whatever its --root-dir (so not below KubeletRootDir).
                    new V1Volume { Name = "device-plugins", HostPath = new V1HostPathVolumeSource { Path = NumaResources.KubeletDevicePluginDir, Type = "DirectoryOrCreate" } },
                    PodBoundToken.Volume,
                ],
            },
        };

        var daemonSet = new V1DaemonSet
        {
            ApiVersion = "apps/v1",
            Kind = "DaemonSet",
            Metadata = new V1ObjectMeta
            {
                Name = Names.AgentDaemonSet,
                NamespaceProperty = options.Namespace,
                Labels = labels,
            },
            Spec = new V1DaemonSetSpec
            {
                Selector = new V1LabelSelector { MatchLabels = selectorLabels },
                Template = template,
                UpdateStrategy = new V1DaemonSetUpdateStrategy
                {
                    Type = "RollingUpdate",
                    RollingUpdate = new V1RollingUpdateDaemonSet { MaxUnavailable = "10%" },
                },
            },
        };
        daemonSet.Metadata.Annotations = new Dictionary<string, string> { [Names.SpecHashAnnotation] = Names.Hash(daemonSet.Spec) };
        return daemonSet;
    }

    public static V1ServiceAccount BuildServiceAccount(AgentOptions options) => new()
    {
        ApiVersion = "v1",
        Kind = "ServiceAccount",
        Metadata = new V1ObjectMeta
        {
            Name = Names.AgentServiceAccount,
            NamespaceProperty = options.Namespace,
            Labels = new Dictionary<string, string> { [Names.AppName] = Names.AgentApp, [Names.ManagedBy] = Names.ManagedByValue },
        },
    };

    public static V1OwnerReference OwnerReference(NetworkTuning tuning, bool controller) => new()
    {
        ApiVersion = ApiGroup.GroupVersion,
        Kind = NetworkTuning.KindName,
        Name = tuning.Metadata.Name,
        Uid = tuning.Metadata.Uid,
        Controller = controller,
        BlockOwnerDeletion = controller,
    };
}
