using System.ComponentModel;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using NetTune.Api.Schema;

namespace NetTune.Api.V1Alpha1;

/// <summary>What users write: how to tune the networking of the nodes it selects, and the data plane to run there.</summary>
[KubernetesEntity(Group = ApiGroup.Name, ApiVersion = ApiGroup.Version, Kind = "NetworkTuning", PluralName = "networktunings")]
[ResourceNames("nt", Categories = ["nettune"])]
[Description("NetworkTuning declares NIC channels, IRQ affinity, RPS/RFS/XPS, rings, coalescing, offloads, pause frames, hugepages, sysctls and the data plane for the nodes it selects, and how to roll them out.")]
[PrinterColumn("Matched", "integer", ".status.matchedNodes", Description = "Nodes the selector matches")]
[PrinterColumn("Applied", "integer", ".status.appliedNodes", Description = "Nodes that applied the current generation")]
[PrinterColumn("Failed", "integer", ".status.failedNodes", Description = "Nodes that failed to apply")]
[PrinterColumn("Pods-Ready", "integer", ".status.dataPlane.readyPods", Description = "Data-plane pods that are serving")]
[PrinterColumn("Pods-Desired", "integer", ".status.dataPlane.desiredPods", Description = "Data-plane pods there should be")]
[PrinterColumn("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status")]
[PrinterColumn("Reason", "string", ".status.conditions[?(@.type==\"Ready\")].reason", Priority = 1)]
[PrinterColumn("Age", "date", ".metadata.creationTimestamp")]
public sealed class NetworkTuning : IKubernetesObject<V1ObjectMeta>, ISpec<NetworkTuningSpec>, IStatus<NetworkTuningStatus?>
{
    public const string KindName = "NetworkTuning";
    public const string Plural = "networktunings";

    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = ApiGroup.GroupVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = KindName;
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();

    [Required]
    [Description("The desired tuning.")]
    [JsonPropertyName("spec")] public NetworkTuningSpec Spec { get; set; } = new();

    [Description("What the operator observed; written by the operator only.")]
    [JsonPropertyName("status")] public NetworkTuningStatus? Status { get; set; }
}

[Description("A list of NetworkTuning objects.")]
public sealed class NetworkTuningList : IKubernetesObject<V1ListMeta>, IItems<NetworkTuning>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = ApiGroup.GroupVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = "NetworkTuningList";
    [JsonPropertyName("metadata")] public V1ListMeta Metadata { get; set; } = new();
    [JsonPropertyName("items")] public IList<NetworkTuning> Items { get; set; } = [];
}

[Description("The desired tuning of the selected nodes.")]
[CelRule("selector-required", "(has(self.allNodes) && self.allNodes) || (has(self.nodeSelector) && ((has(self.nodeSelector.matchLabels) && size(self.nodeSelector.matchLabels) > 0) || (has(self.nodeSelector.matchExpressions) && size(self.nodeSelector.matchExpressions) > 0)))", "a nodeSelector with at least one label or expression is required; set allNodes: true to select every node")]
[CelRule("allnodes-excludes-selector", "!(has(self.allNodes) && self.allNodes && has(self.nodeSelector))", "allNodes excludes nodeSelector")]
[CelRule("align-needs-dataplane", "!(has(self.nic) && has(self.nic.irqAffinity) && has(self.nic.irqAffinity.policy) && self.nic.irqAffinity.policy == 'AlignWithDataPlane') || (has(self.dataPlane) && self.dataPlane.enabled)", "nic.irqAffinity.policy AlignWithDataPlane needs dataPlane.enabled: the queues are aligned with the data plane's workers")]
public sealed class NetworkTuningSpec
{
    [Description("Selects the nodes to tune by their labels; required (with at least one label or expression) unless allNodes is true. Nodes labelled node-role.kubernetes.io/control-plane are left out unless includeControlPlane is true.")]
    public V1LabelSelector? NodeSelector { get; set; }

    [Description("Select every node (instead of a nodeSelector), still without control-plane nodes unless includeControlPlane is true.")]
    public bool? AllNodes { get; set; }

    [Description("Also tune nodes labelled node-role.kubernetes.io/control-plane (or the older node-role.kubernetes.io/master) that the selector matches. Default false: they are left out and counted in status.skippedControlPlaneNodes.")]
    public bool? IncludeControlPlane { get; set; }

    [Range(0, 1000)]
    [Default(0)]
    [Description("Decides which NetworkTuning wins a knob when several select one node: the higher wins; equal priorities touching the same knob are a conflict.")]
    public int Priority { get; set; }

