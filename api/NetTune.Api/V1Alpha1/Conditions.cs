namespace NetTune.Api.V1Alpha1;

/// <summary>Condition types and reasons both sides of the API agree on.</summary>
public static class ConditionTypes
{
    // NetworkTuning
    public const string Ready = "Ready";
    public const string Progressing = "Progressing";
    public const string Degraded = "Degraded";
    public const string Conflict = "Conflict";
    public const string DataPlaneAvailable = "DataPlaneAvailable";
    /// <summary>Every selected node runs an agent; False names the nodes whose agent pod was refused or does not run.</summary>
    public const string AgentsAvailable = "AgentsAvailable";

    // NetworkTuningNodeState
    public const string Applied = "Applied";
    public const string Reverted = "Reverted";
    /// <summary>True while the kernel holds hugepages the node's capacity does not show: the kubelet reads them only at start.</summary>
    public const string KubeletRestartRequired = "KubeletRestartRequired";
}

public static class ConditionReasons
{
    public const string InvalidSpec = "InvalidSpec";
    public const string RolloutInProgress = "RolloutInProgress";
    public const string RolloutComplete = "RolloutComplete";
    public const string RolloutPaused = "RolloutPaused";
    public const string NodeFailed = "NodeFailed";
    public const string KnobConflict = "KnobConflict";
    public const string NoConflict = "NoConflict";
    public const string NoMatchingNodes = "NoMatchingNodes";
    public const string Applied = "Applied";
    public const string Applying = "Applying";
    public const string DryRun = "DryRun";
    public const string ApplyFailed = "ApplyFailed";
    public const string Reverted = "Reverted";
    public const string RevertFailed = "RevertFailed";
    public const string JournalCorrupt = "JournalCorrupt";
    public const string AsExpected = "AsExpected";
    /// <summary>NIC changes cut the node off from the API server and were undone from the journal.</summary>
    public const string RolledBack = "RolledBack";
    public const string KubeletRestartRequired = "KubeletRestartRequired";
    public const string KubeletRestartFailed = "KubeletRestartFailed";
    public const string KubeletSeesHugepages = "KubeletSeesHugepages";
    public const string NodeUnreadable = "NodeUnreadable";
    /// <summary>A hugepage pool fell short on every try for this generation and is left with the pages it got.</summary>
    public const string HugepagesShortfall = "HugepagesShortfall";
    /// <summary>The kubelet's Memory Manager runs the Static policy: hugepage pools are not changed at run time; the message says how to reserve them at boot.</summary>
    public const string HugepagesNeedBootReservation = "HugepagesNeedBootReservation";
    /// <summary>The hugepages asked for would take memory the kubelet has given pods (beyond the NodeState's hugepagesBudget).</summary>
    public const string HugepagesOverBudget = "HugepagesOverBudget";

    // AgentsAvailable
    public const string AgentsRunning = "AgentsRunning";
    /// <summary>The DaemonSet controller could not create a node's agent pod (FailedCreate: PodSecurity admission, a ResourceQuota, a webhook).</summary>
    public const string AgentPodCreateFailed = "AgentPodCreateFailed";
    /// <summary>A node's agent pod exists but does not run (unschedulable, image pull, crash loop, failed).</summary>
    public const string AgentPodNotRunning = "AgentPodNotRunning";

    // DataPlaneAvailable
    public const string DataPlaneDisabled = "DataPlaneDisabled";
    public const string PodsReady = "PodsReady";
    public const string PodsNotReady = "PodsNotReady";
    public const string PodFailed = "PodFailed";
    public const string PodApiError = "PodApiError";
    public const string HugepagesNotAllocatable = "HugepagesNotAllocatable";
    public const string NoAllocatableCpu = "NoAllocatableCpu";
    /// <summary>A selected node has not reported Applied yet, so its data-plane pods are not made.</summary>
    public const string NodeNotTuned = "NodeNotTuned";
    public const string SocketShared = "SocketShared";
    /// <summary>The node does not advertise a NUMA node's resource (nettune.io/numa-node-N) yet: its agent's device plugin has not registered it.</summary>
    public const string NumaResourceNotAllocatable = "NumaResourceNotAllocatable";
    /// <summary>A Ready pod runs on another NUMA node than the one it asked for: the kubelet's Topology Manager did not align its CPUs with its device (policy none).</summary>
    public const string NumaNodeMismatch = "NumaNodeMismatch";
    public const string NotExclusivelyPinned = "NotExclusivelyPinned";
    /// <summary>Another NetworkTuning's data plane on the node uses one of this one's ports; the older tuning keeps them.</summary>
    public const string PortConflict = "PortConflict";
    /// <summary>io_uring was asked for (ioEngine Auto or IoUring) and a pod runs epoll: its seccomp profile or the kernel refuses io_uring.</summary>
    public const string IoUringUnavailable = "IoUringUnavailable";
}

public static class ConditionStatus
{
    public const string True = "True";
    public const string False = "False";
    public const string Unknown = "Unknown";
}
