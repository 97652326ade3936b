using NetTune.Agent.Core;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Status;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// irqAffinity AlignWithDataPlane on the two-socket fixture (eth1: ice on NUMA node 1, 16 of 32 combined channels):
/// the data-plane pod is the container holding nettune.io/numa-node-1 in the kubelet's device checkpoint, its CPUs
/// come from the CPU manager checkpoint, and queue q goes to its q-th CPU.
/// </summary>
public sealed class AlignmentTests
{
    private static NodeStateSpec Aligned(string nic = "eth1") => new()
    {
        NodeName = "n",
        Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = [nic] },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane },
        },
    };

    /// <summary>The kubelet's two checkpoints: <paramref name="cpus"/> per (pod, container), <paramref name="devices"/> per (pod, container).</summary>
    private static void Kubelet(FixtureHost host, (string Pod, string Container, string Cpus)[] cpus, (string Pod, string Container, string Resource)[] devices)
    {
        Directory.CreateDirectory(Path.Join(host.Root, "var/lib/kubelet/device-plugins"));
        var entries = string.Join(",", cpus.GroupBy(c => c.Pod).Select(g => $"\"{g.Key}\":{{{string.Join(",", g.Select(c => $"\"{c.Container}\":\"{c.Cpus}\""))}}}"));
        host.Write("var/lib/kubelet/cpu_manager_state", $"{{\"policyName\":\"static\",\"defaultCpuSet\":\"0-9,14-31\",\"entries\":{{{entries}}},\"checksum\":1}}");
        var pods = string.Join(",", devices.Select(d =>
            $"{{\"PodUID\":\"{d.Pod}\",\"ContainerName\":\"{d.Container}\",\"ResourceName\":\"{d.Resource}\",\"DeviceIDs\":{{\"1\":[\"d0\"]}},\"AllocResp\":\"\"}}"));
        host.Write("var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
            $"{{\"Data\":{{\"PodDeviceEntries\":[{pods}],\"RegisteredDevices\":{{}}}},\"Checksum\":1}}");
    }

    private static string Mask(params int[] cpus) => CpuMask.Format(cpus, 32);

    [Fact]
    public void EachQueueOfTheNicGoesToOneWorkerCpuOfTheDataPlanePodOnItsNumaNode()
    {
        using var host = FixtureHost.TwoSocket();
        Kubelet(host, [("dp1", "dataplane", "10-13"), ("app", "main", "14-15")], [("dp1", "dataplane", "nettune.io/numa-node-1"), ("app", "main", "example.com/gpu")]);
        var snapshot = host.Discover();
        Assert.Equal([10, 11, 12, 13], Assert.Single(snapshot.DataPlanes).Cpus);

        var plan = TuningPlanner.Plan(snapshot, Aligned());
        Assert.Contains("combined=4", Target(plan, "nic/eth1/channels"), StringComparison.Ordinal);
        var irqs = plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).ToArray();
        Assert.Equal(4, irqs.Length);
        for (var q = 0; q < 4; q++)
        {
            Assert.Equal($"{10 + q}", irqs.Single(k => k.Identity == $"eth1-TxRx-{q}").Target);
            Assert.Equal(Mask(10 + q), Target(plan, $"nic/eth1/tx-{q}/xps_cpus"));
            Assert.Equal(Mask(), Target(plan, $"nic/eth1/rx-{q}/rps_cpus"));
        }
        // The queues the channel change removes get nothing; the other pod's exclusive CPU gets nothing.
        Assert.DoesNotContain(plan.Desired, d => d.Knob.Contains("rx-12", StringComparison.Ordinal) || d.Knob.Contains("tx-4", StringComparison.Ordinal));
        Assert.DoesNotContain(irqs, k => k.Target is "14" or "15");
        Assert.DoesNotContain(plan.Notes, n => n.Knob == "nic/eth1/alignment");
    }

    [Fact]
    public void MoreWorkersThanTheNicsMaximumTakeEveryChannel_AndWorkersPastItGetNoQueue()
    {
        using var host = FixtureHost.TwoSocket();
        // eth0: virtio on node 0, 4 queue pairs at most, each pair's input and output interrupt on the pair's CPU; here
        // not the management interface (no default route), whose channels are left alone.
        host.Write("proc/net/route", "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT");
        Kubelet(host, [("dp0", "dataplane", "1-6")], [("dp0", "dataplane", "nettune.io/numa-node-0")]);
        var plan = TuningPlanner.Plan(host.Discover(), Aligned("eth0"));
        Assert.Contains("combined=4", Target(plan, "nic/eth0/channels"), StringComparison.Ordinal);
        var irqs = plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).ToArray();
        Assert.Equal(8, irqs.Length);
        for (var q = 0; q < 4; q++)
        {
            Assert.Equal($"{1 + q}", irqs.Single(k => k.Identity == $"virtio2-input.{q}").Target);
            Assert.Equal($"{1 + q}", irqs.Single(k => k.Identity == $"virtio2-output.{q}").Target);
        }
        Assert.DoesNotContain(irqs, k => k.Target is "5" or "6");
    }

    [Fact]
    public void WithoutADataPlanePodOnTheNicsNode_TheQueuesArePlacedNumaLocalSpread_AndTheNoteSaysWhy()
    {
        using var host = FixtureHost.TwoSocket();
        // The pod holds node 0's device; eth1 is on node 1.
        Kubelet(host, [("dp0", "dataplane", "1-2")], [("dp0", "dataplane", "nettune.io/numa-node-0")]);
        var plan = TuningPlanner.Plan(host.Discover(), Aligned());
        var note = plan.Notes.Single(n => n.Knob == "nic/eth1/alignment");
        Assert.Equal(KnobOutcome.Skipped, note.Outcome);
        Assert.Contains("numa0", note.Message, StringComparison.Ordinal);
        Assert.Contains("NumaLocalSpread", note.Message, StringComparison.Ordinal);
        // NumaLocalSpread: all 16 queues on node 1's CPUs, channels left alone, RPS not touched.
        var irqs = plan.Desired.Where(d => d.Kind == KnobKind.IrqAffinity).ToArray();
        Assert.Equal(16, irqs.Length);
        Assert.All(irqs, k => Assert.True(int.Parse(k.Target, System.Globalization.CultureInfo.InvariantCulture) is >= 8 and <= 15 or >= 24));
        Assert.DoesNotContain(plan.Desired, d => d.Knob == "nic/eth1/channels" || d.Kind == KnobKind.RpsCpus);
    }

    [Fact]
    public void AContainerNamedLikeTheDataPlaneWithoutItsDeviceIsNotTheDataPlane()
    {
        using var host = FixtureHost.TwoSocket();
        Kubelet(host, [("intruder", "dataplane", "8-9")], [("intruder", "dataplane", "example.com/nettune.io-numa-node-1")]);
        var snapshot = host.Discover();
        Assert.Empty(snapshot.DataPlanes);
        var plan = TuningPlanner.Plan(snapshot, Aligned());
        Assert.Contains("no data-plane pod runs on this node", plan.Notes.Single(n => n.Knob == "nic/eth1/alignment").Message, StringComparison.Ordinal);
        Assert.DoesNotContain(plan.Desired, d => d.Kind == KnobKind.IrqAffinity && d.Target is "8" or "9");
    }

    [Fact]
    public void ARepinnedPodMovesTheQueues_EvenWhenTheNodesExclusiveCpusStayTheSame()
    {
        using var host = FixtureHost.TwoSocket();
        Kubelet(host, [("dp1", "dataplane", "10-11"), ("app", "main", "24-25")], [("dp1", "dataplane", "nettune.io/numa-node-1")]);
        var discovery = new HostFactsDiscovery(host.Fs);
        var before = discovery.KubeletCpus(KubeletCpuAssignment.DefaultKubeletRootDir);
        Assert.Equal("10", TuningPlanner.Plan(host.Discover(), Aligned()).Desired.Single(k => k.Identity == "eth1-TxRx-0").Target);

        // The two pods swap CPUs (a restart each): the union the old watch compared is unchanged.
        Kubelet(host, [("dp1", "dataplane", "24-25"), ("app", "main", "10-11")], [("dp1", "dataplane", "nettune.io/numa-node-1")]);
        var after = discovery.KubeletCpus(KubeletCpuAssignment.DefaultKubeletRootDir);
        Assert.Equal(before.ExclusiveCpus, after.ExclusiveCpus);
        Assert.False(after.SameAs(before));
        Assert.True(after.SameAs(discovery.KubeletCpus(KubeletCpuAssignment.DefaultKubeletRootDir)));
        var plan = TuningPlanner.Plan(host.Discover(), Aligned());
        Assert.Equal("24", plan.Desired.Single(k => k.Identity == "eth1-TxRx-0").Target);
        Assert.Equal("25", plan.Desired.Single(k => k.Identity == "eth1-TxRx-1").Target);
    }

    [Fact]
    public void StatusNamesTheWorkerOnEachAlignedQueuesCpu_ReadBackAfterTheApply_AndTheRevertRestoresEverything()
    {
        using var host = FixtureHost.TwoSocket();
        Kubelet(host, [("dp1", "dataplane", "10-13")], [("dp1", "dataplane", "nettune.io/numa-node-1")]);
        var before = host.TreeImage();
        var engine = host.Engine();
        var report = engine.Apply(Aligned());
        Assert.True(report.Kind == Core.Apply.RunKind.Applied, report.Message);
        Assert.Equal("rx=0,tx=0,other=1,combined=4", host.Read(".fixture/ethtool/eth1").Split(" max ")[0]);
        Assert.Equal("00000000", host.Read("sys/class/net/eth1/queues/rx-0/rps_cpus"));
        Assert.Equal("00002000", host.Read("sys/class/net/eth1/queues/tx-3/xps_cpus"));
        Assert.Empty(engine.PlanNow(Aligned()).Plan.Changes);
        var eth1 = StatusBuilder.Topology(report.Host!).Nics!.Single(n => n.Name == "eth1");
        Assert.Equal(4, eth1.Queues!.Count);
        for (var q = 0; q < 4; q++)
        {
            var worker = eth1.Queues[q].Worker!;
            Assert.Equal(("dp1", 1, 10 + q, q), (worker.PodUid, worker.NumaNode, worker.Cpu, worker.Index));
            Assert.Equal($"{10 + q}", eth1.Queues[q].IrqCpus);
            Assert.Null(eth1.Queues[q].RpsCpus);
        }
        // Without the policy the queues' CPUs are housekeeping ones: no worker is named.
        Assert.All(StatusBuilder.Topology(report.Host!).Nics!.Single(n => n.Name == "eth0").Queues!, q => Assert.Null(q.Worker));

        // Journaled like every knob: the revert puts back the channels, interrupts, RPS and XPS byte for byte.
        var revert = engine.Revert();
        Assert.True(revert.Kind == Core.Apply.RunKind.Reverted, revert.Message);
        TreeAssert.Same(before, host.TreeImage());
    }

    private static string Target(TuningPlan plan, string knob) => plan.Desired.Single(d => d.Knob == knob).Target;
}
