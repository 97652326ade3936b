using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>Every common driver's queue interrupts are found, or the NIC is named in status as not tuned.</summary>
public sealed class QueueIrqTests
{
    [Theory]
    [InlineData("eth0", "ena", new[] { 61, 62, 63, 64 })]
    [InlineData("eno1", "bnx2x", new[] { 71, 72, 73, 74 })]
    [InlineData("ens2", "mlx4_core", new[] { 81, 82, 83, 84 })]
    [InlineData("ens5-a", "ixgbe", new[] { 100, 101, 102, 103 })]
    [InlineData("ens6-b", "i40e", new[] { 111, 112, 113, 114 })]
    public void DriverZoo_EachDriversQueueVectorsMapToQueues0To3_WithoutTheirAdminVectors(string nic, string driver, int[] irqs)
    {
        using var host = FixtureHost.DriverZoo();
        var n = host.Discover().Nics.Single(x => x.Name == nic);
        Assert.Equal(driver, n.Driver);
        Assert.Equal(IrqSource.Names, n.IrqSource);
        Assert.Equal(irqs, n.Irqs.Select(i => i.Irq));
        Assert.Equal([0, 1, 2, 3], n.Irqs.Select(i => i.Queue));
        Assert.All(n.Irqs, i => Assert.Equal(IrqRole.Combined, i.Role));
    }

    [Fact]
    public void Gve_TxBlocksComeFirst_ThenRx_AndTheManagementVectorIsLeftOut()
    {
        using var host = FixtureHost.DriverZoo();
        var gve = host.Discover().Nics.Single(x => x.Name == "ens4");
        Assert.Equal(Enumerable.Range(90, 8), gve.Irqs.Select(i => i.Irq));
        Assert.Equal([(0, IrqRole.Tx), (1, IrqRole.Tx), (2, IrqRole.Tx), (3, IrqRole.Tx), (0, IrqRole.Rx), (1, IrqRole.Rx), (2, IrqRole.Rx), (3, IrqRole.Rx)],
            gve.Irqs.Select(i => (i.Queue, i.Role)));
    }

    [Fact]
    public void UnknownNaming_FallsBackToTheDevicesMsiVectors()
    {
        using var host = FixtureHost.DriverZoo();
        var sfc = host.Discover().Nics.Single(x => x.Name == "ens7");
        Assert.Equal(IrqSource.MsiVectors, sfc.IrqSource);
        Assert.Equal([(120, 0), (121, 1), (122, 2), (123, 3)], sfc.Irqs.Select(i => (i.Irq, i.Queue)));
    }

    [Fact]
    public void EveryZooNicIsTuned_AndTheOneWithoutQueueVectorsFailsByName_NotSilently()
    {
        using var host = FixtureHost.DriverZoo();
        var spec = new NodeStateSpec
        {
            NodeName = "zoo",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["*"] }, IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread } },
        };
        var report = host.Engine().Apply(spec);
        Assert.Equal(RunKind.Failed, report.Kind);
        var failed = Assert.Single(report.Knobs, k => k.Result == KnobOutcome.Failed);
        Assert.Equal("nic/ens8/irqs", failed.Knob);
        Assert.Contains("ens8", failed.Message);
        Assert.Contains("nic/ens8/irqs", report.Message);
        // Queue q of every other NIC on CPU q.
        foreach (var (irq, cpu) in new[] { (61, 0), (64, 3), (71, 0), (84, 3), (93, 3), (97, 3), (100, 0), (114, 3), (123, 3) })
            Assert.Equal($"{cpu}", host.Read($"proc/irq/{irq}/smp_affinity_list"));
        // Admin and async vectors stay where they were.
        foreach (var irq in new[] { 60, 70, 80, 98, 104, 110 })
            Assert.Equal("0-7", host.Read($"proc/irq/{irq}/smp_affinity_list"));
    }

    [Theory]
    [InlineData("eth0-Tx-Rx-3", "eth0", null, 3, IrqRole.Combined)]
    [InlineData("eth0-fp-2", "eth0", null, 2, IrqRole.Combined)]
    [InlineData("ens5-a-TxRx-1", "ens5-a", null, 1, IrqRole.Combined)]
    [InlineData("i40e-ens5-a-TxRx-1", "ens5-a", null, 1, IrqRole.Combined)]
    [InlineData("ice-eth1-TxRx-0", "eth1", null, 0, IrqRole.Combined)]
    [InlineData("eth0-rxtx-5", "eth0", null, 5, IrqRole.Combined)]
    [InlineData("eth0-tx-1", "eth0", null, 1, IrqRole.Tx)]
    [InlineData("mlx4-1@0000:04:00.0", "ens2", "0000:04:00.0", 0, IrqRole.Combined)]
    [InlineData("mlx4-comp-2@pci:0000:04:00.0", "ens2", "0000:04:00.0", 2, IrqRole.Combined)]
    [InlineData("gve-ntfy-blk3@pci:0000:00:04.0", "ens4", "0000:00:04.0", 3, IrqRole.Combined)]
    public void ClassifiesTheCommonDriversNames(string name, string ifName, string? pci, int queue, IrqRole role) =>
        Assert.Equal((queue, role), QueueIrqNames.Classify(name, ifName, null, pci));

    [Theory]
    [InlineData("ens5-a-TxRx-1", "ens5")]
    [InlineData("eth0-Tx-Rx-3", "eth")]
    [InlineData("mlx4-async@pci:0000:04:00.0", "ens2")]
    [InlineData("ena-mgmnt@pci:0000:00:05.0", "eth0")]
    [InlineData("gve-ntfy-blk3@pci:0000:00:04.1", "ens4")]
    public void DoesNotClaimOtherInterfacesOrAdminVectors(string name, string ifName) =>
        Assert.Null(QueueIrqNames.Classify(name, ifName, null, "0000:00:04.0"));
}