    [Description("NIC channels, IRQ affinity, RPS/RFS, XPS, rings, coalescing, offloads, pause frames, RSS and the transmit queue length for the matching interfaces.")]
    public NicSpec? Nic { get; set; }

    [Items(0, 2)]
    [CelRule("hugepages-unique-size", "self.all(x, self.exists_one(y, y.size == x.size))", "each hugepage size may appear once")]
    [Description("Hugepages to reserve on each NUMA node, one entry per page size.")]
    public List<HugepagesSpec>? Hugepages { get; set; }

    [Items(0, 64)]
    [CelRule("sysctls-allowed", SysctlAllowList.CelRule, SysctlAllowList.CelMessage)]
    [Description("Kernel parameters to set, by their sysctl name (for example net.core.somaxconn). Only the keys of the allow-list are accepted: " + SysctlAllowList.KeysText + ".")]
    public Dictionary<string, string>? Sysctls { get; set; }

    [Description("How a new generation rolls out across the selected nodes.")]
    public RolloutSpec? Rollout { get; set; }

    [Description("The NetTune data plane to run on each NUMA node of a tuned node. The unit is the NUMA node the kernel reports, not the physical package: Intel SNC and AMD NPS give several per package, and each gets its own pod unless dataPlane.podPer is Package.")]
    public DataPlaneSpec? DataPlane { get; set; }
}

[Description("The NICs to tune and how.")]
[CelRule("nic-interfaces-required", "has(self.interfaces)", "nic.interfaces must name the interfaces to tune")]
[CelRule("align-excludes-channels-rps", "!(has(self.irqAffinity) && has(self.irqAffinity.policy) && self.irqAffinity.policy == 'AlignWithDataPlane') || (!has(self.channels) && !(has(self.rps) && has(self.rps.enabled) && self.rps.enabled))", "nic.irqAffinity.policy AlignWithDataPlane sets the channels to the data plane's workers and turns RPS off on their queues: it excludes nic.channels and rps.enabled")]
public sealed class NicSpec
{
    [Description("Which interfaces to tune: an interface matches when its name matches one of the globs or its driver is one of the drivers.")]
    public InterfaceSelector? Interfaces { get; set; }

    [Description("Channel (queue) counts to set with ethtool -L.")]
    public ChannelsSpec? Channels { get; set; }

    [Description("Where each queue's interrupt is handled.")]
    public IrqAffinitySpec? IrqAffinity { get; set; }

    [Description("Receive Packet Steering and Receive Flow Steering.")]
    public RpsSpec? Rps { get; set; }

    [Description("Transmit Packet Steering.")]
    public XpsSpec? Xps { get; set; }

    [Description("Descriptor ring sizes (ethtool -G). A size the NIC cannot take (above its maximum, or a driver's rounding) is reported, not forced.")]
    public RingsSpec? Rings { get; set; }

    [Description("Interrupt coalescing (ethtool -C): adaptive moderation and fixed usecs/frames. Fields the driver does not support are reported Skipped.")]
    public CoalesceSpec? Coalesce { get; set; }

    [Description("Offloads (ethtool -K). Each maps to the kernel features ethtool's short name does (tso: tx-tcp-segmentation, tx-tcp6-segmentation, ...); features the device cannot change are reported Skipped.")]
    public OffloadsSpec? Offloads { get; set; }

    [Description("Ethernet pause frames (ethtool -A). Drivers that do not support them (virtio, ENA) report Skipped.")]
    public PauseSpec? Pause { get; set; }

    [Description("Receive-side scaling: the indirection table (ethtool -X) and the header fields each flow type is hashed on (ethtool -N rx-flow-hash). Set after channels, so the table covers the queues the channel change left. Devices without RSS (veth, tap, virtio without the RSS feature) report Skipped.")]
    public RssSpec? Rss { get; set; }

    [Range(0, 1000000)]
    [Description("The interface's transmit queue length in packets (ip link set DEV txqueuelen N): the qdisc's limit for queueing disciplines that take it from the device (pfifo_fast, fq_codel's default is its own).")]
    public int? TxQueueLength { get; set; }

    [Pattern(CpuList.Pattern)]
    [Length(0, 4096)]
    [Description("The node's housekeeping CPUs as a cpulist: the CPUs kept for the system, which take the node's interrupts and packet steering (OpenShift PerformanceProfile's reserved CPUs; set the kubelet's reservedSystemCPUs to the same list). They are the only CPUs queue interrupts, RPS and XPS use, the ones matchLocalCpus counts, and the ones a data-plane pod's default CPU count leaves out. Default: every online CPU. CPUs the kubelet's static CPU manager gives a container exclusively (read from the kubelet as pods start and end), isolated (isolcpus) and nohz_full CPUs never get an interrupt, RPS or XPS.")]
    public string? HousekeepingCpus { get; set; }
}

