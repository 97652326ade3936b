using System.Net;
using System.Net.Sockets;
using System.Text;
using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// The data-plane pods against a real API server, the tests playing the kubelet (pod status through the status
/// subresource, node allocatable) and the data plane (a real HTTP server on 127.0.0.1 answering /readyz as it does).
/// </summary>
[Collection("cluster")]
public sealed class DataPlanePodTests(ClusterFixture fx, ITestOutputHelper output)
{
    private static NodeTopology Sockets(int count, int cpusEach) => new()
    {
        NumaNodes = Enumerable.Range(0, count).Select(i => new NumaNodeInfo { Id = i, Cpus = $"{i * cpusEach}-{(i + 1) * cpusEach - 1}" }).ToList(),
        OnlineCpus = $"0-{count * cpusEach - 1}",
    };

    private static NetworkTuningSpec Spec(TestBed bed, int adminPort = 9180, string? priorityClass = null, int port = 8080) => new()
    {
        NodeSelector = bed.Selector(),
        Rollout = new RolloutSpec { MaxUnavailable = "100%" },
        DataPlane = new DataPlaneSpec
        {
            Enabled = true, Image = "nettune/dataplane:test", Port = port, AdminPort = adminPort, PriorityClassName = priorityClass,
            StaticFiles = new StaticFilesSpec { HostPath = "/srv/www" },
        },
    };

    /// <summary>Two free consecutive loopback ports (one admin port per socket).</summary>
    private static int FreePortPair()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            using var first = new TcpListener(IPAddress.Loopback, 0);
            first.Start();
            var port = ((IPEndPoint)first.LocalEndpoint).Port;
            if (port >= 65535) continue;
            try
            {
                using var second = new TcpListener(IPAddress.Loopback, port + 1);
                second.Start();
                return port;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no two consecutive free ports");
    }

    /// <summary>A data plane's admin endpoint: /readyz with its workers' CPUs and NUMA node, as the data plane writes it.</summary>
    private sealed class ReadyzServer : IDisposable
    {
        private readonly HttpListener _listener = new();

