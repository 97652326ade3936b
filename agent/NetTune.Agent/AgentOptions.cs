namespace NetTune.Agent;

public enum ChannelBackend { Ethtool, Fixture }

/// <summary>Host: net sysctls only when the agent's network namespace is the host's (the DaemonSet's hostNetwork); Own: in whatever namespace the agent runs.</summary>
public enum NetNamespaceMode { Host, Own }

/// <summary>The agent's settings, from flags and environment.</summary>
public sealed record AgentOptions
{
    public required string HostRoot { get; init; }
    public required string NodeName { get; init; }
    public required string JournalDir { get; init; }
    public string? Kubeconfig { get; init; }
    public int MetricsPort { get; init; } = 9101;
    public TimeSpan DriftInterval { get; init; } = TimeSpan.FromSeconds(30);
    public ChannelBackend ChannelBackend { get; init; } = ChannelBackend.Ethtool;
    /// <summary>Discover, plan and publish, but never write to the host (see TuningEngine.PlanOnly).</summary>
    public bool PlanOnly { get; init; }
    public NetNamespaceMode NetNamespace { get; init; } = NetNamespaceMode.Host;
    /// <summary>Run (no shell) when the node's capacity lacks hugepages the kernel holds; null: only report KubeletRestartRequired.</summary>
    public string? KubeletRestartCommand { get; init; }
    /// <summary>Written when the kubelet must restart, for a host-side watcher (used when no command is given); null: none.</summary>
    public string? KubeletRestartRequestFile { get; init; }
    /// <summary>How long after the restart command the node's capacity may take to show the hugepages.</summary>
    public TimeSpan KubeletRestartTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>How long the API server may stay unreachable after NIC changes before they are rolled back; zero: no check.</summary>
    public TimeSpan ConnectivityTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>How long the journal may hold changes while this node has no NetworkTuningNodeState before the agent reverts them; zero: never.</summary>
    public TimeSpan OrphanGrace { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>
    /// The kubelet's root dir on the host; its CPU manager checkpoint says which CPUs are containers' exclusively, and
    /// NetTune's seccomp profile for the data-plane pods goes into its seccomp folder.
    /// </summary>
    public string KubeletRootDir { get; init; } = Core.Topology.KubeletCpuAssignment.DefaultKubeletRootDir;
    /// <summary>
    /// The kubelet's device-plugins folder on the host (read under <see cref="HostRoot"/>), where the NUMA device plugin
    /// serves and registers; empty: no device plugin. Every kubelet uses /var/lib/kubelet/device-plugins whatever its
    /// --root-dir.
    /// </summary>
    public string DevicePluginDir { get; init; } = Core.DevicePlugin.NumaDevicePlan.DefaultDirectory;
    /// <summary>How often the device plugin looks for a restarted kubelet while its folder cannot be watched (inotify) or after a failed round.</summary>
    public TimeSpan DevicePluginPollInterval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How often the kubelet's CPU assignment is read for changes while the kubelet's root dir cannot be watched (inotify).</summary>
    public TimeSpan KubeletCpuPollInterval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How often a loop woken by inotify looks anyway: a safety net, not the way changes are found.</summary>
    public TimeSpan WatchedFolderRecheckInterval { get; init; } = TimeSpan.FromMinutes(1);
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
}
