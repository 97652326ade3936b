using System.ComponentModel;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using NetTune.Api.Schema;

namespace NetTune.Api.V1Alpha1;

/// <summary>
/// One per node, named after the node. The operator writes the spec (the merged desired settings); the node's agent
/// writes the status (topology, plan, results).
/// </summary>
[KubernetesEntity(Group = ApiGroup.Name, ApiVersion = ApiGroup.Version, Kind = "NetworkTuningNodeState", PluralName = "networktuningnodestates")]
[ResourceNames("ntns", Categories = ["nettune"])]
[Description("NetworkTuningNodeState holds the merged desired tuning of one node (spec, written by the operator) and what the node's agent discovered, planned and applied (status).")]
[PrinterColumn("Applied", "string", ".status.conditions[?(@.type==\"Applied\")].status")]
[PrinterColumn("Degraded", "string", ".status.conditions[?(@.type==\"Degraded\")].status")]
[PrinterColumn("Generation", "integer", ".status.lastAppliedGeneration", Description = "Last generation of this object the agent applied")]
[PrinterColumn("Revert", "boolean", ".spec.revert")]
[PrinterColumn("Reason", "string", ".status.conditions[?(@.type==\"Applied\")].reason", Priority = 1)]
[PrinterColumn("Age", "date", ".metadata.creationTimestamp")]
public sealed class NetworkTuningNodeState : IKubernetesObject<V1ObjectMeta>, ISpec<NodeStateSpec>, IStatus<NodeStateStatus?>
{
    public const string KindName = "NetworkTuningNodeState";
    public const string Plural = "networktuningnodestates";

    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = ApiGroup.GroupVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = KindName;
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();

    [Required]
    [Description("The desired settings of this node; written by the operator.")]
    [JsonPropertyName("spec")] public NodeStateSpec Spec { get; set; } = new();

    [Description("What the node's agent discovered, planned and applied; written by the agent.")]
    [JsonPropertyName("status")] public NodeStateStatus? Status { get; set; }
}

[Description("A list of NetworkTuningNodeState objects.")]
public sealed class NetworkTuningNodeStateList : IKubernetesObject<V1ListMeta>, IItems<NetworkTuningNodeState>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = ApiGroup.GroupVersion;
    [JsonPropertyName("kind")] public string Kind { get; set; } = "NetworkTuningNodeStateList";
    [JsonPropertyName("metadata")] public V1ListMeta Metadata { get; set; } = new();
    [JsonPropertyName("items")] public IList<NetworkTuningNodeState> Items { get; set; } = [];
}

[Description("The merged desired settings of one node.")]
public sealed class NodeStateSpec
{
    [Required]
    [Length(1, 253)]
    [Description("The node these settings are for.")]
    public string NodeName { get; set; } = "";

    [Default(false)]
    [Description("Put every knob back to the original value the agent journaled before its first change.")]
    public bool Revert { get; set; }

    [Default(false)]
    [Description("Plan only: publish plannedChanges and apply nothing.")]
    public bool DryRun { get; set; }

    [Items(0, 64)]
    [Description("The NetworkTuning objects (and their generations) these settings were merged from.")]
    public List<TuningSource>? Sources { get; set; }

    [Description("NIC settings.")]
    public NicSpec? Nic { get; set; }

    [Items(0, 2)]
    // The same rules as on NetworkTuningSpec: the twin checks NodeStates too, so the CRD must as well.
    [CelRule("hugepages-unique-size", "self.all(x, self.exists_one(y, y.size == x.size))", "each hugepage size may appear once")]
    [Description("Hugepages per NUMA node, one entry per page size.")]
    public List<HugepagesSpec>? Hugepages { get; set; }

    [Description("The most memory hugepages may hold on this node, worked out by the operator when the hugepages it asks for change: the agent refuses pools beyond it. Absent: only maxNodeMemoryPercent caps them.")]
    public HugepagesBudget? HugepagesBudget { get; set; }

