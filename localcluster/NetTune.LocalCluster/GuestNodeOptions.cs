namespace NetTune.LocalCluster;

/// <summary>How the guest node of a local cluster is set up (see <see cref="GuestNode"/>).</summary>
public sealed record GuestNodeOptions
{
    /// <summary>The label that says what the node is, so nobody mistakes it for a server.</summary>
    public const string SimulatedLabel = "nettune.io/simulated";

    public const string SimulatedValue = "qemu-2socket";

    /// <summary>The Node's name.</summary>
    public string Name { get; init; } = "nettune-guest";

    /// <summary>Labels the Node registers with, besides <see cref="SimulatedLabel"/>.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>Memory of each of the guest's two NUMA nodes.</summary>
    public int MemoryPerNumaNodeMiB { get; init; } = 2048;

    /// <summary>Queue pairs of the data NIC (virtio_net on NUMA node 1).</summary>
    public int DataNicQueues { get; init; } = 4;

    /// <summary>
    /// Size of a persistent disk for the guest's /var/lib/containerd, /var/lib/kubelet and /var/lib/nettune (the
    /// agent's journal), so that they survive <see cref="GuestNode.RebootAsync"/> as a server's disk does: a sparse
    /// file in the node's folder, formatted by the guest at its first boot, removed when the node stops. 0: none
    /// (tmpfs, gone with every boot).
    /// </summary>
    public int PersistentDiskGiB { get; init; }

    /// <summary>
    /// The accelerator: <c>auto</c> takes KVM only when <c>/dev/kvm</c> runs a stock guest kernel natively (not
    /// kvm_pvm, which emulates one instruction by instruction), else TCG; <c>tcg</c> or <c>kvm</c> force one.
    /// </summary>
    public string Accelerator { get; init; } = "auto";
}