        public ReadyzServer(int port, string body)
        {
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    HttpListenerContext context;
                    try { context = await _listener.GetContextAsync(); }
                    catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                    var bytes = Encoding.UTF8.GetBytes(context.Request.Url!.AbsolutePath == "/readyz" ? body : "not found\n");
                    context.Response.StatusCode = context.Request.Url.AbsolutePath == "/readyz" ? 200 : 404;
                    context.Response.ContentType = "application/json";
                    await context.Response.OutputStream.WriteAsync(bytes);
                    context.Response.Close();
                }
            });
        }

        public static string Workers(int numa, params int[] cpus) =>
            "{\"status\":\"ready\",\"workers\":[" + string.Join(",", cpus.Select((c, i) => $"{{\"worker\":{i},\"cpu\":{c},\"numaNode\":{numa},\"memoryBound\":true}}")) + "]}\n";

        public void Dispose() => _listener.Close();
    }

    private static async Task<List<V1Pod>> PodsOf(TestBed bed, string tuning, int count) =>
        await TestBed.EventuallyAsync(async () => (await bed.DataPlanePodsAsync()).Where(p => p.Metadata.Name.StartsWith(tuning + "-dp-", StringComparison.Ordinal)).ToList(),
            p => p.Count == count, $"{count} data-plane pods of {tuning}");

    [Fact]
    public async Task StatusSaysWhereEachPodRunsWhetherItIsPinnedAndWhenTwoShareASocket()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var node = (await bed.CreateNodesAsync(1)).Single();
        await bed.SetAllocatableAsync(node, ("cpu", "8"), ("memory", "32Gi"), ("pods", "110"));
        await bed.StartOperatorAsync();
        bed.StartAgents(_ => Sockets(2, 4));

        // Each tuning's two pods ask for 3 CPUs (8 allocatable less the agent's 20m, shared by two sockets).
        var (pinnedPort, sharedPort, unpinnedPort) = (FreePortPair(), FreePortPair(), FreePortPair());
        // A static CPU manager under single-numa-node: 3 exclusive CPUs each, one pod per socket.
        using var p0 = new ReadyzServer(pinnedPort, ReadyzServer.Workers(0, 1, 2, 3));
        using var p1 = new ReadyzServer(pinnedPort + 1, ReadyzServer.Workers(1, 5, 6, 7));
        // Both pods of a node on NUMA node 0.
        using var s0 = new ReadyzServer(sharedPort, ReadyzServer.Workers(0, 1, 2, 3));
        using var s1 = new ReadyzServer(sharedPort + 1, ReadyzServer.Workers(0, 0, 1, 2));
        // CPU manager policy none: every pod on every CPU of the node.
        var everywhere = "{\"status\":\"ready\",\"cpus\":\"0-7\",\"workers\":[" + string.Join(",", Enumerable.Range(0, 8).Select(i => $"{{\"worker\":{i},\"cpu\":{i},\"numaNode\":{i / 4}}}")) + "]}";
        using var u0 = new ReadyzServer(unpinnedPort, everywhere);
        using var u1 = new ReadyzServer(unpinnedPort + 1, everywhere);

        // Three data planes on one node: each on its own port (a shared one would be a PortConflict).
        var pinned = (await bed.CreateTuningAsync("pinned", Spec(bed, pinnedPort, port: 8080))).Metadata.Name;
        var shared = (await bed.CreateTuningAsync("shared", Spec(bed, sharedPort, port: 8081))).Metadata.Name;
        var unpinned = (await bed.CreateTuningAsync("unpinned", Spec(bed, unpinnedPort, port: 8082))).Metadata.Name;
        foreach (var tuning in new[] { pinned, shared, unpinned })
        {
            var pods = await PodsOf(bed, tuning, 2);
            Assert.All(pods, p => Assert.Equal("3", p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));
            var waiting = await bed.GetTuningAsync(tuning);
            Assert.Equal("False", TestBed.Condition(waiting!, "Ready")!.Status); // applied, but nothing serves yet
            foreach (var pod in pods) await bed.SetPodStatusAsync(pod.Metadata.Name);
        }

        var good = await bed.WaitForTuningAsync(pinned, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.PodsReady
            && t.Status!.DataPlane!.Pods!.All(p => p.Cpus is not null), "pinned pods placed");
        Assert.Equal("True", TestBed.Condition(good, "Ready")!.Status);
        Assert.Equal((2, 2), (good.Status!.DataPlane!.DesiredPods, good.Status.DataPlane.ReadyPods));
        var byName = good.Status.DataPlane.Pods!.ToDictionary(p => p.Name);
        var first = byName[DataPlanePodBuilder.PodName(pinned, node, 0)];
        var second = byName[DataPlanePodBuilder.PodName(pinned, node, 1)];
        Assert.Equal(("1-3", 0, true, 3), (first.Cpus, first.NumaNode, first.ExclusiveCpus, first.RequestedCpus));
        Assert.Equal(("5-7", 1, true), (second.Cpus, second.NumaNode, second.ExclusiveCpus));

        var crowded = await bed.WaitForTuningAsync(shared, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.SocketShared,
            "two pods on one socket reported");
        Assert.Contains("all run on NUMA node 0", TestBed.Condition(crowded, ConditionTypes.DataPlaneAvailable)!.Message);
        await TestBed.EventuallyAsync(async () => (await bed.EventsAsync(shared)).Any(e => e.Reason == ConditionReasons.SocketShared && e.Type == "Warning"),
            "a SocketShared Warning");

        var loose = await bed.WaitForTuningAsync(unpinned, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.NotExclusivelyPinned,
            "unpinned pods reported");
        Assert.Equal("True", TestBed.Condition(loose, "Ready")!.Status); // they serve, only not pinned
        Assert.All(loose.Status!.DataPlane!.Pods!, p => Assert.Equal((false, "0-7", -1), (p.ExclusiveCpus, p.Cpus, p.NumaNode)));
        Assert.Contains("runs on CPUs 0-7 for 3 requested", TestBed.Condition(loose, ConditionTypes.DataPlaneAvailable)!.Message);
    }

    [Fact]
    public async Task APodTheKubeletRejectsIsMadeAgainAfterABackoffWithItsReasonInAnEvent()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var node = (await bed.CreateNodesAsync(1)).Single();
        await bed.StartOperatorAsync(bed.FastOptions() with { PodBackoff = TimeSpan.FromSeconds(2), PodBackoffMax = TimeSpan.FromSeconds(3) });
        bed.StartAgents(_ => Sockets(1, 2));
        var name = (await bed.CreateTuningAsync("reject", Spec(bed))).Metadata.Name;
        var pod = Assert.Single(await PodsOf(bed, name, 1));

        await bed.SetPodStatusAsync(pod.Metadata.Name, "Failed", reason: "OutOfcpu",
            message: "Node didn't have enough resource: cpu, requested: 2000, used: 0, capacity: 1000");
        var again = await TestBed.EventuallyAsync(async () => (await bed.DataPlanePodsAsync()).SingleOrDefault(),
            p => p is not null && p.Metadata.Uid != pod.Metadata.Uid, "a new pod in place of the rejected one");
        var warning = await TestBed.EventuallyAsync(async () => (await bed.EventsAsync(name)).FirstOrDefault(e => e.Reason == ConditionReasons.PodFailed),
            e => e is not null, "a PodFailed event");
        Assert.Equal("Warning", warning!.Type);
        Assert.Contains("OutOfcpu: Node didn't have enough resource", warning.Message);
        Assert.Contains(node, warning.Message);

        // Rejected again (the Topology Manager this time): counted, and made again after a longer wait.
        await bed.SetPodStatusAsync(again!.Metadata.Name, "Failed", reason: "TopologyAffinityError", message: "Resources cannot be allocated with Topology locality");
        var failing = await bed.WaitForTuningAsync(name, t => t.Status?.DataPlane?.Pods?.SingleOrDefault()?.Recreations == 2, "two recreations");
        var entry = failing.Status!.DataPlane!.Pods!.Single();
        Assert.Contains("TopologyAffinityError", entry.Message);
        Assert.Equal(ConditionReasons.PodFailed, TestBed.Condition(failing, ConditionTypes.DataPlaneAvailable)!.Reason);
        Assert.Equal("False", TestBed.Condition(failing, "Ready")!.Status);
        var third = await TestBed.EventuallyAsync(async () => (await bed.DataPlanePodsAsync()).SingleOrDefault(),
            p => p is not null && p.Metadata.Uid != again.Metadata.Uid, "a third pod");

        // It runs: the data plane is available and the count starts afresh.
        await bed.SetPodStatusAsync(third!.Metadata.Name);
        var fine = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready once the pod serves");
        Assert.Equal(0, fine.Status!.DataPlane!.Pods!.Single().Recreations);
        Assert.Equal(2, (await bed.EventsAsync(name)).Count(e => e.Reason == ConditionReasons.PodFailed));
    }

    [Fact]
    public async Task APodTheApiServerRefusesIsReportedInStatusWithTheServersMessage()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        await bed.CreateNodesAsync(1);
        await bed.StartOperatorAsync();
        bed.StartAgents(_ => Sockets(1, 2));
        // The Priority admission plugin refuses a pod whose PriorityClass does not exist (403).
        var name = (await bed.CreateTuningAsync("refused", Spec(bed, priorityClass: "no-such-class-" + bed.Id))).Metadata.Name;

        var refused = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.PodApiError,
            "the refusal in status");
        var message = TestBed.Condition(refused, ConditionTypes.DataPlaneAvailable)!.Message;
        Assert.Contains("403", message);
        Assert.Contains("no-such-class-" + bed.Id, message);
        Assert.Equal(ConditionReasons.PodApiError, TestBed.Condition(refused, "Ready")!.Reason);
        Assert.Equal(1, refused.Status!.AppliedNodes); // the rest of the reconcile went on
        await TestBed.EventuallyAsync(async () => (await bed.EventsAsync(name)).Any(e => e.Reason == ConditionReasons.PodApiError && e.Type == "Warning"), "a PodApiError Warning");
        Assert.Empty(await bed.DataPlanePodsAsync());

        // Fixed: the pod comes and the condition clears.
        await bed.UpdateTuningAsync(name, s => s.DataPlane!.PriorityClassName = null);
        await PodsOf(bed, name, 1);
        await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.PodsNotReady, "the error gone");
    }

    [Fact]
    public async Task PodsAreSizedBesideTheNodesOtherPods_NoneIsMadeWhileTheyLeaveNoCpu_AndARunningPodKeepsItsSize()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var node = (await bed.CreateNodesAsync(1)).Single();
        await bed.SetAllocatableAsync(node, ("cpu", "8"), ("memory", "32Gi"), ("pods", "110"));
        // Other components on the node: a CNI pod and a large one that leaves the data plane no whole CPU.
        await bed.BindPodAsync(node, "cni", ("cpu", "2500m"));
        await bed.BindPodAsync(node, "hog", ("cpu", "4"));
        await bed.StartOperatorAsync(bed.FastOptions() with { DataPlaneCpuRecheck = TimeSpan.FromSeconds(1) });
        bed.StartAgents(_ => Sockets(2, 4));
        var name = (await bed.CreateTuningAsync("fit", Spec(bed))).Metadata.Name;

        var waiting = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.NoAllocatableCpu,
            "the pods waiting for CPU");
        var message = TestBed.Condition(waiting, ConditionTypes.DataPlaneAvailable)!.Message;
        Assert.Contains($"allocatable CPU 8 less 6500m requested by 2 other pods ({bed.Namespace}/hog 4, {bed.Namespace}/cni 2500m) and a margin of 500m leaves 1 for 2 pods", message);
        Assert.Equal("False", TestBed.Condition(waiting, "Ready")!.Status);
        Assert.Empty(await bed.DataPlanePodsAsync());

        // The large pod goes: nothing the operator watches changes, the recheck finds the room. 8 − 2.5 − 0.5 leaves
        // 5 CPUs: 2 per pod (sized from allocatable alone they would ask for 3 each, and the second would not fit).
        await bed.Client.CoreV1.DeleteNamespacedPodAsync("hog", bed.Namespace, gracePeriodSeconds: 0);
        var pods = await PodsOf(bed, name, 2);
        Assert.All(pods, p => Assert.Equal("2", p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));

        // More pods come beside them, and the tuning changes in a way the pods do not see: they stay as they are.
        await bed.BindPodAsync(node, "exporter", ("cpu", "2"));
        await bed.UpdateTuningAsync(name, s => s.Sysctls = new() { ["net.core.somaxconn"] = "8192" });
        await bed.WaitForTuningAsync(name, t => t.Status?.ObservedGeneration == t.Metadata.Generation, "the change observed");
        var after = await bed.DataPlanePodsAsync();
        Assert.Equal(pods.Select(p => p.Metadata.Uid).Order(), after.Select(p => p.Metadata.Uid).Order());
    }

    [Fact]
    public async Task NoPodNeedingHugepagesUntilTheNodeShowsThemAndNoneOnACordonedNode()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        // The agent reserved the pages, but the kubelets have not counted them yet (they read them at start).
        foreach (var n in nodes) await bed.SetAllocatableAsync(n, ("cpu", "4"), ("hugepages-2Mi", "0"));
        // No resync within the test: the node updates alone (allocatable, cordon) must bring the pods.
        await bed.StartOperatorAsync(bed.FastOptions() with { ResyncPeriod = TimeSpan.FromMinutes(10) });
        bed.StartAgents(_ => Sockets(1, 2));
        var spec = Spec(bed);
        spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 32 }];
        var name = (await bed.CreateTuningAsync("pages", spec)).Metadata.Name;

        var waiting = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, ConditionTypes.DataPlaneAvailable)?.Reason == ConditionReasons.HugepagesNotAllocatable
            && t.Status!.AppliedNodes == 2, "both nodes waiting for their kubelets to count the hugepages");
        Assert.Contains("hugepages-2Mi allocatable 0Mi, the pods need 64Mi", TestBed.Condition(waiting, ConditionTypes.DataPlaneAvailable)!.Message);
        Assert.Equal(2, waiting.Status!.DataPlane!.DesiredPods);
        Assert.All(waiting.Status.DataPlane.Pods!, p => Assert.Equal("Waiting", p.Phase));
        Assert.Empty(await bed.DataPlanePodsAsync());

        // One node is cordoned meanwhile; then both kubelets restart and count the pages.
        await bed.SetUnschedulableAsync(nodes[1], true);
        foreach (var n in nodes) await bed.SetAllocatableAsync(n, ("cpu", "4"), ("hugepages-2Mi", "64Mi"));
        var pod = Assert.Single(await PodsOf(bed, name, 1));
        Assert.Equal(nodes[0], DataPlanePodBuilder.NodeOf(pod));
        Assert.Equal("64Mi", pod.Spec.Containers[0].Resources.Requests["hugepages-2Mi"].ToString());
        var cordoned = await bed.WaitForTuningAsync(name, t => t.Status?.DataPlane?.DesiredPods == 1, "the cordoned node not counted");
        Assert.Contains(cordoned.Status!.DataPlane!.Pods!, p => p.Node == nodes[1] && p.Message!.Contains("cordoned"));

        await bed.SetUnschedulableAsync(nodes[1], false);
        await PodsOf(bed, name, 2);
    }
}