[Description("Interfaces matched by name glob or by driver.")]
[CelRule("interfaces-nonempty", "(has(self.names) && size(self.names) > 0) || (has(self.drivers) && size(self.drivers) > 0)", "interfaces needs at least one name glob or driver")]
public sealed class InterfaceSelector
{
    [Items(0, 32)]
    [Pattern(@"^[A-Za-z0-9_.:@*?\[\]-]{1,32}$")]
    [Description("Interface name globs, such as eth* or ens1f?.")]
    public List<string>? Names { get; set; }

    [Items(0, 16)]
    [Pattern(@"^[A-Za-z0-9_.-]{1,64}$")]
    [Description("Kernel driver names, such as mlx5_core, ice or virtio_net.")]
    public List<string>? Drivers { get; set; }
}

[Description("Channel counts: either combined, or rx and/or tx, or matchLocalCpus.")]
[CelRule("channels-combined-excludes-rxtx", "!(has(self.combined) && (has(self.rx) || has(self.tx)))", "combined excludes rx and tx")]
[CelRule("channels-match-excludes-counts", "!(has(self.matchLocalCpus) && self.matchLocalCpus && (has(self.combined) || has(self.rx) || has(self.tx)))", "matchLocalCpus excludes combined, rx and tx")]
[CelRule("channels-nonempty", "has(self.combined) || has(self.rx) || has(self.tx) || (has(self.matchLocalCpus) && self.matchLocalCpus)", "channels needs combined, rx/tx or matchLocalCpus")]
public sealed class ChannelsSpec
{
    [Range(1, 4096)]
    [Description("Combined rx+tx channels.")]
    public int? Combined { get; set; }

    [Range(1, 4096)]
    [Description("Receive-only channels (drivers such as veth have no combined channels).")]
    public int? Rx { get; set; }

    [Range(1, 4096)]
    [Description("Transmit-only channels.")]
    public int? Tx { get; set; }

    [Description("Set as many channels as there are physical cores (SMT siblings counted once) among the housekeeping CPUs that serve the NIC (its NUMA node's), capped at the device maximum.")]
    public bool? MatchLocalCpus { get; set; }

    [Default(false)]
    [Description("Also change the channels of the management interface: the one carrying the node's default route and the devices below it (bond slaves, a VLAN's parent). A channel change resets the link on most drivers, so it is left alone unless this is true; even then fewer than two channels is refused there. IRQ affinity, RPS and XPS apply to it either way.")]
    public bool AllowManagementInterface { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<IrqAffinityPolicy>))]
public enum IrqAffinityPolicy
{
    /// <summary>Round-robin over the housekeeping CPUs of the NIC's own NUMA node.</summary>
    NumaLocalSpread,
    /// <summary>Round-robin over every allowed CPU.</summary>
    Spread,
    /// <summary>Leave IRQ affinity alone.</summary>
    Unmanaged,
    /// <summary>Queue q of each NIC on the CPU of the local data-plane pod's worker q: channels, IRQs, XPS; RPS off.</summary>
    AlignWithDataPlane,
}

[Description("IRQ affinity policy for the queues of matching NICs.")]
public sealed class IrqAffinitySpec
{
    [Default("NumaLocalSpread")]
    [Description("NumaLocalSpread: round-robin over the CPUs of the NIC's NUMA node; Spread: over all allowed CPUs; Unmanaged: leave alone. AlignWithDataPlane (needs dataPlane.enabled; excludes channels and rps.enabled): each NIC whose NUMA node has a running data-plane pod gets one queue per worker CPU of that pod (channels = its CPUs, up to the NIC's maximum), queue q's interrupts on the pod's q-th CPU (ascending, where the data plane runs worker q), tx-q's XPS on that CPU and RPS off, so that the worker on the CPU a connection's packets arrive on accepts it (SO_INCOMING_CPU) and interrupt, softirq and worker share one core; the CPUs are the kubelet's exclusive assignment, followed when the pod is re-pinned. A NIC without such a pod (none yet, or its NUMA node unknown on a multi-node host) is placed as NumaLocalSpread, and its status says why.")]
    public IrqAffinityPolicy Policy { get; set; } = IrqAffinityPolicy.NumaLocalSpread;

