using System.Globalization;
using System.Text.RegularExpressions;

namespace NetTune.Agent.Core.Topology;

/// <summary>How a NIC's queue interrupts were found.</summary>
public enum IrqSource
{
    /// <summary>No queue interrupt found.</summary>
    None,
    /// <summary>From the names the driver gives its vectors in /proc/interrupts.</summary>
    Names,
    /// <summary>The device's msi_irqs less its admin/async vectors, in vector order: the driver's names are unknown.</summary>
    MsiVectors,
}

/// <summary>
/// The names drivers give their queue interrupts in /proc/interrupts (the string each passes to request_irq):
/// <list type="bullet">
/// <item>netdev-named: ixgbe/igb/bnxt_en <c>eth0-TxRx-0</c> (<c>-rx-</c>/<c>-tx-</c> when split), i40e/ice/iavf
/// <c>i40e-ens5-TxRx-0</c> (driver prefix), ENA <c>eth0-Tx-Rx-0</c>, bnx2x/qede <c>eth0-fp-0</c>, vmxnet3/nfp
/// <c>eth0-rxtx-0</c>; the interface name itself may contain dashes (<c>ens5-a-TxRx-0</c>);</item>
/// <item>PCI-named: mlx5 <c>mlx5_comp0@pci:0000:3b:00.0</c>, mlx4 <c>mlx4-1@0000:04:00.0</c> (vector 0 is the async
/// EQ; older kernels <c>mlx4-comp-0@pci:…</c>), gve <c>gve-ntfy-blk0@pci:…</c> (tx blocks first, then rx);</item>
/// <item>virtio-net <c>virtio2-input.0</c> / <c>virtio2-output.0</c>.</item>
/// </list>
/// Pure: no I/O.
/// </summary>
public static partial class QueueIrqNames
{
    public static (int Queue, IrqRole Role)? Classify(string irqName, string ifName, string? virtioName, string? pciAddress)
    {
        if (virtioName is not null)
        {
            var v = VirtioQueue().Match(irqName);
            if (v.Success && v.Groups[1].Value == virtioName)
                return (Int(v.Groups[3].Value), v.Groups[2].Value == "input" ? IrqRole.Rx : IrqRole.Tx);
            return null;
        }
        var pci = PciNamed().Match(irqName);
        if (pci.Success)
        {
            if (pciAddress is null || pci.Groups["pci"].Value != pciAddress) return null;
            var n = Int(pci.Groups["n"].Value);
            return pci.Groups["kind"].Value switch
            {
                "mlx5_comp" or "mlx4-comp-" or "gve-ntfy-blk" => (n, IrqRole.Combined),
                // mlx4's vector 0 is its async event queue; completion vectors follow from 1.
                _ => n == 0 ? null : (n - 1, IrqRole.Combined),
            };
        }
        if (QueuePart(irqName, ifName) is not { } rest) return null;
        var q = QueueSuffix().Match(rest);
        if (!q.Success) return null;
        var role = q.Groups[1].Value.ToLowerInvariant() switch { "rx" => IrqRole.Rx, "tx" => IrqRole.Tx, _ => IrqRole.Combined };
        return (Int(q.Groups[2].Value), role);
    }

    /// <summary>
    /// gve's notify blocks serve tx queues in the first half and rx queues in the second (gve_tx_idx_to_ntfy /
    /// gve_rx_idx_to_ntfy); the names alone only give the block number.
    /// </summary>
    public static List<(int Irq, string Name, int Queue, IrqRole Role)> SplitGveBlocks(List<(int Irq, string Name, int Queue, IrqRole Role)> irqs)
    {
        var blocks = irqs.Count(i => i.Name.StartsWith("gve-ntfy-blk", StringComparison.Ordinal));
        if (blocks < 2) return irqs;
        var half = blocks / 2;
        return irqs.Select(i => i.Name.StartsWith("gve-ntfy-blk", StringComparison.Ordinal)
            ? (i.Irq, i.Name, i.Queue < half ? i.Queue : i.Queue - half, i.Queue < half ? IrqRole.Tx : IrqRole.Rx)
            : i).ToList();
    }

    /// <summary>
    /// Vectors that serve no queue: admin queues, async/command/page event queues, link or misc vectors (ENA
    /// <c>ena-mgmnt@pci:…</c>, gve <c>gve-mgmnt@pci:…</c>, mlx5 <c>mlx5_async0@pci:…</c>, ice <c>ice-0000:…:misc</c>,
    /// ixgbe's vector named after the interface alone, virtio <c>-config</c>).
    /// </summary>
    public static bool IsNonQueue(string irqName, string ifName) =>
        irqName == ifName || NonQueue().IsMatch(irqName);

    /// <summary>What follows the interface name: "TxRx-0" for eth0-TxRx-0 and for i40e-eth0-TxRx-0.</summary>
    private static string? QueuePart(string irqName, string ifName)
    {
        var prefix = ifName + "-";
        if (irqName.StartsWith(prefix, StringComparison.Ordinal)) return irqName[prefix.Length..];
        // A driver prefix of one word before the interface name (i40e-, ice-, iavf-).
        var at = irqName.IndexOf("-" + prefix, StringComparison.Ordinal);
        if (at <= 0 || !DriverWord().IsMatch(irqName[..at])) return null;
        return irqName[(at + 1 + prefix.Length)..];
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^(virtio\d+)-(input|output)\.(\d+)$")] private static partial Regex VirtioQueue();
    [GeneratedRegex(@"^(?<kind>mlx5_comp|mlx4-comp-|mlx4-|gve-ntfy-blk)(?<n>\d+)@(?:pci:)?(?<pci>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])$")]
    private static partial Regex PciNamed();
    [GeneratedRegex(@"^(TxRx|Tx-Rx|rxtx|txrx|fp|rx|tx)-(\d+)$", RegexOptions.IgnoreCase)] private static partial Regex QueueSuffix();
    [GeneratedRegex(@"^[A-Za-z0-9_]+$")] private static partial Regex DriverWord();
    [GeneratedRegex(@"(async|mgmnt|mgmt|config|cmd|pages|misc|ctrl|adminq|-aq|lsc|ptp|event)", RegexOptions.IgnoreCase)] private static partial Regex NonQueue();
}