    [Items(0, 64)]
    [CelRule("sysctls-allowed", SysctlAllowList.CelRule, SysctlAllowList.CelMessage)]
    [Description("Sysctls to set.")]
    public Dictionary<string, string>? Sysctls { get; set; }
}

[Description("What hugepages may take of a node without taking memory the kubelet has already given pods.")]
public sealed class HugepagesBudget
{
    [Required]
    // 1 PiB: a bound a float64 holds exactly (v1.20's apiserver reads long.MaxValue as -2^63 and refuses every value).
    [Range(0, 1L << 50)]
    [Description("The most bytes hugepages of every size together may hold on the node: the hugepages the kubelet counts already (its allocatable hugepages-*) plus its allocatable memory less the memory the node's pods request. Reserving more would take memory scheduled pods were promised, and the kubelet's allocatable memory does not shrink until it restarts.")]
    public long MaxBytes { get; set; }

    [Length(0, 1024)]
    [Description("How maxBytes was worked out, with the numbers, for messages.")]
    public string? Basis { get; set; }
}

[Description("A NetworkTuning that contributed to a node's settings.")]
public sealed class TuningSource
{
    [Required]
    [Description("Name of the NetworkTuning.")]
    public string Name { get; set; } = "";

    [Required]
    [Description("Its metadata.generation that was merged.")]
    public long Generation { get; set; }

    [Description("Its priority.")]
    public int Priority { get; set; }

    [Items(0, 256)]
    [Description("The knobs it won on this node, such as nic.channels, sysctl/net.core.somaxconn or hugepages/2Mi.")]
    public List<string>? Knobs { get; set; }
}

[Description("What the agent discovered, planned and applied.")]
public sealed class NodeStateStatus
{
    [Description("The metadata.generation of this object the agent last acted on.")]
    public long? ObservedGeneration { get; set; }

    [Description("The metadata.generation of this object whose settings were last applied in full.")]
    public long? LastAppliedGeneration { get; set; }

    [Description("Applied, Degraded and Reverted, after the Kubernetes API conventions.")]
    public List<V1Condition>? Conditions { get; set; }

    [Description("The node's NUMA, CPU and NIC topology.")]
    public NodeTopology? Topology { get; set; }

    [Description("The changes the agent plans (or, in dry-run, would make).")]
    public List<PlannedChange>? PlannedChanges { get; set; }

    [Description("The result of each knob the agent applied.")]
    public List<KnobResult>? Knobs { get; set; }

    [Description("Knobs found changed by someone else, and how often they were repaired.")]
    public List<DriftCounter>? Drift { get; set; }

    [Description("Version of the agent that wrote this status.")]
    public string? AgentVersion { get; set; }

    [Description("The kernel boot id (/proc/sys/kernel/random/boot_id) of the boot this status describes. The operator keeps the node's nettune.io/tuned label only while it equals the Node's status.nodeInfo.bootID: after a reboot the settings are gone until the agent applies them again.")]
    public string? BootId { get; set; }
}

[Description("NUMA nodes, CPUs and NICs of the node.")]
public sealed class NodeTopology
{
    [Description("NUMA nodes.")]
    public List<NumaNodeInfo>? NumaNodes { get; set; }

    [Description("Online CPUs as a cpulist.")]
    public string? OnlineCpus { get; set; }

    [Description("Isolated CPUs (isolcpus) as a cpulist.")]
    public string? IsolatedCpus { get; set; }

    [Description("Online CPUs with their package, core and hyper-thread siblings.")]
    public List<CpuTopology>? Cpus { get; set; }

    [Description("Network interfaces.")]
    public List<NicInfo>? Nics { get; set; }
}

[Description("Where one CPU sits.")]
public sealed class CpuTopology
{
    [Description("CPU id.")]
    public int Id { get; set; }

    [Description("Physical package (socket) id.")]
    public int Package { get; set; }

    [Description("Core id within the package.")]
    public int Core { get; set; }

    [Description("The CPUs sharing this core (this one included) as a cpulist.")]
    public string? ThreadSiblings { get; set; }
}

[Description("One NUMA node.")]
public sealed class NumaNodeInfo
{
    [Description("NUMA node id.")]
    public int Id { get; set; }