    /// <summary>Deprecated: kept so v1alpha1 objects keep their meaning; nic.housekeepingCpus is the one CPU set.</summary>
    [Pattern(CpuList.Pattern)]
    [Length(0, 4096)]
    [Description("Deprecated: use nic.housekeepingCpus. CPUs never given a queue interrupt, as a cpulist such as 0-1,8. Not the kubelet's reserved CPUs: those are the housekeeping CPUs, which should take the interrupts. Without housekeepingCpus these CPUs are also left out of a data-plane pod's default CPU count.")]
    public string? ReservedCpus { get; set; }
}

[Description("Receive Packet Steering (rps_cpus) and Receive Flow Steering (rps_flow_cnt, rps_sock_flow_entries).")]
public sealed class RpsSpec
{
    [Default(false)]
    [Description("Steer received packets to the NIC's local CPUs.")]
    public bool Enabled { get; set; }

    [Range(0, 1048576)]
    [Description("RFS: the global socket flow table size (net.core.rps_sock_flow_entries); each rx queue gets its share in rps_flow_cnt. The kernel rounds up to a power of two. 0 disables RFS.")]
    public int? FlowEntries { get; set; }
}

[Description("Transmit Packet Steering: tx queue i is used by the CPU that handles rx queue i's interrupt.")]
public sealed class XpsSpec
{
    [Default(false)]
    [Description("Set xps_cpus on each tx queue.")]
    public bool Enabled { get; set; }
}

[Description("Descriptor ring sizes per queue.")]
public sealed class RingsSpec
{
    [Range(1, 65536)]
    [Description("Receive ring entries per queue.")]
    public int? Rx { get; set; }

    [Range(1, 65536)]
    [Description("Transmit ring entries per queue.")]
    public int? Tx { get; set; }

    [Default(false)]
    [Description("Also resize the rings of the management interface (the one carrying the node's default route). ice, ENA and others take the link down and up to resize, so it is left alone unless this is true.")]
    public bool AllowManagementInterface { get; set; }
}

[Description("Interrupt coalescing. Turning adaptive moderation off and setting usecs/frames is the usual low-latency setting.")]
public sealed class CoalesceSpec
{
    [Description("Adaptive receive moderation (the driver picks usecs/frames from the traffic, as mlx5's and ice's DIM do).")]
    public bool? AdaptiveRx { get; set; }

    [Description("Adaptive transmit moderation.")]
    public bool? AdaptiveTx { get; set; }

    [Range(0, 65535)]
    [Description("Microseconds a receive interrupt is delayed after a packet arrives.")]
    public int? RxUsecs { get; set; }

    [Range(0, 65535)]
    [Description("Packets received before an interrupt fires.")]
    public int? RxFrames { get; set; }

    [Range(0, 65535)]
    [Description("Microseconds a transmit completion interrupt is delayed.")]
    public int? TxUsecs { get; set; }

    [Range(0, 65535)]
    [Description("Packets sent before a completion interrupt fires.")]
    public int? TxFrames { get; set; }
}

[Description("Offloads to turn on (true) or off (false); an offload left out is left alone.")]
public sealed class OffloadsSpec
{
    [Description("Generic receive offload (rx-gro).")]
    public bool? Gro { get; set; }

    [Description("Hardware GRO (rx-gro-hw).")]
    public bool? GroHw { get; set; }

    [Description("Large receive offload (rx-lro; ethtool -k shows it as large-receive-offload).")]
    public bool? Lro { get; set; }

    [Description("TCP segmentation offload (tx-tcp-segmentation, tx-tcp-ecn-segmentation, tx-tcp-mangleid-segmentation, tx-tcp6-segmentation, tx-tcp-accecn-segmentation).")]
    public bool? Tso { get; set; }

    [Description("Generic segmentation offload (tx-generic-segmentation).")]
    public bool? Gso { get; set; }

    [Description("Receive checksum offload (rx-checksum).")]
    public bool? RxChecksum { get; set; }

    [Description("Transmit checksum offload (tx-checksum-ipv4, tx-checksum-ip-generic, tx-checksum-ipv6, tx-checksum-sctp, tx-checksum-fcoe-crc).")]
    public bool? TxChecksum { get; set; }

    [Description("n-tuple filters and aRFS (rx-ntuple-filter).")]
    public bool? Ntuple { get; set; }
}

[Description("Ethernet flow control (IEEE 802.3x pause frames).")]
public sealed class PauseSpec
{
    [Description("Negotiate pause with the link partner. mlx5 refuses true; ice takes only the link's own autoneg setting.")]
    public bool? Autoneg { get; set; }

    [Description("Honour received pause frames.")]
    public bool? Rx { get; set; }

    [Description("Send pause frames.")]
    public bool? Tx { get; set; }

