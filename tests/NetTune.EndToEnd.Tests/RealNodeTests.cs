using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Agent.Core.Seccomp;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace NetTune.EndToEnd.Tests;

/// <summary>
/// NetTune as a user runs it, on the real node: the chart's operator pod, the agent DaemonSet pod it creates tuning
/// test-owned devices on the real kernel, and the data-plane pod admitted and pinned by the kubelet. The tests share
/// the node and run in their order; the last one uninstalls the chart.
/// </summary>
[Collection("real-node")]
[TestCaseOrderer("NetTune.EndToEnd.Tests.ByOrderAttribute", "NetTune.EndToEnd.Tests")]
public sealed class RealNodeTests(RealNodeFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..6];
    private readonly List<string> _devices = [];
    private readonly List<string> _folders = [];
    private readonly List<string> _tunings = [];
    private readonly List<string> _quotas = [];
    private IKubernetes Client => fixture.Client;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // A quota left behind would refuse the agent that reverts, and helm's uninstall Job.
        foreach (var quota in _quotas)
            try { await Client.CoreV1.DeleteNamespacedResourceQuotaAsync(quota, RealNodeFixture.NodeNamespace); }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound) { }
        // A failed test leaves its tuning: revert it while the operator still runs, so the next test starts clean.
        foreach (var tuning in _tunings.ToList())
            try { await DeleteTuningAsync(tuning); }
            catch (Exception e) when (e is TimeoutException or k8s.Autorest.HttpOperationException) { output.WriteLine($"cleanup of {tuning}: {e.Message}"); }
        foreach (var device in _devices) await Tool.RunAsync("ip", ["link", "del", device]);
        foreach (var folder in _folders)
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
    }

    [Fact, Order(1)]
    public async Task TheOperatorRunsAsTheChartsDeploymentOnTheNodeAndOneReplicaLeads()
    {
        var pods = await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.Namespace, labelSelector: "app.kubernetes.io/name=nettune-operator");
        Assert.Equal(2, pods.Items.Count);
        Assert.All(pods.Items, p =>
        {
            Assert.Equal("Running", p.Status.Phase);
            Assert.Equal(RealNodeFixture.NodeName, p.Spec.NodeName);
        });
        var lease = await Client.CoordinationV1.ReadNamespacedLeaseAsync("nettune-operator", RealNodeFixture.Namespace);
        Assert.Contains(lease.Spec.HolderIdentity, pods.Items.Select(p => p.Metadata.Name));
        // Only the leader reconciles: its log says so, the other's does not.
        var leaders = 0;
        foreach (var pod in pods.Items)
        {
            var (_, log, _) = await fixture.Cluster.KubectlAsync("logs", "-n", RealNodeFixture.Namespace, pod.Metadata.Name);
            if (log.Contains("became the leader", StringComparison.Ordinal)) leaders++;
        }
        Assert.Equal(1, leaders);
    }

    [Fact, Order(2)]
    public async Task ATuningRunsThePrivilegedAgentPodWhichTunesTheRealKernelAndRevertsItExactly()
    {
        var device = await CreateVethAsync();
        var before = HostValues.Read(device);
        var somaxconn = int.Parse(before["/proc/sys/net/core/somaxconn"], CultureInfo.InvariantCulture) + 1;
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Nic = new NicSpec
            {
                Interfaces = new InterfaceSelector { Names = [device] },
                Rps = new RpsSpec { Enabled = true, FlowEntries = 4096 },
                Xps = new XpsSpec { Enabled = true },
            },
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = somaxconn.ToString(CultureInfo.InvariantCulture) },
        });

        await WaitForNodeStateAsync(Applied, "NodeState Applied for its generation");
        var agent = await SinglePodAsync("app.kubernetes.io/name=nettune-agent");
        Assert.Equal("Running", agent.Status.Phase);
        Assert.True(agent.Spec.Containers[0].SecurityContext?.Privileged);
        Assert.True(agent.Spec.HostNetwork);

        var during = HostValues.Read(device);
        Assert.Equal(somaxconn.ToString(CultureInfo.InvariantCulture), during["/proc/sys/net/core/somaxconn"]);
        Assert.Equal("4096", during["/proc/sys/net/core/rps_sock_flow_entries"]);
        Assert.NotEqual(before[$"/sys/class/net/{device}/queues/rx-0/rps_cpus"], during[$"/sys/class/net/{device}/queues/rx-0/rps_cpus"]);
        Assert.NotEqual("0", during[$"/sys/class/net/{device}/queues/tx-0/xps_cpus"].TrimStart('0', ','));

        await DeleteTuningAsync(tuning);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: "app.kubernetes.io/name=nettune-agent")).Items.Count == 0,
            "the agent pod to go once no tuning selects the node", Patience, fixture.DescribePodsAsync);
        var after = HostValues.Read(device);
        Assert.Empty(before.DifferencesTo(after, "journal:"));
    }

    [Fact, Order(3)]
    public async Task TheDataPlanePodIsAdmittedPinnedByTheKubeletAndServesItsHostPathAndPrometheusScrapesThePods()
    {
        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "www-" + _id)).FullName;
        _folders.Add(www);
        var body = "served by the data-plane pod " + _id + "\n";
        File.WriteAllText(Path.Combine(www, "index.txt"), body);
        Directory.CreateDirectory(Path.Combine(www, "sub"));
        var port = 18480;
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "4097" },
            DataPlane = new DataPlaneSpec
            {
                Enabled = true,
                Image = fixture.DataPlaneImage,
                Mode = DataPlaneMode.StaticFiles,
                Port = port,
                StaticFiles = new StaticFilesSpec { HostPath = www },
            },
        });
        await WaitForNodeStateAsync(Applied, "NodeState Applied for its generation");
        var pod = await ReadyDataPlanePodAsync(tuning);
        Assert.Equal("Guaranteed", pod.Status.QosClass);
        Assert.Equal(RealNodeFixture.NodeName, pod.Spec.NodeName);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal(body, await http.GetStringAsync($"http://127.0.0.1:{port}/index.txt"));

        // The CPUs the kubelet's CPU manager gave the container are the ones its process may run on.
        var assigned = KubeletAssignedCpus(pod);
        var pid = await ContainerPidAsync(pod);
        var allowed = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();
        Assert.Equal(assigned, allowed);
        output.WriteLine($"kubelet assigned CPUs {assigned}; the data plane's Cpus_allowed_list is {allowed}");

        // The data plane reports where it runs (/readyz) and the operator writes that into the tuning's status.
        using (var ready = JsonDocument.Parse(await http.GetStringAsync($"http://{Endpoint(pod, "metrics")}/readyz")))
            Assert.Equal(assigned, string.Join(',', ready.RootElement.GetProperty("workers").EnumerateArray().Select(w => w.GetProperty("cpu").GetInt32())));
        NetworkTuning status = null!;
        await Eventually.TrueAsync(async () =>
        {
            status = await ReadTuningAsync(tuning);
            return status.Status?.DataPlane?.Pods?.SingleOrDefault()?.Cpus is not null
                && status.Status.Conditions?.Any(c => c.Type == ConditionTypes.DataPlaneAvailable && c.Status == ConditionStatus.True) == true
                && status.Status.Conditions.Any(c => c.Type == ConditionTypes.Ready && c.Status == ConditionStatus.True);
        }, "the tuning's status to show the data plane", Patience, fixture.DescribePodsAsync);
        var reported = status.Status!.DataPlane!.Pods!.Single();
        Assert.Equal(assigned, reported.Cpus);
        Assert.Equal(0, reported.NumaNode);
        Assert.True(reported.ExclusiveCpus);
        Assert.Equal((1, 1), (status.Status.DataPlane.DesiredPods, status.Status.DataPlane.ReadyPods));

        // Prometheus scrapes the agent's and the data plane's pod endpoints (their pod IPs and declared ports).
        var agent = await SinglePodAsync("app.kubernetes.io/name=nettune-agent");
        var targets = new[] { Endpoint(agent, "metrics"), Endpoint(pod, "metrics") };
        var up = await Prometheus.ScrapeUpAsync(targets, Tool.TempDir("nettune-e2e-prom"));
        Assert.Equal([1.0, 1.0], up);

        await DeleteTuningAsync(tuning);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: $"nettune.io/tuning={tuning}")).Items.Count == 0,
            "the data-plane pod to be removed", Patience, fixture.DescribePodsAsync);
    }

    [Fact, Order(4)]
    public async Task HugepagesReachTheDataPlanePodOnceTheKubeletSeesThem()
    {
        var pages = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
        var before = File.ReadAllText(pages).Trim();
        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "hp-" + _id)).FullName;
        _folders.Add(www);
        File.WriteAllText(Path.Combine(www, "index.txt"), "hugepages\n");
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 8 }],
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18481,
                StaticFiles = new StaticFilesSpec { HostPath = www },
            },
        });

        // The kernel holds the pages, the kubelet (which counts them at its start only) does not: the agent asks for a
        // kubelet restart through its request file (the fixture's node acts on it as a systemd path unit would), and
        // reports Applied once the node's capacity shows the pages. Until then the operator makes no pod that would
        // sit Pending, and does not call the data plane available.
        var seen = new List<string>();
        using var watching = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!watching.IsCancellationRequested)
            {
                var t = await ReadTuningAsync(tuning);
                var available = t.Status?.Conditions?.FirstOrDefault(c => c.Type == ConditionTypes.DataPlaneAvailable);
                var node = await Client.CoreV1.ReadNodeAsync(RealNodeFixture.NodeName);
                var shown = node.Status?.Allocatable?.TryGetValue("hugepages-2Mi", out var q) == true ? q.ToString() : "0";
                var podCount = (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: $"nettune.io/tuning={tuning}")).Items.Count;
                seen.Add($"{shown}|{available?.Status}|{available?.Reason}|{podCount}");
                await Task.Delay(250);
            }
        });
        var applied = await WaitForNodeStateAsync(s => Applied(s) && HasCondition(s.Status?.Conditions, ConditionTypes.KubeletRestartRequired, ConditionStatus.False, ConditionReasons.KubeletSeesHugepages),
            "NodeState Applied once the restarted kubelet shows the pages");
        Assert.Equal("8", File.ReadAllText(pages).Trim());
        var kubelet = applied.Status!.Conditions!.Single(c => c.Type == ConditionTypes.KubeletRestartRequired);
        output.WriteLine($"KubeletRestartRequired={kubelet.Status} {kubelet.Reason}: {kubelet.Message}");
        Assert.Contains("kubelet restart request", kubelet.Message);
        Assert.Equal("16Mi", (await Client.CoreV1.ReadNodeAsync(RealNodeFixture.NodeName)).Status.Capacity["hugepages-2Mi"].ToString());

        V1Pod pod = null!;
        await Eventually.TrueAsync(async () =>
        {
            var pods = (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: $"nettune.io/tuning={tuning}")).Items;
            pod = pods.FirstOrDefault()!;
            return pod?.Status?.ContainerStatuses?.FirstOrDefault()?.Ready == true;
        }, "the data-plane pod with hugepages to be Ready", Patience, fixture.DescribePodsAsync);
        await watching.CancelAsync();
        await watcher;
        output.WriteLine("allocatable hugepages-2Mi | DataPlaneAvailable | reason | pods, as seen: " + string.Join(", ", seen.Distinct()));
        // Before the kubelet showed the pages: no pod, and never available.
        var early = seen.Where(o => o.StartsWith("0|", StringComparison.Ordinal)).ToList();
        Assert.All(early, o => Assert.EndsWith("|0", o));
        Assert.DoesNotContain(early, o => o.Contains("|True|", StringComparison.Ordinal));
        Assert.Equal("16Mi", pod.Spec.Containers[0].Resources.Limits["hugepages-2Mi"].ToString());
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal("hugepages\n", await http.GetStringAsync("http://127.0.0.1:18481/index.txt"));
        // Its buffers are on the pod's hugepages: the data plane's mappings include 2 MiB pages it has touched.
        // The kubelet expands $(POD_IP) (the admin address) in the process's arguments.
        var hugeKb = HugepageRssKb([.. pod.Spec.Containers[0].Args!.Select(a => a.Replace("$(POD_IP)", pod.Status.PodIP, StringComparison.Ordinal))]);
        output.WriteLine($"data-plane hugepage-backed memory: {hugeKb} kB");
        Assert.True(hugeKb >= 2048, $"the data plane maps no touched 2 MiB page ({hugeKb} kB)");

        await DeleteTuningAsync(tuning);
        await Eventually.TrueAsync(() => Task.FromResult(File.ReadAllText(pages).Trim() == before),
            "the hugepages to go back once the pod released them", Patience, fixture.DescribePodsAsync);
    }

    [Fact, Order(5)]
    public async Task ANodeRelabelledOutIsRevertedBeforeItsAgentGoes()
    {
        var before = HostValues.Read();
        var somaxconn = (int.Parse(before["/proc/sys/net/core/somaxconn"], CultureInfo.InvariantCulture) + 7).ToString(CultureInfo.InvariantCulture);
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec { Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = somaxconn } });
        await WaitForNodeStateAsync(Applied, "NodeState Applied");
        Assert.Equal(somaxconn, File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());

        // The node leaves the selector: the agent must stay until it has put the host back.
        await Client.CoreV1.PatchNodeAsync(new V1Patch("{\"metadata\":{\"labels\":{\"nettune-e2e\":null}}}", V1Patch.PatchType.MergePatch), RealNodeFixture.NodeName);
        // Without an agent kept until the revert, the DaemonSet controller would remove it first and the value would stay.
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: "app.kubernetes.io/name=nettune-agent")).Items.Count == 0,
            "the agent pod to go", Patience, fixture.DescribePodsAsync);
        Assert.Empty(before.DifferencesTo(HostValues.Read(), "journal:"));
        await DeleteTuningAsync(tuning);
    }

    [Fact, Order(6)]
    public async Task TheDataPlanesExclusiveCpuGetsNoRpsOrXps_AndGetsThemBackWhenThePodGoes()
    {
        var device = await CreateVethAsync();
        var before = HostValues.Read(device);
        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "www-" + _id)).FullName;
        _folders.Add(www);
        File.WriteAllText(Path.Combine(www, "index.txt"), "pinned\n");
        // No housekeepingCpus: every online CPU would serve the veth, were it not for the kubelet's exclusive ones.
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Nic = new NicSpec
            {
                Interfaces = new InterfaceSelector { Names = [device] },
                IrqAffinity = new IrqAffinitySpec(),
                Rps = new RpsSpec { Enabled = true },
                Xps = new XpsSpec { Enabled = true },
            },
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18482,
                StaticFiles = new StaticFilesSpec { HostPath = www },
            },
        });
        await WaitForNodeStateAsync(Applied, "NodeState Applied for its generation");
        var pod = await ReadyDataPlanePodAsync(tuning);
        var pinned = KubeletAssignedCpus(pod);
        Assert.Equal("1", pinned); // the static policy keeps CPU 0 shared (kubeReserved) and gives the pod CPU 1
        output.WriteLine($"the kubelet gave the data-plane pod CPU {pinned}");

        var masks = new[] { "rx-0/rps_cpus", "rx-1/rps_cpus", "tx-0/xps_cpus", "tx-1/xps_cpus" }.Select(q => $"/sys/class/net/{device}/queues/{q}").ToArray();
        var started = Stopwatch.StartNew();
        await Eventually.TrueAsync(() => Task.FromResult(masks.All(m => Mask(m) == 0b01)),
            "RPS and XPS of the veth to leave the data plane's CPU 1 (mask 1)", TimeSpan.FromSeconds(30), () => Task.FromResult(MaskReport(masks)));
        output.WriteLine($"RPS/XPS off CPU 1 {started.Elapsed.TotalSeconds:0.0} s after the pod was Ready: {MaskReport(masks)}");
        // And they stay off it: the next drift checks find nothing to undo.
        await Task.Delay(TimeSpan.FromSeconds(5));
        Assert.All(masks, m => Assert.Equal(0b01, Mask(m)));
        // No interrupt the agent placed is on CPU 1 (a veth has none; every IRQ knob in the status would say so).
        var state = await ReadNodeStateAsync();
        Assert.All(state.Status!.Knobs!.Where(k => k.Knob.StartsWith("irq/", StringComparison.Ordinal) && k.Value is not null),
            k => Assert.DoesNotContain(1, CpuList.TryParse(k.Value, out var cpus) ? cpus : []));
        Assert.Contains(state.Status.Knobs!, k => k.Knob == $"nic/{device}/irqs" && k.Result == KnobOutcome.Skipped);

        // The data plane is switched off: its pod goes, the kubelet drops the assignment, CPU 1 serves the veth again.
        await Client.CustomObjects.PatchClusterCustomObjectAsync(new V1Patch("{\"spec\":{\"dataPlane\":{\"enabled\":false}}}", V1Patch.PatchType.MergePatch),
            ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, tuning);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: $"nettune.io/tuning={tuning}")).Items.Count == 0,
            "the data-plane pod to be removed", Patience, fixture.DescribePodsAsync);
        started.Restart();
        // RPS steers to both CPUs again; XPS gives each tx queue one CPU round-robin: tx-0 CPU 0, tx-1 CPU 1.
        await Eventually.TrueAsync(() => Task.FromResult(masks.Select(Mask).SequenceEqual([0b11, 0b11, 0b01, 0b10])),
            "RPS and XPS of the veth back on CPU 1", TimeSpan.FromSeconds(60), () => Task.FromResult(MaskReport(masks)));
        output.WriteLine($"RPS/XPS back on CPU 1 {started.Elapsed.TotalSeconds:0.0} s after the pod was gone: {MaskReport(masks)}");

        await DeleteTuningAsync(tuning);
        Assert.Empty(before.DifferencesTo(HostValues.Read(device), "journal:"));

        static int Mask(string path) => Convert.ToInt32(File.ReadAllText(path).Trim().Replace(",", "", StringComparison.Ordinal), 16);
        static string MaskReport(string[] paths) => string.Join(", ", paths.Select(p => $"{p}={File.ReadAllText(p).Trim()}"));
    }

    [Fact, Order(7)]
    public async Task UnderAProfileThatDeniesIoUringThePodRunsEpollAndSaysWhyWhileNetTunesProfileRunsIoUringAndGoesWithTheRevert()
    {
        // The node's containerd 1.6 allows io_uring under RuntimeDefault; containerd 2.0's default does not. Its mimic: a
        // Localhost profile that is NetTune's without the three io_uring syscalls and the memory-policy ones, i.e.
        // containerd 2's default.
        var folder = Path.Combine(LocalNode.SeccompDir, "e2e-" + _id);
        Directory.CreateDirectory(folder);
        _folders.Add(folder);
        var deny = JsonNode.Parse(DataPlaneSeccompProfile.Json())!;
        var allowed = deny["syscalls"]![0]!["names"]!.AsArray();
        foreach (var name in allowed.Where(n => DataPlaneSeccompProfile.IoUringSyscalls.Concat(DataPlaneSeccompProfile.MemoryPolicySyscalls).Contains(n!.GetValue<string>())).ToList())
            allowed.Remove(name);
        File.WriteAllText(Path.Combine(folder, "deny-io-uring.json"), deny.ToJsonString());
        var denyProfile = $"e2e-{_id}/deny-io-uring.json";
        var netTuneProfile = Path.Combine(LocalNode.SeccompDir, SeccompProfiles.NetTuneLocalhostProfile);
        Assert.False(File.Exists(netTuneProfile), $"{netTuneProfile} is there before any tuning");

        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "sc-" + _id)).FullName;
        _folders.Add(www);
        File.WriteAllText(Path.Combine(www, "index.txt"), "seccomp\n");
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18482,
                StaticFiles = new StaticFilesSpec { HostPath = www },
                SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost, LocalhostProfile = denyProfile },
            },
        });
        await WaitForNodeStateAsync(Applied, "NodeState Applied");
        // The agent installed NetTune's profile as part of the apply, before the operator made any pod.
        var installed = File.ReadAllText(netTuneProfile);
        Assert.Contains("\"io_uring_setup\"", installed);

        var (epollPod, epollStatus) = await WaitForEngineAsync(tuning, "epoll");
        Assert.Equal(("Localhost", denyProfile), (epollPod.Spec.SecurityContext.SeccompProfile.Type, epollPod.Spec.SecurityContext.SeccompProfile.LocalhostProfile));
        // The runtime put that profile's filter into the container (its OCI spec), not its own default.
        Assert.StartsWith("io_uring_setup denied", await RuntimeSeccompAsync(epollPod), StringComparison.Ordinal);
        var fellBack = epollStatus.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        output.WriteLine($"under {denyProfile}: {fellBack.Status} {fellBack.Reason}: {fellBack.Message}");
        Assert.Equal(ConditionReasons.IoUringUnavailable, fellBack.Reason);
        Assert.Contains(epollPod.Metadata.Name, fellBack.Message);
        Assert.Contains(denyProfile, fellBack.Message);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal("seccomp\n", await http.GetStringAsync("http://127.0.0.1:18482/index.txt"));
        var boundUnderDeny = await MemoryBoundAsync(http, epollPod);
        Assert.Equal([false], boundUnderDeny);

        // Back to the default: NetTune's profile, under which the pod (replaced, its spec changed) runs io_uring.
        await Client.CustomObjects.PatchClusterCustomObjectAsync(new V1Patch("{\"spec\":{\"dataPlane\":{\"seccompProfile\":null}}}", V1Patch.PatchType.MergePatch),
            ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, tuning);
        var (uringPod, uringStatus) = await WaitForEngineAsync(tuning, "iouring");
        Assert.Equal(("Localhost", SeccompProfiles.NetTuneLocalhostProfile), (uringPod.Spec.SecurityContext.SeccompProfile.Type, uringPod.Spec.SecurityContext.SeccompProfile.LocalhostProfile));
        Assert.StartsWith("io_uring_setup allowed", await RuntimeSeccompAsync(uringPod), StringComparison.Ordinal);
        var available = uringStatus.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        output.WriteLine($"under NetTune's profile: {available.Status} {available.Reason}: {available.Message}");
        Assert.Equal((ConditionStatus.True, ConditionReasons.PodsReady), (available.Status, available.Reason));
        Assert.Equal("seccomp\n", await http.GetStringAsync("http://127.0.0.1:18482/index.txt"));
        // NetTune's profile lets each worker bind its memory to its NUMA node (set_mempolicy), as containerd's default does not.
        var boundUnderNetTune = await MemoryBoundAsync(http, uringPod);
        Assert.Equal([true], boundUnderNetTune);

        // The revert removes the profile (and NetTune's folder) once the pods that used it are gone.
        await DeleteTuningAsync(tuning);
        Assert.False(File.Exists(netTuneProfile), $"{netTuneProfile} is left after the revert");
        Assert.False(Directory.Exists(Path.GetDirectoryName(netTuneProfile)), "NetTune's seccomp folder is left after the revert");
    }

    /// <summary>Each worker's memoryBound on the pod's /readyz: whether set_mempolicy bound its memory to its NUMA node.</summary>
    private static async Task<bool[]> MemoryBoundAsync(HttpClient http, V1Pod pod)
    {
        using var ready = JsonDocument.Parse(await http.GetStringAsync($"http://{Endpoint(pod, "metrics")}/readyz"));
        return ready.RootElement.GetProperty("workers").EnumerateArray().Select(w => w.GetProperty("memoryBound").GetBoolean()).Distinct().ToArray();
    }

    /// <summary>Waits until the tuning's one data-plane pod is Ready and its status reports <paramref name="engine"/>.</summary>
    private async Task<(V1Pod Pod, NetworkTuning Tuning)> WaitForEngineAsync(string tuning, string engine)
    {
        V1Pod pod = null!;
        NetworkTuning status = null!;
        await Eventually.TrueAsync(async () =>
        {
            var pods = (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: $"nettune.io/tuning={tuning}")).Items
                .Where(p => p.Metadata.DeletionTimestamp is null).ToList();
            pod = pods.Count == 1 ? pods[0] : null!;
            status = await ReadTuningAsync(tuning);
            var entry = status.Status?.DataPlane?.Pods?.SingleOrDefault();
            return pod?.Status?.ContainerStatuses?.FirstOrDefault()?.Ready == true && entry?.Name == pod.Metadata.Name && entry.Engine?.StartsWith(engine, StringComparison.Ordinal) == true
                && status.Status!.Conditions?.Any(c => c.Type == ConditionTypes.DataPlaneAvailable && c.Status == ConditionStatus.True) == true;
        }, $"the data-plane pod to be Ready and reported running {engine}", Patience, async () =>
            $"status: {JsonSerializer.Serialize(status?.Status)}\npod securityContext: {KubernetesJson.Serialize(pod?.Spec?.SecurityContext)}" +
            $"\nthe runtime's filter: {(pod is null ? "(no pod)" : await RuntimeSeccompAsync(pod))}\n{await fixture.DescribePodsAsync()}");
        return (pod, status);
    }

    [Fact, Order(8)]
    public async Task DeletingATuningTakesTheNodesDataPlanePodDownBeforeTheNodeReverts()
    {
        var before = HostValues.Read();
        var original = before.Values["/proc/sys/net/core/somaxconn"];
        var tuned = (int.Parse(original, CultureInfo.InvariantCulture) + 11).ToString(CultureInfo.InvariantCulture);
        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "del-" + _id)).FullName;
        _folders.Add(www);
        File.WriteAllText(Path.Combine(www, "index.txt"), "paced\n");
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = tuned },
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18483,
                StaticFiles = new StaticFilesSpec { HostPath = www },
            },
        });
        await WaitForNodeStateAsync(Applied, "NodeState Applied for its generation");
        var pod = await ReadyDataPlanePodAsync(tuning);

        // Sampled together while the delete runs: whether the pod object still exists (the kubelet removes it once its
        // containers stopped), whether it is terminating, and the kernel's value. Were the revert written with the pod
        // delete (or before it), the value would be back while the pod still ran or terminated.
        var samples = new List<(TimeSpan At, bool PodExists, bool Terminating, string Somaxconn)>();
        var clock = Stopwatch.StartNew();
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                V1Pod? now = null;
                try { now = await Client.CoreV1.ReadNamespacedPodAsync(pod.Metadata.Name, RealNodeFixture.NodeNamespace); }
                catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound) { }
                var value = File.ReadAllText("/proc/sys/net/core/somaxconn").Trim();
                lock (samples) samples.Add((clock.Elapsed, now is not null && now.Metadata.Uid == pod.Metadata.Uid, now?.Metadata.DeletionTimestamp is not null, value));
                await Task.Delay(100);
            }
        });
        await DeleteTuningAsync(tuning);
        await sampling.CancelAsync();
        await sampler;
        V1Condition? reverted = null;
        try { reverted = (await ReadNodeStateAsync()).Status?.Conditions?.SingleOrDefault(c => c.Type == ConditionTypes.Reverted); }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound) { }

        var podGone = samples.FirstOrDefault(s => !s.PodExists).At;
        var valueBack = samples.FirstOrDefault(s => s.Somaxconn == original).At;
        output.WriteLine($"{samples.Count} samples; pod terminating from {samples.FirstOrDefault(s => s.Terminating).At.TotalSeconds:0.0} s, " +
            $"gone at {podGone.TotalSeconds:0.0} s; somaxconn back to {original} at {valueBack.TotalSeconds:0.0} s; " +
            $"Reverted {reverted?.Status} at {reverted?.LastTransitionTime:O}");
        // The pod was seen terminating with the node still tuned: it went down first.
        Assert.Contains(samples, s => s.PodExists && s.Terminating && s.Somaxconn == tuned);
        // Never was the node reverted while its data-plane pod still existed.
        Assert.DoesNotContain(samples, s => s.PodExists && s.Somaxconn != tuned);
        Assert.Equal(original, File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());
        Assert.True(podGone > TimeSpan.Zero && valueBack >= podGone, $"the pod went at {podGone}, the value came back at {valueBack}");
    }

    /// <summary>
    /// The seccomp filter the runtime put into the pod's container (its OCI spec, from ctr): whether it allows
    /// io_uring_setup, or "unconfined".
    /// </summary>
    private async Task<string> RuntimeSeccompAsync(V1Pod pod)
    {
        if (pod.Status?.ContainerStatuses?.FirstOrDefault()?.ContainerID is not { } containerId) return "(no container yet)";
        var (code, spec) = await fixture.Node.CtrAsync("containers", "info", "--spec", containerId.Split("://")[1]);
        if (code != 0) return $"(ctr containers info failed: {spec})";
        using var doc = JsonDocument.Parse(spec);
        if (!doc.RootElement.TryGetProperty("linux", out var linux) || !linux.TryGetProperty("seccomp", out var seccomp)) return "unconfined";
        var allowed = seccomp.GetProperty("syscalls").EnumerateArray()
            .Where(rule => rule.GetProperty("action").GetString() == "SCMP_ACT_ALLOW" && !rule.TryGetProperty("args", out _))
            .SelectMany(rule => rule.GetProperty("names").EnumerateArray().Select(n => n.GetString())).ToHashSet(StringComparer.Ordinal);
        return $"io_uring_setup {(allowed.Contains("io_uring_setup") ? "allowed" : "denied")} ({allowed.Count} syscalls allowed unconditionally, default {seccomp.GetProperty("defaultAction").GetString()})";
    }

    [Fact, Order(8)]
    public async Task AnAgentPodOrADataPlanePodTheClusterRefusesShowsOnTheTuningWithTheServersMessage()
    {
        // v1.20 has no PodSecurity admission; a ResourceQuota refuses the pods on the same path: the DaemonSet controller
        // records FailedCreate and retries, the operator's pod create gets a 403.
        await Eventually.TrueAsync(async () =>
            (await Client.AppsV1.ListNamespacedDaemonSetAsync(RealNodeFixture.NodeNamespace)).Items.Count == 0
            && (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: "app.kubernetes.io/name=nettune-agent")).Items.Count == 0,
            "no agent DaemonSet left from the tests before", Patience, fixture.DescribePodsAsync);
        await CreateQuotaAsync("no-pods", new Dictionary<string, ResourceQuantity> { ["pods"] = new("0") });
        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "quota-" + _id)).FullName;
        _folders.Add(www);
        File.WriteAllText(Path.Combine(www, "index.txt"), "quota\n");
        var created = Stopwatch.StartNew();
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18483,
                StaticFiles = new StaticFilesSpec { HostPath = www },
            },
        });

        NetworkTuning status = null!;
        await Eventually.TrueAsync(async () => HasCondition((status = await ReadTuningAsync(tuning)).Status?.Conditions, ConditionTypes.AgentsAvailable,
            ConditionStatus.False, ConditionReasons.AgentPodCreateFailed), "AgentsAvailable False with AgentPodCreateFailed", TimeSpan.FromSeconds(30),
            async () => $"status: {JsonSerializer.Serialize(status?.Status)}\n{await fixture.DescribePodsAsync()}");
        var refused = status.Status!.Conditions!.Single(c => c.Type == ConditionTypes.AgentsAvailable);
        output.WriteLine($"{created.Elapsed.TotalSeconds:0.0} s after the tuning was created: {refused.Reason}: {refused.Message}");
        Assert.Contains(RealNodeFixture.NodeName, refused.Message);
        Assert.Contains("quota", refused.Message);
        var ready = status.Status.Conditions!.Single(c => c.Type == ConditionTypes.Ready);
        Assert.Equal((ConditionStatus.False, ConditionReasons.AgentPodCreateFailed), (ready.Status, ready.Reason));

        // The agent fits a CPU quota that the data-plane pod (a whole CPU) does not: the agent runs, the node applies,
        // and the operator's pod create is refused with the quota's words.
        await CreateQuotaAsync("cpu", new Dictionary<string, ResourceQuantity> { ["requests.cpu"] = new("500m") });
        await DeleteQuotaAsync("no-pods");
        await WaitForNodeStateAsync(Applied, "NodeState Applied once the agent pod could be made");
        await Eventually.TrueAsync(async () =>
        {
            status = await ReadTuningAsync(tuning);
            return HasCondition(status.Status?.Conditions, ConditionTypes.AgentsAvailable, ConditionStatus.True, ConditionReasons.AgentsRunning)
                && HasCondition(status.Status?.Conditions, ConditionTypes.DataPlaneAvailable, ConditionStatus.False, ConditionReasons.PodApiError);
        }, "AgentsAvailable True and DataPlaneAvailable False with PodApiError", Patience, async () => $"status: {JsonSerializer.Serialize(status?.Status)}\n{await fixture.DescribePodsAsync()}");
        var dataPlane = status.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
        output.WriteLine($"data plane: {dataPlane.Reason}: {dataPlane.Message}");
        Assert.Contains("403", dataPlane.Message);
        Assert.Contains("quota", dataPlane.Message);

        // Without the quota the pod is made and serves.
        await DeleteQuotaAsync("cpu");
        await ReadyDataPlanePodAsync(tuning);
        await DeleteTuningAsync(tuning);
    }

    [Fact(Skip = "issue 22 item 7: written, not run on the real node yet (its lock was held by other lanes from 21:23 past 22:15, this session's last chance). " +
        "The same behaviour passed against the real apiserver (DataPlanePodTests.PodsAreSizedBesideTheNodesOtherPods...), which fails without the fix"), Order(8)]
    public async Task TheDataPlanePodIsSizedBesideTheNodesOtherPods_AndWaitsWithTheReasonWhenTheyLeaveNoCpu()
    {
        // Another pod bound to the node (a CNI or an exporter would be): 800m of the node's 1900m allocatable CPU. Beside
        // the operator's two pods (50m each) and the agent (20m) a pod of one whole CPU no longer fits; made anyway,
        // it would stay Pending (Insufficient cpu).
        var filler = $"e2e-{_id}-filler";
        await Client.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = filler },
            Spec = new V1PodSpec
            {
                NodeName = RealNodeFixture.NodeName,
                AutomountServiceAccountToken = false,
                Containers = [new V1Container
                {
                    Name = "pause", Image = NetTune.LocalCluster.LocalNode.PauseImage, ImagePullPolicy = "Never",
                    Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("800m") } },
                }],
            },
        }, "default");
        try
        {
            var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "fit-" + _id)).FullName;
            _folders.Add(www);
            File.WriteAllText(Path.Combine(www, "index.txt"), "fit\n");
            var tuning = await ApplyTuningAsync(new NetworkTuningSpec
            {
                DataPlane = new DataPlaneSpec
                {
                    Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18484,
                    StaticFiles = new StaticFilesSpec { HostPath = www },
                },
            });
            await WaitForNodeStateAsync(Applied, "NodeState Applied for its generation");
            NetworkTuning status = null!;
            await Eventually.TrueAsync(async () => HasCondition((status = await ReadTuningAsync(tuning)).Status?.Conditions, ConditionTypes.DataPlaneAvailable,
                ConditionStatus.False, ConditionReasons.NoAllocatableCpu), "DataPlaneAvailable False with NoAllocatableCpu", Patience,
                async () => $"status: {JsonSerializer.Serialize(status?.Status)}\n{await fixture.DescribePodsAsync()}");
            var waiting = status.Status!.Conditions!.Single(c => c.Type == ConditionTypes.DataPlaneAvailable);
            output.WriteLine($"{waiting.Reason}: {waiting.Message}");
            Assert.Contains($"default/{filler} 800m", waiting.Message);
            Assert.Empty((await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace,
                labelSelector: $"app.kubernetes.io/name=nettune-dataplane,nettune.io/tuning={tuning}")).Items);

            // The other pod goes (nothing the operator watches changes): the tuning is looked at again and its pod runs.
            await Client.CoreV1.DeleteNamespacedPodAsync(filler, "default", gracePeriodSeconds: 0);
            var pod = await ReadyDataPlanePodAsync(tuning);
            Assert.Equal("1", pod.Spec.Containers[0].Resources.Requests["cpu"].ToString());
            await DeleteTuningAsync(tuning);
        }
        finally
        {
            try { await Client.CoreV1.DeleteNamespacedPodAsync(filler, "default", gracePeriodSeconds: 0); }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound) { }
        }
    }

    /// <summary>A ResourceQuota in the node namespace, once the quota controller has counted it (the apiserver enforces it from then on).</summary>
    private async Task CreateQuotaAsync(string name, Dictionary<string, ResourceQuantity> hard)
    {
        var quota = $"e2e-{_id}-{name}";
        await Client.CoreV1.CreateNamespacedResourceQuotaAsync(new V1ResourceQuota
        {
            Metadata = new V1ObjectMeta { Name = quota },
            Spec = new V1ResourceQuotaSpec { Hard = hard },
        }, RealNodeFixture.NodeNamespace);
        _quotas.Add(quota);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ReadNamespacedResourceQuotaAsync(quota, RealNodeFixture.NodeNamespace)).Status?.Hard?.Count == hard.Count,
            $"the quota controller to count ResourceQuota {quota}", TimeSpan.FromSeconds(30), fixture.DescribePodsAsync);
    }

    private async Task DeleteQuotaAsync(string name)
    {
        var quota = $"e2e-{_id}-{name}";
        await Client.CoreV1.DeleteNamespacedResourceQuotaAsync(quota, RealNodeFixture.NodeNamespace);
        _quotas.Remove(quota);
    }

    [Fact, Order(9)]
    public async Task EveryPodPullsFromTheRegistryWithTheChartsSecret_AndAPodWithoutTheSecretIsRefused()
    {
        var www = Directory.CreateDirectory(Path.Combine(RealNodeFixture.WwwRoot, "www-" + _id)).FullName;
        _folders.Add(www);
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec
        {
            DataPlane = new DataPlaneSpec
            {
                Enabled = true, Image = fixture.DataPlaneImage, Mode = DataPlaneMode.StaticFiles, Port = 18483,
                StaticFiles = new StaticFilesSpec { HostPath = www },
            },
        });
        await ReadyDataPlanePodAsync(tuning);

        // The operator's, the agent's and the data plane's pods: each names the chart's secret and runs an image the node
        // pulled from the registry (nothing was imported into its containerd), the chart's two by digest.
        var registry = fixture.Registry.Host;
        var pods = (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.Namespace)).Items
            .Concat((await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace)).Items)
            .Where(p => p.Metadata.DeletionTimestamp is null).ToList();
        var apps = pods.Select(p => p.Metadata.Labels["app.kubernetes.io/name"]).ToHashSet();
        Assert.Superset(new HashSet<string> { "nettune-operator", "nettune-agent", "nettune-dataplane" }, apps);
        foreach (var pod in pods)
        {
            Assert.Contains(RealNodeFixture.PullSecret, pod.Spec.ImagePullSecrets?.Select(s => s.Name) ?? []);
            foreach (var status in pod.Status.ContainerStatuses)
            {
                Assert.StartsWith($"{registry}/nettune/", status.ImageID);
                Assert.StartsWith($"{registry}/nettune/", pod.Spec.Containers.Single(c => c.Name == status.Name).Image);
            }
        }
        Assert.Equal($"{registry}/nettune/operator@{fixture.Digests["operator"]}",
            pods.First(p => p.Metadata.Labels["app.kubernetes.io/name"] == "nettune-operator").Spec.Containers[0].Image);
        Assert.Equal($"{registry}/nettune/agent@{fixture.Digests["agent"]}",
            pods.First(p => p.Metadata.Labels["app.kubernetes.io/name"] == "nettune-agent").Spec.Containers[0].Image);
        Assert.Equal($"{registry}/nettune/dataplane@{fixture.Digests["dataplane"]}",
            pods.First(p => p.Metadata.Labels["app.kubernetes.io/name"] == "nettune-dataplane").Status.ContainerStatuses[0].ImageID);
        var (_, images) = await fixture.Node.CtrAsync("images", "ls", "-q");
        Assert.DoesNotContain(images.Split('\n'), i => i.StartsWith("docker.io/nettune/", StringComparison.Ordinal));

        // The registry refuses a pull without credentials: the same image, pulled again (Always), without the secret.
        await DeleteTuningAsync(tuning);
        var refused = await RunPullPodAsync("nopull-" + _id, withSecret: false);
        await Eventually.TrueAsync(async () =>
        {
            var waiting = (await Client.CoreV1.ReadNamespacedPodAsync(refused, RealNodeFixture.Namespace)).Status?.ContainerStatuses?.FirstOrDefault()?.State?.Waiting;
            output.WriteLine($"{waiting?.Reason}: {waiting?.Message}");
            return waiting is { Reason: "ErrImagePull" or "ImagePullBackOff" }
                && (waiting.Message?.Contains("401", StringComparison.Ordinal) == true || waiting.Message?.Contains("unauthorized", StringComparison.OrdinalIgnoreCase) == true);
        }, "the pod without the pull secret to fail its pull with 401 Unauthorized", Patience, fixture.DescribePodsAsync);
        // And the same pod with the secret pulls.
        var allowed = await RunPullPodAsync("pull-" + _id, withSecret: true);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ReadNamespacedPodAsync(allowed, RealNodeFixture.Namespace)).Status?.ContainerStatuses?.FirstOrDefault()?.ImageID is { Length: > 0 },
            "the pod with the pull secret to pull its image", Patience, fixture.DescribePodsAsync);
        foreach (var pod in new[] { refused, allowed })
            await Client.CoreV1.DeleteNamespacedPodAsync(pod, RealNodeFixture.Namespace, new V1DeleteOptions { GracePeriodSeconds = 0 });
    }

    /// <summary>A pod on the node that pulls the data-plane image every time (Always), with or without the chart's secret.</summary>
    private async Task<string> RunPullPodAsync(string name, bool withSecret)
    {
        await Client.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new V1PodSpec
            {
                NodeName = RealNodeFixture.NodeName,
                RestartPolicy = "Never",
                AutomountServiceAccountToken = false,
                ImagePullSecrets = withSecret ? [new V1LocalObjectReference { Name = RealNodeFixture.PullSecret }] : null,
                Containers = [new V1Container { Name = "pull", Image = fixture.DataPlaneImage, ImagePullPolicy = "Always", Args = ["--help"] }],
            },
        }, RealNodeFixture.Namespace);
        return name;
    }

    [Fact, Order(10)]
    public async Task HelmUpgradeFromOciRunsTheCrdHookJobAndAFieldOnlyTheNewCrdHasSurvivesAWrite()
    {
        // The CRDs as the chart of commit c813f43 installed them (before spec.dataPlane.seccompProfile existed).
        var previous = Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "fixtures", "crds-c813f43");
        // --validate=false: the v1.20 server's OpenAPI has no x-kubernetes-validations, which kubectl would refuse.
        var (code, _, stderr) = await fixture.Cluster.KubectlAsync("apply", "--validate=false", "-f", previous);
        Assert.True(code == 0, stderr);
        // A tuning that selects no node: nothing is applied while the NodeState CRD is the older one.
        var name = "e2e-crd-" + _id;
        await Client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new NetworkTuningSpec
            {
                NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune-e2e-nowhere"] = _id } },
                DataPlane = new DataPlaneSpec { Enabled = false, SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.RuntimeDefault } },
            },
        }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        _tunings.Add(name);
        Assert.Null((await ReadTuningAsync(name)).Spec.DataPlane?.SeccompProfile);

        // helm upgrade from the registry: the pre-upgrade hook's Job (the operator image, pulled with the chart's secret)
        // replaces the CRDs before anything else changes.
        var upgrade = await Tool.HelmRunAsync(RealNodeFixture.HelmMajor, ["upgrade", RealNodeFixture.Release, fixture.Chart.Reference, "--version", fixture.Chart.Version,
            .. fixture.Registry.HelmArgs, .. RealNodeFixture.HelmApply, "--namespace", RealNodeFixture.Namespace, "--kubeconfig", fixture.Cluster.KubeconfigPath,
            "--wait", "--timeout", "3m", .. fixture.ChartValues]);
        Assert.True(upgrade.ExitCode == 0, upgrade.Output + await fixture.DescribePodsAsync());
        var crd = await Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("networktunings.nettune.io");
        Assert.Contains("seccompProfile", JsonSerializer.Serialize(crd.Spec));

        var tuning = await ReadTuningAsync(name);
        tuning.Spec.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.RuntimeDefault };
        await Client.CustomObjects.ReplaceClusterCustomObjectAsync(tuning, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
        Assert.Equal(SeccompProfileKind.RuntimeDefault, (await ReadTuningAsync(name)).Spec.DataPlane?.SeccompProfile?.Type);
        await DeleteTuningAsync(name);
    }

    [Fact, Order(11)]
    public async Task HelmUninstallRevertsWhatIsStillTunedAndLeavesOnlyTheCrds()
    {
        var tuning = await ApplyTuningAsync(new NetworkTuningSpec { Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "4099" } });
        await WaitForNodeStateAsync(Applied, "NodeState Applied");
        Assert.Equal("4099", File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());

        // The chart's pre-delete hook deletes the tunings and waits for their revert before the operator goes.
        var uninstall = await Tool.HelmRunAsync(RealNodeFixture.HelmMajor, "uninstall", RealNodeFixture.Release, "--namespace", RealNodeFixture.Namespace,
            "--kubeconfig", fixture.Cluster.KubeconfigPath, "--wait", "--timeout", "5m");
        Assert.True(uninstall.ExitCode == 0, uninstall.Output + await fixture.DescribePodsAsync());
        fixture.Installed = false;
        _tunings.Remove(tuning);
        await Eventually.TrueAsync(async () =>
            (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.Namespace)).Items.Count == 0
            && (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace)).Items.Count == 0,
            "every NetTune pod to go", Patience, fixture.DescribePodsAsync);
        Assert.Empty((await Client.AppsV1.ListNamespacedDaemonSetAsync(RealNodeFixture.NodeNamespace)).Items);
        var tunings = await Client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        Assert.Empty(((JsonElement)tunings).GetProperty("items").EnumerateArray());
        var states = await Client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);
        Assert.Empty(((JsonElement)states).GetProperty("items").EnumerateArray());
        // ip_forward is the node's (its bridge plugin sets it with the first pod; the node's teardown puts it back).
        Assert.Empty(fixture.Baseline.DifferencesTo(HostValues.Read(), EmptyJournalFolder(), "/proc/sys/net/ipv4/ip_forward"));
    }

    /// <summary>
    /// The kubelet creates the agent's journal folder for its hostPath volume and does not remove it: an empty
    /// folder is accepted, any journal file in it is not.
    /// </summary>
    private static string EmptyJournalFolder()
    {
        if (!Directory.Exists(HostValues.JournalDir)) return "journal:";
        Assert.Empty(Directory.EnumerateFileSystemEntries(HostValues.JournalDir));
        return "journal:";
    }

    private async Task<V1Pod> ReadyDataPlanePodAsync(string tuning)
    {
        V1Pod pod = null!;
        await Eventually.TrueAsync(async () =>
        {
            var pods = (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace,
                labelSelector: $"app.kubernetes.io/name=nettune-dataplane,nettune.io/tuning={tuning}")).Items.Where(p => p.Metadata.DeletionTimestamp is null).ToList();
            pod = pods.Count == 1 ? pods[0] : null!;
            return pod?.Status?.ContainerStatuses?.FirstOrDefault()?.Ready == true;
        }, "the data-plane pod to be Ready", Patience, fixture.DescribePodsAsync);
        return pod;
    }

    private async Task<string> CreateVethAsync()
    {
        var device = "nte2e" + _id;
        var result = await Tool.RunAsync("ip", ["link", "add", device, "numrxqueues", "2", "numtxqueues", "2", "type", "veth",
            "peer", "name", device + "p", "numrxqueues", "2", "numtxqueues", "2"]);
        Assert.True(result.ExitCode == 0, result.Output);
        _devices.Add(device);
        await Tool.RunAsync("ip", ["link", "set", device, "up"]);
        return device;
    }

    private async Task<string> ApplyTuningAsync(NetworkTuningSpec spec)
    {
        var name = "e2e-" + _id;
        await Client.CoreV1.PatchNodeAsync(new V1Patch("{\"metadata\":{\"labels\":{\"nettune-e2e\":\"" + _id + "\"}}}", V1Patch.PatchType.MergePatch), RealNodeFixture.NodeName);
        spec.NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune-e2e"] = _id } };
        var tuning = new NetworkTuning { Metadata = new V1ObjectMeta { Name = name }, Spec = spec };
        await Client.CustomObjects.CreateClusterCustomObjectAsync(tuning, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
        _tunings.Add(name);
        return name;
    }

    private async Task DeleteTuningAsync(string name)
    {
        await Tunings.DeleteAndWaitGoneAsync(Client, name, Patience, fixture.DescribePodsAsync);
        _tunings.Remove(name);
    }

    private static bool Applied(NetworkTuningNodeState state) =>
        state.Status?.Conditions?.Any(c => c.Type == ConditionTypes.Applied && c.Status == ConditionStatus.True) == true
        && state.Status.LastAppliedGeneration == state.Metadata.Generation;

    private async Task<NetworkTuningNodeState> WaitForNodeStateAsync(Func<NetworkTuningNodeState, bool> condition, string what)
    {
        NetworkTuningNodeState state = null!;
        await Eventually.TrueAsync(async () => condition(state = await ReadNodeStateAsync()), what, Patience, fixture.DescribePodsAsync);
        return state;
    }

    private async Task<V1Pod> SinglePodAsync(string selector)
    {
        var pods = (await Client.CoreV1.ListNamespacedPodAsync(RealNodeFixture.NodeNamespace, labelSelector: selector)).Items
            .Where(p => p.Metadata.DeletionTimestamp is null).ToList();
        return Assert.Single(pods);
    }

    private static int Port(V1Pod pod, string portName) =>
        pod.Spec.Containers.SelectMany(c => c.Ports ?? []).Single(p => p.Name == portName).ContainerPort;

    private static string Endpoint(V1Pod pod, string portName) => $"{pod.Status.PodIP}:{Port(pod, portName)}";

    private Task<NetworkTuning> ReadTuningAsync(string name) => Tunings.ReadAsync(Client, name);

    private async Task<NetworkTuningNodeState> ReadNodeStateAsync()
    {
        var json = await Client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, RealNodeFixture.NodeName);
        return KubernetesJson.Deserialize<NetworkTuningNodeState>(JsonSerializer.Serialize(json));
    }

    /// <summary>
    /// Resident kB in 2 MiB pages of the data-plane process started with these args (read from the host's /proc).
    /// </summary>
    private static long HugepageRssKb(IList<string> args)
    {
        var wanted = "/app/dataplane\0" + string.Join('\0', args) + "\0";
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")); } catch (IOException) { continue; } catch (UnauthorizedAccessException) { continue; }
            if (cmdline != wanted) continue;
            long total = 0;
            var huge = false;
            foreach (var line in File.ReadLines(Path.Combine(dir, "smaps")))
            {
                if (line.StartsWith("KernelPageSize:", StringComparison.Ordinal)) huge = line.Contains("2048 kB", StringComparison.Ordinal);
                else if (huge && line.StartsWith("Private_Hugetlb:", StringComparison.Ordinal))
                    total += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
            return total;
        }
        throw new InvalidOperationException("no data-plane process with args " + string.Join(' ', args));
    }

    private static bool HasCondition(IEnumerable<V1Condition>? conditions, string type, string status, string? reason = null) =>
        conditions?.Any(c => c.Type == type && c.Status == status && (reason is null || c.Reason == reason)) == true;

    /// <summary>The CPU set the kubelet's static CPU manager recorded for the pod's container (its checkpoint file).</summary>
    private static string KubeletAssignedCpus(V1Pod pod)
    {
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(NetTune.LocalCluster.LocalNode.StateDir, "kubelet", "cpu_manager_state")));
        var entries = state.RootElement.GetProperty("entries");
        return entries.GetProperty(pod.Metadata.Uid).GetProperty(pod.Spec.Containers[0].Name).GetString()!;
    }

    /// <summary>The host PID of the pod's container, from the runtime (ctr task list).</summary>
    private async Task<int> ContainerPidAsync(V1Pod pod)
    {
        var id = pod.Status.ContainerStatuses[0].ContainerID.Split("://")[1];
        var (code, tasks) = await fixture.Node.CtrAsync("tasks", "ls");
        Assert.Equal(0, code);
        var line = tasks.Split('\n').Single(l => l.StartsWith(id, StringComparison.Ordinal));
        return int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
