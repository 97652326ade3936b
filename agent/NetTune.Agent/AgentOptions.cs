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
    /// <summary>The kubelet's --root-dir: NetTune's seccomp profile goes into its seccomp folder; null: none is installed.</summary>
    public string? KubeletRootDir { get; init; }
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;
}