    [Default(false)]
    [Description("Also change pause on the management interface (the one carrying the node's default route); ice renegotiates the link to apply it, so it is left alone unless this is true.")]
    public bool AllowManagementInterface { get; set; }
}

[Description("Receive-side scaling.")]
[CelRule("rss-equal-or-weights", "!(has(self.equal) && has(self.weights))", "rss.equal and rss.weights exclude each other")]
public sealed class RssSpec
{
    [Range(1, 4096)]
    [Description("Spread the indirection table evenly over the first N receive queues (ethtool -X equal N). N above the NIC's receive queue count (after the channel change) is reported Skipped.")]
    public int? Equal { get; set; }

    [Items(1, 4096)]
    [Description("Relative weight of each receive queue in the indirection table, queue 0 first (ethtool -X weight W0 W1 ...); 0 leaves a queue out. At least one weight must be above 0.")]
    public List<int>? Weights { get; set; }

    [Items(0, 6)]
    [CelRule("rx-flow-hash-unique", "self.all(x, self.exists_one(y, y.flowType == x.flowType))", "each flow type may appear once")]
    [Description("The header fields each flow type is hashed on (ethtool -N DEV rx-flow-hash TYPE FIELDS).")]
    public List<RxFlowHashSpec>? RxFlowHash { get; set; }
}

[Description("The hash fields of one flow type.")]
public sealed class RxFlowHashSpec
{
    [Pattern("^(tcp4|udp4|sctp4|tcp6|udp6|sctp6)$")]
    [Description("The flow type, as ethtool names it: tcp4, udp4, sctp4, tcp6, udp6, sctp6.")]
    public string FlowType { get; set; } = "";

    [Pattern("^[mvtsdfn]{1,7}$")]
    [Description("ethtool's field letters: m destination MAC, v VLAN tag, t L3 protocol, s source IP, d destination IP, f L4 bytes 0-1 (source port), n L4 bytes 2-3 (destination port); sdfn is the 4-tuple. ethtool's r (discard the flow type) is not accepted.")]
    public string Fields { get; set; } = "";
}

[Description("Hugepages of one size to reserve per NUMA node.")]
public sealed class HugepagesSpec
{
    [Required]
    [Pattern("^(2Mi|1Gi)$")]
    [Description("Page size: 2Mi or 1Gi.")]
    public string Size { get; set; } = "2Mi";

    [Required]
    [Range(0, 1048576)]
    [Description("Pages to reserve on every NUMA node that has memory, unless overridden below.")]
    public int PagesPerNumaNode { get; set; }

    [Range(1, 90)]
    [Default(50)]
    [Description("The most of a NUMA node's memory that hugepages of every size together may take on that node, in percent: a larger request is refused on that node with the numbers, since the rest of the node (the kubelet among it) needs the remainder. The smallest value of the entries applies.")]
    public int MaxNodeMemoryPercent { get; set; } = 50;

    [Items(0, 64)]
    [CelRule("hugepages-override-unique", "self.all(x, self.exists_one(y, y.numaNode == x.numaNode))", "each NUMA node may be overridden once")]
    [Description("Per-NUMA-node overrides of pagesPerNumaNode.")]
    public List<NumaNodePages>? PerNumaNode { get; set; }
}

[Description("Pages for one NUMA node.")]
public sealed class NumaNodePages
{
    [Required]
    [Range(0, 1023)]
    [Description("NUMA node id.")]
    public int NumaNode { get; set; }

    [Required]
    [Range(0, 1048576)]
    [Description("Pages to reserve on this node.")]
    public int Pages { get; set; }
}

[Description("Rollout pacing.")]
public sealed class RolloutSpec
{
    [IntOrString]
    [Default(1)]
    [Pattern(@"^(100|[1-9]?[0-9])%$|^[0-9]+$")]
    [Description("How many selected nodes may be applying a new generation at once: a count or a percentage of the selected nodes (rounded down, at least 1).")]
    public IntOrString? MaxUnavailable { get; set; }

    [Default(true)]
    [Description("Stop the rollout when a node fails to apply, until the spec changes.")]
    public bool PauseOnFailure { get; set; } = true;

    [Default(false)]
    [Description("Only plan: nodes publish their planned changes and apply nothing.")]
    public bool DryRun { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<DataPlaneMode>))]
public enum DataPlaneMode
{
    StaticFiles,
    Proxy,
}

[JsonConverter(typeof(JsonStringEnumConverter<DataPlaneNumaNodes>))]
public enum DataPlaneNumaNodes
{
    /// <summary>Only the NUMA nodes of the NICs nic.interfaces selects (every NUMA node when none is selected or a selected NIC's node is unknown).</summary>
    NicLocal,
    /// <summary>Every NUMA node with CPUs.</summary>
    All,
}

