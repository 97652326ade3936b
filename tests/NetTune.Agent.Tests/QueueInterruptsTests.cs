using NetTune.Agent.Core.Status;

namespace NetTune.Agent.Tests;

/// <summary>The per-queue interrupt counts behind nettune_agent_queue_interrupts_total: one entry per queue, not per vector and CPU.</summary>
public sealed class QueueInterruptsTests
{
    [Fact]
    public void EachQueueSumsItsVectorsOverAllCpus_AndCarriesTheCpuOfItsFirstVector()
    {
        using var host = FixtureHost.TwoSocket();
        var snapshot = host.Discover();
        // eth1's queue 2 is IRQ 103, eth0's queue 1 is virtio2-input.1 / -output.1 (IRQs 43 and 44).
        var cpus = string.Join(' ', Enumerable.Range(0, 32).Select(c => $"CPU{c}"));
        var text = $"           {cpus}\n" +
                   $" 103: {string.Join(' ', Enumerable.Range(0, 32).Select(c => c == 9 ? "700" : c == 3 ? "5" : "0"))}  IR-PCI-MSIX-0000:af:00.0 3-edge eth1-TxRx-2\n" +
                   $"  43: {string.Join(' ', Enumerable.Range(0, 32).Select(c => c == 0 ? "11" : "0"))}  PCI-MSIX-0000:00:03.0 3-edge virtio2-input.1\n" +
                   $"  44: {string.Join(' ', Enumerable.Range(0, 32).Select(c => c == 1 ? "4" : "0"))}  PCI-MSIX-0000:00:03.0 4-edge virtio2-output.1\n" +
                   " NMI: 1 1 Non-maskable interrupts\n";
        host.Write("proc/irq/103/smp_affinity_list", "9");
        snapshot = host.Discover();

        var counts = QueueInterrupts.Of(snapshot, QueueInterrupts.Parse(text));

        Assert.Equal(new QueueInterruptCount("eth1", 2, 9, 705), counts.Single(c => c.Nic == "eth1" && c.Queue == 2));
        Assert.Equal(15, counts.Single(c => c.Nic == "eth0" && c.Queue == 1).Interrupts);
        Assert.Equal(0, counts.Single(c => c.Nic == "eth1" && c.Queue == 0).Interrupts);
        // One entry per queue of each NIC with interrupts: bounded by queues, whatever the CPUs.
        Assert.Equal(snapshot.Nics.Sum(n => n.Irqs.Select(i => i.Queue).Distinct().Count()), counts.Count);
    }
}