    [Description("CPUs of this node as a cpulist.")]
    public string Cpus { get; set; } = "";

    [Description("Memory of this node in bytes.")]
    public long MemoryBytes { get; set; }

    [Description("Distances to every node, in node order.")]
    public List<int>? Distances { get; set; }

    [Description("Hugepages by size.")]
    public List<HugepagesInfo>? Hugepages { get; set; }
}

[Description("Hugepages of one size on one NUMA node.")]
public sealed class HugepagesInfo
{
    [Description("Page size: 2Mi or 1Gi.")]
    public string Size { get; set; } = "";

    [Description("Pages reserved.")]
    public long Total { get; set; }

    [Description("Pages free.")]
    public long Free { get; set; }
}

[Description("One network interface.")]
public sealed class NicInfo
{
    [Description("Interface name.")]
    public string Name { get; set; } = "";

    [Description("Kernel driver.")]
    public string? Driver { get; set; }

    [Description("PCI address of the device (or of its PCI parent for virtio).")]
    public string? PciAddress { get; set; }

    [Description("NUMA node of the device; -1 when the platform does not say (common in VMs): unknown, not node 0.")]
    public int NumaNode { get; set; }

    [Description("CPUs local to the device as a cpulist.")]
    public string? LocalCpus { get; set; }

    [Description("Receive queues.")]
    public int RxQueues { get; set; }

    [Description("Transmit queues.")]
    public int TxQueues { get; set; }

    [Description("Current and maximum channels, as ethtool -l shows them.")]
    public ChannelInfo? Channels { get; set; }

    [Description("Interrupts of the device's queues.")]
    public List<IrqInfo>? Irqs { get; set; }

    [Items(0, 4096)]
    [Description("Each queue with the interrupts that serve it, the CPUs they run on, and its RPS and XPS CPUs, as cpulists.")]
    public List<QueueStatus>? Queues { get; set; }

    [Description("Ring sizes now and the device's maximums (ethtool -g), or why they are unknown. Read only for NICs a spec selects.")]
    public string? Rings { get; set; }

    [Description("Interrupt coalescing now (ethtool -c), or why it is unknown. Read only for NICs a spec selects.")]
    public string? Coalesce { get; set; }

    [Description("Pause frames now (ethtool -a), or why they are unknown. Read only for NICs a spec selects.")]
    public string? Pause { get; set; }

    [Description("The offloads NetTune can set, as the device has them (ethtool -k): requested state, [fixed] when the device cannot change it, (inactive) when requested but kept off. Read only for NICs a spec selects.")]
    public string? Offloads { get; set; }

    [Description("What the last run did to this NIC's knobs (its channels, settings, queues and queue interrupts).")]
    public NicKnobSummary? KnobResults { get; set; }
}

[Description("One queue of a NIC.")]
public sealed class QueueStatus
{
    [Description("Queue index: rx-N and tx-N share it; a combined channel is one of each.")]
    public int Queue { get; set; }

    [Description("The interrupts that serve this queue, comma-separated.")]
    public string? Irqs { get; set; }

    [Description("The CPUs those interrupts may run on (their smp_affinity_list).")]
    public string? IrqCpus { get; set; }

    [Description("rx-N's rps_cpus as a cpulist; empty when RPS is off.")]
    public string? RpsCpus { get; set; }

    [Description("tx-N's xps_cpus as a cpulist; empty when XPS is off or the device has one tx queue.")]
    public string? XpsCpus { get; set; }

    [Description("When this queue's interrupts are on one CPU of a data-plane pod (irqAffinity AlignWithDataPlane puts them there): the data-plane worker pinned to that CPU (the data plane runs worker i on the pod's i-th CPU, ascending), which accepts the connections arriving on this queue.")]
    public DataPlaneWorkerRef? Worker { get; set; }
}

[Description("A data-plane worker: the pod and container the kubelet gave the CPU to, and the worker's index there.")]
public sealed class DataPlaneWorkerRef
{
    [Required]
    [Description("UID of the data-plane pod.")]
    public string PodUid { get; set; } = "";