[JsonConverter(typeof(JsonStringEnumConverter<DataPlanePodUnit>))]
public enum DataPlanePodUnit
{
    /// <summary>One pod per NUMA node, its CPUs on that node.</summary>
    NumaNode,
    /// <summary>One pod per physical package, its CPUs on the package's NUMA nodes.</summary>
    Package,
}

[JsonConverter(typeof(JsonStringEnumConverter<IoEngine>))]
public enum IoEngine
{
    Auto,
    IoUring,
    Epoll,
}

[Description("The data plane: one pod per NUMA node, with exclusive CPUs of that node (the pod asks for one nettune.io/numa-node-<id> device, which the node's agent advertises with that NUMA node as its topology, and the kubelet's Topology Manager aligns the CPUs with it) and memory bound to it.")]
// \S: a blank image is no image (the twin uses IsNullOrWhiteSpace); size() > 0 let "  " through.
[CelRule("dataplane-image", "!self.enabled || (has(self.image) && self.image.matches('\\\\S'))", "dataPlane.image is required when enabled")]
[CelRule("dataplane-static-root", "!self.enabled || self.mode != 'StaticFiles' || (has(self.staticFiles) && has(self.staticFiles.hostPath) && size(self.staticFiles.hostPath) > 0)", "dataPlane.staticFiles.hostPath is required in StaticFiles mode")]
[CelRule("dataplane-proxy-upstreams", "!self.enabled || self.mode != 'Proxy' || (has(self.proxy) && has(self.proxy.upstreams) && size(self.proxy.upstreams) > 0)", "dataPlane.proxy.upstreams is required in Proxy mode")]
[CelRule("dataplane-ports", "!self.enabled || self.port < self.adminPort || self.port >= self.adminPort + 64", "port must not be one of the admin ports: the pod of NUMA node N serves its admin endpoint on adminPort + N (N up to 63)")]
public sealed class DataPlaneSpec
{
    /// <summary>The admin ports of NUMA nodes 0 to 63 (adminPort + id) are kept free of the data port.</summary>
    public const int AdminPortSpan = 64;

    [Default(false)]
    [Description("Run the data plane on tuned nodes.")]
    public bool Enabled { get; set; }

    [Length(0, 512)]
    [Description("Container image of the data plane.")]
    public string? Image { get; set; }

    [Default("StaticFiles")]
    [Description("StaticFiles serves a host folder; Proxy forwards to upstreams.")]
    public DataPlaneMode Mode { get; set; } = DataPlaneMode.StaticFiles;

    [Range(1, 65535)]
    [Default(8080)]
    [Description("TCP port the data plane listens on (host network).")]
    public int Port { get; set; } = 8080;

    [Range(1, 65535)]
    [Default(9180)]
    [Description("TCP port of the admin endpoint (/metrics, /healthz, /readyz) of the pod on NUMA node 0; the pod on NUMA node N uses adminPort + N, so port must not lie in [adminPort, adminPort + 63].")]
    public int AdminPort { get; set; } = 9180;

    [Description("StaticFiles mode settings.")]
    public StaticFilesSpec? StaticFiles { get; set; }

    [Description("Proxy mode settings.")]
    public ProxySpec? Proxy { get; set; }

    [Default("NicLocal")]
    [Description("Which NUMA nodes get a pod. NicLocal: only those of the NICs nic.interfaces selects, since a pod on another NUMA node sends and receives every packet across the socket link; every NUMA node with CPUs when the tuning selects no NIC, none of them is on this node, or a selected NIC's NUMA node is unknown (numa_node -1, common in VMs; status.dataPlane says so). All: every NUMA node with CPUs.")]
    public DataPlaneNumaNodes NumaNodes { get; set; } = DataPlaneNumaNodes.NicLocal;

    [Default("NumaNode")]
    [Description("The unit that gets one pod. NumaNode: each NUMA node (Intel SNC and AMD NPS split a package into several, each with its own pod, its memory and its NIC). Package: each physical package, one pod over the CPUs of all its NUMA nodes, asking for the NUMA resource of each; the kubelet's Topology Manager must let a pod span NUMA nodes (policy best-effort or none: single-numa-node and restricted refuse it with TopologyAffinityError). With NicLocal a package gets a pod when one of its NUMA nodes is local to a selected NIC. CPUs as with cpusPerSocket, over the package.")]
    public DataPlanePodUnit PodPer { get; set; } = DataPlanePodUnit.NumaNode;

