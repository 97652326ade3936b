using NetTune.Agent.Core.Host;

namespace NetTune.Agent.Core.Topology;

/// <summary>
/// Everything the planner needs to know about a host at one moment: topology and the current value of every knob a
/// spec can touch. Raw values are kept as the kernel printed them (without the trailing newline), so they can be
/// journaled and restored exactly.
/// </summary>
public sealed record HostSnapshot
{
    public required IReadOnlyList<NumaNode> NumaNodes { get; init; }
    public required IReadOnlyList<int> OnlineCpus { get; init; }
    public required IReadOnlyList<int> IsolatedCpus { get; init; }
    /// <summary>nr_cpu_ids: how wide CPU masks are.</summary>
    public required int CpuIds { get; init; }
    public required IReadOnlyList<CpuInfo> Cpus { get; init; }
    public required IReadOnlyList<Nic> Nics { get; init; }
    /// <summary>Current raw values of the allow-listed sysctls; a key missing here does not exist on this kernel.</summary>
    public required IReadOnlyDictionary<string, string> Sysctls { get; init; }

    /// <summary>irqbalance, when it runs on the host: it rewrites IRQ affinities every 10 s unless told to leave an IRQ alone.</summary>
    public IrqBalanceProcess? IrqBalance { get; init; }

    /// <summary>The kernel's boot id (proc/sys/kernel/random/boot_id): a new one at every boot; null when unreadable.</summary>
    public string? BootId { get; init; }

    public NumaNode? Node(int id) => NumaNodes.FirstOrDefault(n => n.Id == id);

    /// <summary>nohz_full CPUs (no tick, no housekeeping).</summary>
    public IReadOnlyList<int> NohzFullCpus { get; init; } = [];
    /// <summary>CPUs the kubelet's static CPU manager assigned to containers exclusively.</summary>
    public IReadOnlyList<int> KubeletExclusiveCpus { get; init; } = [];
    /// <summary>The data-plane containers the kubelet runs here and their exclusive CPUs (a subset of <see cref="KubeletExclusiveCpus"/>).</summary>
    public IReadOnlyList<DataPlaneCpus> DataPlanes { get; init; } = [];
    /// <summary>The kubelet's Memory Manager policy: with Static, hugepage pools are not changed at run time.</summary>
    public KubeletMemoryManager KubeletMemoryManager { get; init; } = new(null, null);
    /// <summary>Interfaces carrying the node's own traffic (default route and the devices below it), with the reason.</summary>
    public IReadOnlyDictionary<string, string> ManagementInterfaces { get; init; } = new Dictionary<string, string>();
    /// <summary>Whether net sysctls written by the agent land in the host's network namespace.</summary>
    public NetNamespaceInfo NetNamespace { get; init; } = NetNamespaceInfo.Unknown;
    /// <summary>net.ipv4.tcp_available_congestion_control, or null when the kernel does not say.</summary>
    public IReadOnlyList<string>? AvailableCongestionControl { get; init; }

    public long MemoryBytes => NumaNodes.Sum(n => n.MemoryBytes);
}

public sealed record CpuInfo(int Id, int Package, int Core, string ThreadSiblings);

public sealed record NumaNode(int Id, IReadOnlyList<int> Cpus, long MemoryBytes, IReadOnlyList<int> Distances, IReadOnlyList<HugepagePool> Hugepages);

/// <summary>Hugepages of one size on one node; <see cref="Path"/> is its nr_hugepages file.</summary>
/// <remarks>
/// <see cref="Surplus"/> pages are above the persistent pool: pages a process still held when the pool was lowered
/// (the kernel frees them when they are released) or overcommitted ones. nr_hugepages counts them;
/// <see cref="Persistent"/> is what an administrator (or the agent) set.
/// </remarks>
public sealed record HugepagePool(string Size, long SizeKb, long Total, long Free, string Path, long Surplus = 0)
{
    public long Persistent => Total - Surplus;
}

public sealed record Nic
{
    public required string Name { get; init; }
    public string? Driver { get; init; }
    public string? PciAddress { get; init; }
    /// <summary>-1 when the platform does not say.</summary>
    public int NumaNode { get; init; } = -1;
    public IReadOnlyList<int>? LocalCpus { get; init; }
    public required IReadOnlyList<RxQueue> RxQueues { get; init; }
    public required IReadOnlyList<TxQueue> TxQueues { get; init; }
    public ChannelInfo? Channels { get; init; }
    /// <summary>Why channels are unknown (the ethtool errno), when they are.</summary>
    public string? ChannelsError { get; init; }
    public required IReadOnlyList<QueueIrq> Irqs { get; init; }
    /// <summary>How <see cref="Irqs"/> were found: by name, by the device's MSI vectors, or not at all.</summary>
    public IrqSource IrqSource { get; init; }
    /// <summary>No device behind the netdev (veth, bond, dummy): it has no interrupts of its own.</summary>
    public bool IsVirtual { get; init; }

    /// <summary>Rings, coalescing and pause as the driver reports them, or the errno of reading them; empty when not read (a NIC no spec selects).</summary>
    public IReadOnlyDictionary<NicSettingGroup, NicSettingRead> Settings { get; init; } = new Dictionary<NicSettingGroup, NicSettingRead>();

    /// <summary>The device's features (ethtool -k); null when not read or unreadable (<see cref="FeaturesErrno"/>).</summary>
    public IReadOnlyList<NicFeature>? Features { get; init; }

    public int FeaturesErrno { get; init; }

    /// <summary>The RSS indirection table and receive ring count (ethtool -x), or the errno; null when not read.</summary>
    public RssRead? Rss { get; init; }

    /// <summary>The hash fields of each flow type NetTune sets (ethtool -n rx-flow-hash), by ethtool's name (tcp4...); empty when not read.</summary>
    public IReadOnlyDictionary<string, FlowHashRead> FlowHash { get; init; } = new Dictionary<string, FlowHashRead>();

    /// <summary>The transmit queue length (sys/class/net/NAME/tx_queue_len); null when unreadable.</summary>
    public string? TxQueueLength { get; init; }
}

/// <summary>The RSS indirection table as read, or the errno.</summary>
public sealed record RssRead(RssTable? Table, int Errno);

/// <summary>One flow type's hash fields (RXH_* bits) as read, or the errno.</summary>
public sealed record FlowHashRead(uint? Fields, int Errno);

/// <summary>One settings group as read: the values, or the errno.</summary>
public sealed record NicSettingRead(NicSetting? Setting, int Errno);

public sealed record RxQueue(int Index, string? RpsCpus, string? RpsFlowCnt);

/// <summary>A tx queue; <see cref="XpsCpus"/> is null when the kernel hides it (single-queue devices).</summary>
public sealed record TxQueue(int Index, string? XpsCpus);

public enum IrqRole { Rx, Tx, Combined }

/// <summary>An interrupt that serves one queue of a NIC.</summary>
public sealed record QueueIrq(int Irq, string Name, int Queue, IrqRole Role, string? AffinityList, bool Managed);

/// <summary>A running irqbalance and the IRQs its command line bans from balancing (--banirq / -i).</summary>
public sealed record IrqBalanceProcess(int Pid, IReadOnlyList<int> BannedIrqs, string CommandLine);