    [Description("The pod's NUMA node (the nettune.io/numa-node-N device it holds).")]
    public int NumaNode { get; set; }

    [Description("The CPU, one of the pod's exclusive CPUs.")]
    public int Cpu { get; set; }

    [Description("Index of the worker on that CPU (nettune_dataplane_accepts_total{worker=...}).")]
    public int Index { get; set; }
}

[Description("The knobs of one NIC by outcome.")]
public sealed class NicKnobSummary
{
    [Items(0, 4096)]
    [Description("Knobs at their targets.")]
    public List<string>? Applied { get; set; }

    [Items(0, 1024)]
    [Description("Knobs left alone, with the reason (the driver does not support them, a fixed feature, the management interface).")]
    public List<KnobNote>? Skipped { get; set; }

    [Items(0, 1024)]
    [Description("Knobs that failed, with the kernel's error.")]
    public List<KnobNote>? Failed { get; set; }
}

[Description("A knob and why it has its outcome.")]
public sealed class KnobNote
{
    [Description("The knob.")]
    public string Knob { get; set; } = "";

    [Description("Why.")]
    public string? Reason { get; set; }
}

[Description("Channel counts of a NIC.")]
public sealed class ChannelInfo
{
    [Description("Receive-only channels now.")]
    public int Rx { get; set; }

    [Description("Transmit-only channels now.")]
    public int Tx { get; set; }

    [Description("Other (link interrupt) channels now.")]
    public int Other { get; set; }

    [Description("Combined rx+tx channels now.")]
    public int Combined { get; set; }

    [Description("Most receive-only channels the device supports.")]
    public int MaxRx { get; set; }

    [Description("Most transmit-only channels the device supports.")]
    public int MaxTx { get; set; }

    [Description("Most other channels the device supports.")]
    public int MaxOther { get; set; }

    [Description("Most combined channels the device supports.")]
    public int MaxCombined { get; set; }
}

[Description("One queue interrupt.")]
public sealed class IrqInfo
{
    [Description("IRQ number.")]
    public int Irq { get; set; }

    [Description("Its name in /proc/interrupts, such as virtio2-input.0 or eth0-TxRx-3.")]
    public string? Name { get; set; }

    [Description("The queue index it serves, when known.")]
    public int? Queue { get; set; }

    [Description("Its current affinity as a cpulist.")]
    public string? Cpus { get; set; }

    [Description("True when the kernel manages its affinity (it refuses changes).")]
    public bool Managed { get; set; }
}

[Description("One change the agent plans.")]
public sealed class PlannedChange
{
    [Description("The knob, such as nic/eth0/channels, nic/eth0/rx-0/rps_cpus, irq/35/affinity, hugepages/node0/2Mi or sysctl/net.core.somaxconn.")]
    public string Knob { get; set; } = "";

    [Description("The file (relative to the host root) or interface the change goes to.")]
    public string? Path { get; set; }

    [Description("The value now.")]
    public string? Current { get; set; }

    [Description("The value the agent will set.")]
    public string? Target { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<KnobOutcome>))]
public enum KnobOutcome
{
    Applied,
    Failed,
    Skipped,
    Managed,
    Shortfall,
    Reverted,
}

[Description("The result of applying one knob.")]
public sealed class KnobResult
{
    [Description("The knob.")]
    public string Knob { get; set; } = "";

    [Description("The value read back after the write.")]
    public string? Value { get; set; }

    [Description("Applied, Failed, Skipped, Managed (the kernel manages it), Shortfall (fewer hugepages than asked) or Reverted.")]
    public KnobOutcome Result { get; set; }

    [Description("The kernel's error or other detail.")]
    public string? Message { get; set; }
}

[Description("Drift of one knob.")]
public sealed class DriftCounter
{
    [Description("The knob.")]
    public string Knob { get; set; } = "";

    [Description("Times the knob was found changed.")]
    public long Detected { get; set; }

    [Description("Times it was set back.")]
    public long Repaired { get; set; }
}