    [Range(1, 1024)]
    [Description("Workers of each NUMA node's pod; default one per CPU the kubelet gave the pod.")]
    public int? WorkersPerSocket { get; set; }

    [Range(1, 1024)]
    [Description("Whole CPUs each NUMA node's pod requests (Guaranteed QoS; the kubelet's CPU manager picks which, on that NUMA node). Default: the NUMA node's CPUs less nic.housekeepingCpus (the kubelet never hands those out), capped by what the node's allocatable CPU leaves after the requests of the node's other pods and a margin, shared among the pods to be made, and rounded down to whole cores; a running pod keeps its size. A NUMA node left without a whole CPU gets no pod: DataPlaneAvailable False, reason NoAllocatableCpu. See the operator's README.")]
    public int? CpusPerSocket { get; set; }

    [Length(0, 253)]
    [Pattern(@"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
    [Description("PriorityClass of the data-plane pods; default none (priority 0).")]
    public string? PriorityClassName { get; set; }

    [Default("Auto")]
    [Description("Auto picks io_uring where the kernel allows it, else epoll.")]
    public IoEngine IoEngine { get; set; } = IoEngine.Auto;

    [Description("The pods' seccomp profile. Default: NetTune's own profile, unless ioEngine is Epoll (then RuntimeDefault). containerd 2.0 and Docker 25 took the io_uring syscalls out of their default profiles, so under RuntimeDefault there the data plane runs epoll (Auto) or does not start (IoUring).")]
    public DataPlaneSeccompSpec? SeccompProfile { get; set; }

    /// <summary>The profile the pods get: the one asked for, else NetTune's when io_uring may be used, else the runtime's default.</summary>
    public DataPlaneSeccompSpec EffectiveSeccompProfile() =>
        SeccompProfile ?? new DataPlaneSeccompSpec { Type = IoEngine == IoEngine.Epoll ? SeccompProfileKind.RuntimeDefault : SeccompProfileKind.NetTune };
}

[JsonConverter(typeof(JsonStringEnumConverter<SeccompProfileKind>))]
public enum SeccompProfileKind
{
    /// <summary>The runtime's default profile plus io_uring_setup, io_uring_enter and io_uring_register, installed by the agent.</summary>
    NetTune,
    RuntimeDefault,
    /// <summary>A profile of the node's kubelet seccomp folder, named by localhostProfile.</summary>
    Localhost,
}

[Description("A seccomp profile for the data-plane pods.")]
[CelRule("seccomp-localhost-profile", "self.type == 'Localhost' ? (has(self.localhostProfile) && size(self.localhostProfile) > 0) : !has(self.localhostProfile)", "seccompProfile.localhostProfile is required with type Localhost, and only there")]
[CelRule("seccomp-localhost-relative", "!has(self.localhostProfile) || !self.localhostProfile.contains('..')", "seccompProfile.localhostProfile must stay inside the kubelet's seccomp folder (no '..')")]
public sealed class DataPlaneSeccompSpec
{
    [Default("NetTune")]
    [Description("NetTune: the runtime's default profile plus the three io_uring syscalls, which the agent installs into the kubelet's seccomp folder (<root-dir>/seccomp/" + SeccompProfiles.NetTuneLocalhostProfile + ") as part of tuning the node; RuntimeDefault: the container runtime's own; Localhost: a profile already on the node, named by localhostProfile.")]
    public SeccompProfileKind Type { get; set; } = SeccompProfileKind.NetTune;

    [Length(0, 4096)]
    [Pattern(@"^[A-Za-z0-9_.-][A-Za-z0-9_./-]*$")]
    [Description("With type Localhost: the profile's path relative to the kubelet's seccomp folder (<root-dir>/seccomp), such as profiles/my-dataplane.json.")]
    public string? LocalhostProfile { get; set; }
}

/// <summary>Where NetTune's own seccomp profile lives on a node.</summary>
public static class SeccompProfiles
{
    /// <summary>NetTune's profile, relative to the kubelet's seccomp folder: what the pods name as their Localhost profile.</summary>
    public const string NetTuneLocalhostProfile = "nettune/dataplane-io-uring.json";

    /// <summary>The kubelet's default --root-dir; its seccomp folder is the seccomp subfolder.</summary>
    public const string DefaultKubeletRootDir = "/var/lib/kubelet";
}

[Description("Serve files from a folder of the host.")]
public sealed class StaticFilesSpec
{
    [Required]
    [Pattern("^/.*")]
    [Length(1, 4096)]
    [Description("Absolute host path of the folder to serve.")]
    public string HostPath { get; set; } = "";
}

[Description("Forward requests to upstream servers.")]
public sealed class ProxySpec
{
    [Items(1, 64)]
    [Pattern(@"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")]
    [Description("Upstreams as host:port.")]
    public List<string>? Upstreams { get; set; }
}

[Description("What the operator observed.")]
public sealed class NetworkTuningStatus
{
    [Description("The generation of the spec the status describes.")]
    public long? ObservedGeneration { get; set; }

    [Description("Ready, Progressing, Degraded and Conflict, after the Kubernetes API conventions.")]
    public List<V1Condition>? Conditions { get; set; }

    [Description("Nodes the selector matches.")]
    public int MatchedNodes { get; set; }

    [Description("Control-plane nodes the selector matches that are left out because includeControlPlane is not true.")]
    public int? SkippedControlPlaneNodes { get; set; }

    [Description("Matched nodes that applied the current generation.")]
    public int AppliedNodes { get; set; }

    [Description("Matched nodes that failed to apply the current generation.")]
    public int FailedNodes { get; set; }

    [Description("Matched nodes still waiting for or applying the current generation.")]
    public int PendingNodes { get; set; }

    [Description("Nodes whose tuning this object is reverting, and that have not reported Reverted yet.")]
    public List<string>? RevertingNodes { get; set; }

    [Description("The data-plane pods: how many there should be, how many serve, and where each runs.")]
    public DataPlaneStatus? DataPlane { get; set; }
}

[Description("The data-plane pods as the operator observed them.")]
public sealed class DataPlaneStatus
{
    [Description("Pods there should be: one per NUMA node with CPUs of every applied, schedulable node whose allocatable resources admit them.")]
    public int DesiredPods { get; set; }

    [Description("Pods that are Ready.")]
    public int ReadyPods { get; set; }

    [Items(0, DataPlaneStatus.MaxPods)]
    [Description("One entry per pod, those with a problem first; at most 256 (see podsOmitted).")]
    public List<DataPlanePodStatus>? Pods { get; set; }

    [Description("Pods not listed in pods because the list is full.")]
    public int? PodsOmitted { get; set; }

    [Items(0, DataPlaneStatus.MaxPlacementNotes)]
    [Description("Where pods were left out or spread, per node: NUMA nodes without a selected NIC (numaNodes NicLocal), and selected NICs whose NUMA node is unknown (numa_node -1), which put a pod on every NUMA node.")]
    public List<string>? Placement { get; set; }

    public const int MaxPlacementNotes = 64;

    public const int MaxPods = 256;
}

[Description("One data-plane pod.")]
public sealed class DataPlanePodStatus
{
    [Required]
    [Description("Pod name.")]
    public string Name { get; set; } = "";

    [Required]
    [Description("Node the pod is for.")]
    public string Node { get; set; } = "";

    [Description("The NUMA node the pod was made for (its name's numa<id>), whose nettune.io/numa-node-<id> device it asks for.")]
    public int Socket { get; set; }

    [Description("Pending, Running, Failed, Missing (not created yet or being replaced), or Waiting (held back; see message).")]
    public string? Phase { get; set; }

    [Description("The pod's Ready condition is True.")]
    public bool Ready { get; set; }

    [Description("Whole CPUs the pod requests.")]
    public int RequestedCpus { get; set; }

    [Description("The CPUs the data plane reports running on (its /readyz), as a cpulist.")]
    public string? Cpus { get; set; }

    [Description("The NUMA node of those CPUs, as the data plane reports it; -1 when they span several or none is known.")]
    public int? NumaNode { get; set; }

    [Description("The I/O engine its workers run, as the data plane reports it (its /readyz): epoll, or iouring with its setup features such as iouring(defer_taskrun)+multishot (several, comma-separated, if the workers differ).")]
    public string? Engine { get; set; }

    [Description("True when the pod runs on exactly as many CPUs as it requested (the kubelet's static CPU manager pinned it); false when it runs on more (CPU manager policy none: shared, not exclusively pinned).")]
    public bool? ExclusiveCpus { get; set; }

    [Description("Times the pod was deleted and recreated after the kubelet rejected or evicted it, or it failed.")]
    public int Recreations { get; set; }

    [Description("UID of the last failed pod counted in recreations.")]
    public string? LastFailedUid { get; set; }

    [Description("When that pod was found failed; a new pod waits a capped, doubling backoff after it.")]
    public DateTime? LastFailureTime { get; set; }

    [Description("The kubelet's reason and message for the last failure, or why the pod is waiting.")]
    public string? Message { get; set; }
}
