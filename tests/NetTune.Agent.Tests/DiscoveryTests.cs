using NetTune.Agent.Core.Topology;

namespace NetTune.Agent.Tests;

public sealed class DiscoveryTests
{
    [Fact]
    public void TwoSocket_FindsNodesCpusPoolsAndDistances()
    {
        using var host = FixtureHost.TwoSocket();
        var snap = host.Discover();
        Assert.Equal([0, 1], snap.NumaNodes.Select(n => n.Id));
        Assert.Equal("0-7,16-23", NetTune.Api.V1Alpha1.CpuList.Format(snap.NumaNodes[0].Cpus));
        Assert.Equal("8-15,24-31", NetTune.Api.V1Alpha1.CpuList.Format(snap.NumaNodes[1].Cpus));
        Assert.Equal([21, 10], snap.NumaNodes[1].Distances);
        Assert.Equal(64L << 30, snap.NumaNodes[0].MemoryBytes);
        Assert.Equal(["2Mi", "1Gi"], snap.NumaNodes[0].Hugepages.Select(p => p.Size));
        Assert.Equal(256, snap.NumaNodes[0].Hugepages[0].Total);
        Assert.Equal(2, snap.NumaNodes[1].Hugepages[1].Total);
        Assert.Equal(32, snap.OnlineCpus.Count);
        Assert.Equal(32, snap.CpuIds);
        var cpu9 = snap.Cpus.Single(c => c.Id == 9);
        Assert.Equal((1, 1, "9,25"), (cpu9.Package, cpu9.Core, cpu9.ThreadSiblings));
    }

    [Fact]
    public void Virtio_NumaNodeAndLocalCpusComeFromThePciParent()
    {
        using var host = FixtureHost.TwoSocket();
        var eth0 = host.Discover().Nics.Single(n => n.Name == "eth0");
        Assert.Equal("virtio_net", eth0.Driver);
        Assert.Equal("0000:00:03.0", eth0.PciAddress);
        Assert.Equal(0, eth0.NumaNode);
        Assert.Equal("0-7,16-23", NetTune.Api.V1Alpha1.CpuList.Format(eth0.LocalCpus!));
        Assert.Equal((4, 4), (eth0.RxQueues.Count, eth0.TxQueues.Count));
        Assert.Equal(4, eth0.Channels!.Value.Current.Combined);
        // virtio2-config (40) serves no queue; input.q / output.q alternate from 41.
        Assert.Equal(Enumerable.Range(41, 8), eth0.Irqs.Select(i => i.Irq));
        Assert.Equal((3, IrqRole.Tx), (eth0.Irqs.Single(i => i.Irq == 48).Queue, eth0.Irqs.Single(i => i.Irq == 48).Role));
        Assert.Equal((3, IrqRole.Rx), (eth0.Irqs.Single(i => i.Irq == 47).Queue, eth0.Irqs.Single(i => i.Irq == 47).Role));
    }

    [Fact]
    public void VendorNic_TxRxInterruptsMapToQueues_AndTheMiscVectorIsLeftOut()
    {
        using var host = FixtureHost.TwoSocket();
        var eth1 = host.Discover().Nics.Single(n => n.Name == "eth1");
        Assert.Equal(("ice", 1, "0000:af:00.0"), (eth1.Driver, eth1.NumaNode, eth1.PciAddress));
        Assert.Equal(16, eth1.Irqs.Count);
        Assert.All(eth1.Irqs, i => Assert.Equal(IrqRole.Combined, i.Role));
        Assert.Equal(Enumerable.Range(0, 16), eth1.Irqs.Select(i => i.Queue));
        Assert.DoesNotContain(eth1.Irqs, i => i.Irq == 100);
        Assert.Equal(32, eth1.Channels!.Value.Max.Combined);
        Assert.Equal("00000006", eth1.RxQueues.Single(q => q.Index == 12).RpsCpus);
    }

    [Fact]
    public void ThisVm_UnknownNumaNode_AndNoXpsOnASingleQueue()
    {
        using var host = FixtureHost.ThisVm();
        var snap = host.Discover();
        var eth0 = Assert.Single(snap.Nics);
        Assert.Equal(-1, eth0.NumaNode);
        Assert.Null(Assert.Single(eth0.TxQueues).XpsCpus);
        Assert.Equal([(38, 0, IrqRole.Rx), (39, 0, IrqRole.Tx)], eth0.Irqs.Select(i => (i.Irq, i.Queue, i.Role)));
        Assert.Equal("0-1", eth0.Irqs[0].AffinityList);
        Assert.Equal("4096", snap.Sysctls["net.core.somaxconn"]);
        Assert.Equal("4096\t131072\t6291456", snap.Sysctls["net.ipv4.tcp_rmem"]);
    }

    [Fact]
    public void Cpu256_Mlx5CompletionVectorsBelongToTheirPciFunction()
    {
        using var host = FixtureHost.Cpu256();
        var snap = host.Discover();
        Assert.Equal(256, snap.CpuIds);
        var nic = Assert.Single(snap.Nics);
        Assert.Equal(63, nic.Irqs.Count);
        Assert.Equal(62, nic.Irqs[^1].Queue);
        Assert.Equal("ffffffff,ffffffff,ffffffff,ffffffff,ffffffff,ffffffff,ffffffff,ffffffff".Replace("f", "0"), nic.RxQueues[0].RpsCpus);
    }

    [Theory]
    [InlineData("virtio2-input.3", "eth0", "virtio2", null, 3, IrqRole.Rx)]
    [InlineData("virtio2-output.0", "eth0", "virtio2", null, 0, IrqRole.Tx)]
    [InlineData("eth1-TxRx-7", "eth1", null, null, 7, IrqRole.Combined)]
    [InlineData("i40e-eth1-TxRx-2", "eth1", null, null, 2, IrqRole.Combined)]
    [InlineData("eth1-rx-4", "eth1", null, null, 4, IrqRole.Rx)]
    [InlineData("mlx5_comp5@pci:0000:3b:00.0", "ens1", null, "0000:3b:00.0", 5, IrqRole.Combined)]
    public void ClassifiesQueueInterruptNames(string name, string ifName, string? virtio, string? pci, int queue, IrqRole role) =>
        Assert.Equal((queue, role), TopologyDiscovery.ClassifyIrqName(name, ifName, virtio, pci));

    [Theory]
    [InlineData("virtio3-input.0", "eth0", "virtio2", null)]
    [InlineData("virtio2-config", "eth0", "virtio2", null)]
    [InlineData("eth10-TxRx-1", "eth1", null, null)]
    [InlineData("mlx5_comp5@pci:0000:3b:00.1", "ens1", null, "0000:3b:00.0")]
    [InlineData("mlx5_async0@pci:0000:3b:00.0", "ens1", null, "0000:3b:00.0")]
    public void IgnoresInterruptsOfOtherDevicesOrNoQueue(string name, string ifName, string? virtio, string? pci) =>
        Assert.Null(TopologyDiscovery.ClassifyIrqName(name, ifName, virtio, pci));
}
