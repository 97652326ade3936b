using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class BuilderTests
{
    private static readonly DataPlaneOptions Options = new("nettune-system", MemoryPerSocket: "1Gi");

    private static NetworkTuning DataPlaneTuning()
    {
        var t = Tuning("web");
        t.Spec.Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth*"] },
            IrqAffinity = new IrqAffinitySpec(),
            HousekeepingCpus = "0,8",
        };
        t.Spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 256, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 128 }] }];
        t.Spec.DataPlane = new DataPlaneSpec
        {
            Enabled = true, Image = "nettune/dataplane:1", Port = 8080, AdminPort = 9180,
            StaticFiles = new StaticFilesSpec { HostPath = "/srv/site" }, IoEngine = IoEngine.IoUring,
        };
        return t;
    }

    /// <summary>A node whose kubelet reports these allocatable resources, and the NUMA resources of the agent's device plugin.</summary>
    private static V1Node Allocatable(params (string Resource, string Quantity)[] resources)
    {
        var node = Fixtures.NumaNode();
        foreach (var (resource, quantity) in resources) node.Status.Allocatable[resource] = new ResourceQuantity(quantity);
        return node;
    }

    /// <summary>The two sockets' 256 + 128 pages of 2 MiB are counted by the kubelet.</summary>
    private static readonly V1Node WithPages = Allocatable(("hugepages-2Mi", "768Mi"));

    private static NodeTopology TwoSockets() => new()
    {
        NumaNodes =
        [
            new NumaNodeInfo { Id = 0, Cpus = "0-7" },
            new NumaNodeInfo { Id = 1, Cpus = "8-15" },
            new NumaNodeInfo { Id = 2, Cpus = "" }, // memory-only node
        ],
    };

    [Fact]
    public void EachPodAsksForOneDeviceOfItsNumaNodesResource_TheTopologyManagerThenTakesItsCpusFromThatNode()
    {
        var pods = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options);
        foreach (var (pod, numa) in pods.Select((p, i) => (p, i)))
        {
            var resources = pod.Spec.Containers.Single().Resources;
            Assert.Equal("1", resources.Requests[$"nettune.io/numa-node-{numa}"].ToString());
            Assert.Equal("1", resources.Limits[$"nettune.io/numa-node-{numa}"].ToString());
            Assert.DoesNotContain(resources.Requests.Keys, k => k.StartsWith(NumaResources.Prefix, StringComparison.Ordinal) && k != NumaResources.ResourceName(numa));
        }
    }

    [Fact]
    public void NoPodForANumaNodeTheNodeDoesNotAdvertise_ItsPodWouldStayPending()
    {
        // The kubelet shows NUMA node 0's resource only (node 1's not registered yet, or its agent is older).
        var node = Allocatable(("hugepages-2Mi", "768Mi"));
        node.Status.Allocatable.Remove(NumaResources.ResourceName(1));
        node.Status.Allocatable[NumaResources.ResourceName(0)] = new ResourceQuantity("0");
        var plan = DataPlanePodBuilder.Plan(DataPlaneTuning(), "node-a", node, TwoSockets(), Options);
        Assert.All(plan, s => Assert.Null(s.Pod));
        Assert.All(plan, s => Assert.Equal(ConditionReasons.NumaResourceNotAllocatable, s.WaitReason));
        Assert.Contains("nettune.io/numa-node-1", plan[1].WaitMessage);
        node.Status.Allocatable[NumaResources.ResourceName(0)] = new ResourceQuantity("4");
        Assert.Equal(["web-dp-node-a-numa0"], DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", node, TwoSockets(), Options).Select(p => p.Metadata.Name));
    }

    [Fact]
    public void PodsGoOnlyToTheNumaNodesOfTheSelectedNics_UnlessAllAreAskedForOrANicsNodeIsUnknown()
    {
        var topology = TwoSockets();
        topology.Nics = [new NicInfo { Name = "ens1f0", Driver = "mlx5_core", NumaNode = 1 }, new NicInfo { Name = "eth0", Driver = "virtio_net", NumaNode = -1 }];
        var t = DataPlaneTuning();
        t.Spec.Nic = null;
        IReadOnlyList<string> Names() => DataPlanePodBuilder.Build(t, "node-a", WithPages, topology, Options).Select(p => p.Metadata.Name).ToList();

        // No NIC selected: every NUMA node with CPUs, nothing to say.
        Assert.Equal(["web-dp-node-a-numa0", "web-dp-node-a-numa1"], Names());
        Assert.Equal((null, null), DataPlanePodBuilder.PodNumaNodes(t, "node-a", topology));

        // The selected NIC is on NUMA node 1: node 0's pod would cross the socket link for every packet.
        t.Spec.Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["mlx5_core"] } };
        Assert.Equal(["web-dp-node-a-numa1"], Names());
        var (only, note) = DataPlanePodBuilder.PodNumaNodes(t, "node-a", topology);
        Assert.Equal([1], only!);
        Assert.Equal("node node-a: no pod on NUMA node 0, which no selected NIC is on (ens1f0 on 1); dataPlane.numaNodes All puts one on every NUMA node", note);
        // The one pod gets the CPUs allocatable leaves to one pod, not half of them.
        Assert.Equal("8", DataPlanePodBuilder.Build(t, "node-a", Allocatable(("cpu", "15"), ("hugepages-2Mi", "768Mi")), topology, Options).Single().Spec.Containers[0].Resources.Requests["cpu"].ToString());

        t.Spec.DataPlane!.NumaNodes = DataPlaneNumaNodes.All;
        Assert.Equal(["web-dp-node-a-numa0", "web-dp-node-a-numa1"], Names());

        // A selected NIC whose NUMA node the platform does not say (-1) is unknown, not node 0: every node, and said.
        t.Spec.DataPlane.NumaNodes = DataPlaneNumaNodes.NicLocal;
        t.Spec.Nic.Interfaces = new InterfaceSelector { Names = ["ens1f0", "eth*"] };
        Assert.Equal(["web-dp-node-a-numa0", "web-dp-node-a-numa1"], Names());
        Assert.Contains("the NUMA node of eth0 is unknown (numa_node -1): a pod on every NUMA node", DataPlanePodBuilder.PodNumaNodes(t, "node-a", topology).Note);
    }

    [Fact]
    public void OnePodPerSocketAskingForItsCpusLessReservedAndNoCpuList()
    {
        var pods = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options);
        Assert.Equal(["web-dp-node-a-numa0", "web-dp-node-a-numa1"], pods.Select(p => p.Metadata.Name));

        var pod = pods[1];
        Assert.True(pod.Spec.HostNetwork);
        Assert.Equal("nettune-system", pod.Metadata.NamespaceProperty);
        var c = Assert.Single(pod.Spec.Containers);
        var args = c.Args.ToList();
        // The kubelet picks the CPUs; the data plane reads them (and its NUMA node) from its affinity.
        Assert.DoesNotContain("--cpus", args);
        Assert.DoesNotContain("--numa-node", args);
        Assert.DoesNotContain(c.Env, e => e.Name is "NETTUNE_CPUS" or "NETTUNE_NUMA_NODE");
        Assert.Equal("iouring", args[args.IndexOf("--io-engine") + 1]);
        Assert.Equal("9181", args[args.IndexOf("--admin-port") + 1]);
        // The admin port binds the pod IP (the node's, host network), where probes, scrapes and the operator go.
        Assert.Equal("$(POD_IP)", args[args.IndexOf("--admin-address") + 1]);
        Assert.Equal("status.podIP", Assert.Single(c.Env, e => e.Name == "POD_IP").ValueFrom.FieldRef.FieldPath);
        Assert.Null(c.ReadinessProbe.HttpGet.Host);
        Assert.Null(c.LivenessProbe.HttpGet.Host);
        Assert.Contains("--hugepages", args);

        // Guaranteed QoS: whole CPUs, requests equal limits.
        Assert.Equal("7", c.Resources.Requests["cpu"].ToString());
        Assert.Equal("256Mi", c.Resources.Requests["hugepages-2Mi"].ToString()); // 128 pages of 2 MiB on node 1
        Assert.Equal(c.Resources.Requests.OrderBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value.ToString())),
            c.Resources.Limits.OrderBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value.ToString())));
        Assert.Equal("512Mi", pods[0].Spec.Containers[0].Resources.Limits["hugepages-2Mi"].ToString());

        Assert.Equal("/readyz", c.ReadinessProbe.HttpGet.Path);
        Assert.Equal("9181", c.ReadinessProbe.HttpGet.Port.Value);
        var owner = Assert.Single(pod.Metadata.OwnerReferences);
        Assert.Equal(("NetworkTuning", "web", true), (owner.Kind, owner.Name, owner.Controller == true));
        Assert.Contains(pod.Spec.Volumes, v => v.HostPath?.Path == "/srv/site");
    }

    [Fact]
    public void StaticModeFlagsAreWhatTheDataPlaneParses()
    {
        var pod = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options)[1];
        var o = NetTune.DataPlane.ServerOptions.Parse(pod.Spec.Containers[0].Args.ToList());
        Assert.False(o.IsProxy);
        Assert.Equal(DataPlanePodBuilder.StaticRoot, o.Root);
        Assert.Equal((8080, 9181), (o.Port, o.AdminPort));
        Assert.Equal(NetTune.DataPlane.IoEngineKind.IoUring, o.Engine);
        Assert.True(o.HugePages);
        Assert.Equal(0, o.Workers);
    }

    [Fact]
    public void ProxyModeHandsUpstreamsAndWorkersToTheDataPlaneAsFlags()
    {
        var t = DataPlaneTuning();
        t.Spec.DataPlane!.Mode = DataPlaneMode.Proxy;
        t.Spec.DataPlane.StaticFiles = null;
        t.Spec.DataPlane.Proxy = new ProxySpec { Upstreams = ["10.0.0.5:8080", "app.default.svc:80"] };
        t.Spec.DataPlane.WorkersPerSocket = 2;
        var pod = DataPlanePodBuilder.Build(t, "node-a", WithPages, TwoSockets(), Options)[0];
        var o = NetTune.DataPlane.ServerOptions.Parse(pod.Spec.Containers[0].Args.ToList());
        Assert.True(o.IsProxy);
        Assert.Equal(["10.0.0.5:8080", "app.default.svc:80"], o.Upstreams);
        Assert.Equal(2, o.Workers);
        Assert.Equal("", o.Root);
        Assert.DoesNotContain(pod.Spec.Volumes ?? [], v => v.Name == "static-root");
    }

    [Theory]
    [InlineData(DataPlaneMode.StaticFiles, null)]
    [InlineData(DataPlaneMode.Proxy, null)]
    [InlineData(DataPlaneMode.StaticFiles, 3)]
    [InlineData(DataPlaneMode.Proxy, 4)]
    public void MemoryFlagsAreWhatTheDataPlaneDerivesFromThePodsLimit(DataPlaneMode mode, int? workersPerSocket)
    {
        foreach (var memory in new[] { "512Mi", "1Gi", "192Mi" })
        {
            var t = DataPlaneTuning();
            t.Spec.DataPlane!.Mode = mode;
            t.Spec.DataPlane.WorkersPerSocket = workersPerSocket;
            if (mode == DataPlaneMode.Proxy) t.Spec.DataPlane.Proxy = new ProxySpec { Upstreams = ["10.0.0.5:8080"] };
            var pod = DataPlanePodBuilder.Build(t, "node-a", WithPages, TwoSockets(), Options with { MemoryPerSocket = memory })[0];
            var container = pod.Spec.Containers[0];
            var limit = (long)container.Resources.Limits["memory"].ToDecimal();
            var workers = workersPerSocket ?? (int)container.Resources.Limits["cpu"].ToDecimal();
            var args = container.Args.ToList();
            var given = NetTune.DataPlane.ServerOptions.Parse(args).WithMemoryBudget(null, workers);

            // The data plane in that pod, told nothing, would read the limit from its cgroup and derive the same.
            var memoryFlags = new[] { "--max-connections", "--memory-cache-bytes", "--upstream-max-connections" };
            var bare = args.Where((a, i) => !memoryFlags.Contains(a) && (i == 0 || !memoryFlags.Contains(args[i - 1]))).ToList();
            Assert.Equal(args.Count - 4, bare.Count);
            var derived = NetTune.DataPlane.ServerOptions.Parse(bare).WithMemoryBudget(limit, workers);
            Assert.Equal(derived.Memory, given.Memory);
            Assert.True(given.MaxConnectionsPerWorker < 16384, $"{memory}: {given.MaxConnectionsPerWorker} connections per worker");
        }
    }

    [Fact]
    public void EachSocketDeclaresItsOwnAdminPortAsMetricsAndNoDataPort()
    {
        var pods = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options);
        var ports = pods.Select(p => Assert.Single(Assert.Single(p.Spec.Containers).Ports)).ToList();
        Assert.All(ports, p => Assert.Equal(("metrics", "TCP"), (p.Name, p.Protocol)));
        Assert.Equal([9180, 9181], ports.Select(p => p.ContainerPort));
        // Host networking makes declared ports host ports: two sockets' pods on one node must not declare the same one.
        Assert.DoesNotContain(pods.SelectMany(p => p.Spec.Containers[0].Ports), p => p.ContainerPort == 8080);
        Assert.Equal(ports.Select(p => p.ContainerPort.ToString()), pods.Select(p => p.Spec.Containers[0].ReadinessProbe.HttpGet.Port.Value));
    }

    [Fact]
    public void ThePodSpecHashFollowsTheSpec()
    {
        var before = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options)[0];
        var again = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options)[0];
        var changed = DataPlaneTuning();
        changed.Spec.DataPlane!.Image = "nettune/dataplane:2";
        var after = DataPlanePodBuilder.Build(changed, "node-a", WithPages, TwoSockets(), Options)[0];
        Assert.Equal(before.Metadata.Annotations[Names.SpecHashAnnotation], again.Metadata.Annotations[Names.SpecHashAnnotation]);
        Assert.NotEqual(before.Metadata.Annotations[Names.SpecHashAnnotation], after.Metadata.Annotations[Names.SpecHashAnnotation]);
    }

    [Fact]
    public void NoPodsWithoutTopologyOrWhenDisabled()
    {
        Assert.Empty(DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, null, Options));
        var off = DataPlaneTuning();
        off.Spec.DataPlane!.Enabled = false;
        Assert.Empty(DataPlanePodBuilder.Build(off, "node-a", WithPages, TwoSockets(), Options));
    }

    [Fact]
    public void LongNamesStayValidAndDistinct()
    {
        var node = new string('n', 250);
        var a = DataPlanePodBuilder.PodName("t", node, 0);
        var b = DataPlanePodBuilder.PodName("t", node, 1);
        Assert.True(a.Length <= 253);
        Assert.NotEqual(a, b);
        Assert.True(Names.LabelValue(node).Length <= 63);
        Assert.NotEqual(Names.LabelValue(node + "x"), Names.LabelValue(node + "y"));
    }

    [Fact]
    public void TheAgentDaemonSetRunsOnTheOperatorsNodeLabel()
    {
        var ds = AgentDaemonSetBuilder.Build(new AgentOptions("nettune-system", "nettune/agent:1"));

        // Placed by the operator's node label, which outlives a node's leaving the selectors until its revert.
        Assert.Null(ds.Spec.Template.Spec.Affinity);
        Assert.Equal(new Dictionary<string, string> { [Names.AgentNodeLabel] = "true" }, ds.Spec.Template.Spec.NodeSelector);
        Assert.Equal("system-node-critical", ds.Spec.Template.Spec.PriorityClassName);
        // Owned by nothing: the garbage collector would take the agents away with the last tuning.
        Assert.Null(ds.Metadata.OwnerReferences);

        var pod = ds.Spec.Template.Spec;
        Assert.True(pod.HostNetwork);
        Assert.Equal(Names.AgentServiceAccount, pod.ServiceAccountName);
        var c = pod.Containers.Single();
        Assert.True(c.SecurityContext.Privileged);
        Assert.Equal("spec.nodeName", c.Env.Single(e => e.Name == "NODE_NAME").ValueFrom.FieldRef.FieldPath);
        Assert.Equal(["/host/sys", "/host/proc", "/var/lib/nettune", "/host/var/lib/kubelet", "/host/var/lib/kubelet/seccomp", "/host/var/lib/kubelet/device-plugins", PodBoundToken.MountPath],
            c.VolumeMounts.Select(m => m.MountPath));
        Assert.Equal(["/sys", "/proc", "/var/lib/nettune", "/var/lib/kubelet", "/var/lib/kubelet/seccomp", "/var/lib/kubelet/device-plugins"], pod.Volumes.Where(v => v.HostPath is not null).Select(v => v.HostPath.Path));
        Assert.NotNull(c.Resources.Requests["cpu"]);
        Assert.NotNull(c.Resources.Limits["memory"]);
        Assert.Contains(pod.Tolerations, t => t.OperatorProperty == "Exists");

        // The operator's own node selector is ANDed with the label.
        var narrowed = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "img") { NodeSelector = new Dictionary<string, string> { ["pool"] = "edge" } });
        Assert.Equal(["nettune.io/agent", "pool"], narrowed.Spec.Template.Spec.NodeSelector.Keys.Order());
    }

    [Fact]
    public void TheAgentAndDataPlanePodsNameThePullSecretsOnTheirPodSpecs_NotOnTheServiceAccountTheOperatorRemakes()
    {
        var agent = new AgentOptions("ns", "registry.example/nettune/agent@sha256:" + new string('a', 64)) { ImagePullSecrets = ["registry-credentials", "mirror"] };
        var ds = AgentDaemonSetBuilder.Build(agent);
        Assert.Equal(["registry-credentials", "mirror"], ds.Spec.Template.Spec.ImagePullSecrets.Select(s => s.Name));
        Assert.Equal(agent.Image, ds.Spec.Template.Spec.Containers.Single().Image);
        Assert.Null(AgentDaemonSetBuilder.BuildServiceAccount(agent).ImagePullSecrets);
        // A changed list is a changed spec: the DaemonSet is updated.
        Assert.NotEqual(ds.Metadata.Annotations[Names.SpecHashAnnotation],
            AgentDaemonSetBuilder.Build(agent with { ImagePullSecrets = ["registry-credentials"] }).Metadata.Annotations[Names.SpecHashAnnotation]);
        // None: no list at all, so specs from before pull secrets existed hash the same.
        Assert.Null(AgentDaemonSetBuilder.Build(new AgentOptions("ns", "img")).Spec.Template.Spec.ImagePullSecrets);

        var pods = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options with { ImagePullSecrets = ["registry-credentials"] });
        Assert.All(pods, p => Assert.Equal("registry-credentials", Assert.Single(p.Spec.ImagePullSecrets).Name));
        Assert.All(DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options), p => Assert.Null(p.Spec.ImagePullSecrets));
    }

    [Theory]
    [InlineData("registry-credentials", true)]
    [InlineData("a.b-c", true)]
    [InlineData("Registry", false)]
    [InlineData("-x", false)]
    [InlineData("a_b", false)]
    [InlineData("", false)]
    public void APullSecretNameMustBeASecretsName(string name, bool valid) =>
        Assert.Equal(valid, PullSecrets.Problem(name) is null);

    [Fact]
    public void TheAgentReadsTheKubeletsCpuAssignmentFromItsRootDir_ReadOnly_WhereverTheKubeletKeepsIt()
    {
        var ds = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "img") { KubeletRootDir = "/data/kubelet" });
        var pod = ds.Spec.Template.Spec;
        var c = pod.Containers.Single();
        var mount = c.VolumeMounts.Single(m => m.MountPath == "/host/data/kubelet");
        Assert.True(mount.ReadOnlyProperty);
        Assert.Equal("HostToContainer", mount.MountPropagation); // the kubelet's unmounts reach the agent's copy
        var volume = pod.Volumes.Single(v => v.Name == mount.Name).HostPath;
        Assert.Equal(("/data/kubelet", "Directory"), (volume.Path, volume.Type));
        // The agent reads <host root><kubelet root>/cpu_manager_state.
        var args = c.Args.ToList();
        Assert.Equal("/data/kubelet", args[args.IndexOf("--kubelet-root-dir") + 1]);
        Assert.Equal("/host", args[args.IndexOf("--host-root") + 1]);
    }

    [Theory]
    [InlineData("/var/lib/kubelet", true)]
    [InlineData("/data/k8s/kubelet", true)]
    [InlineData("/", false)]
    [InlineData("var/lib/kubelet", false)]
    [InlineData("/var/lib/kubelet/", false)]
    [InlineData("/var/../etc", false)]
    [InlineData("/var//kubelet", false)]
    [InlineData("/var/lib/kube:let", false)]
    public void TheKubeletRootDirMustBeAnAbsoluteNormalFolder(string path, bool valid) =>
        Assert.Equal(valid, AgentSettingsParser.IsHostDirectory(path));

    [Fact]
    public void TheAgentHasMinutesToStartBeforeItsLivenessProbeCounts()
    {
        var c = AgentDaemonSetBuilder.Build(new AgentOptions("nettune-system", "nettune/agent:1")).Spec.Template.Spec.Containers.Single();
        Assert.Equal("/healthz", c.StartupProbe.HttpGet.Path);
        Assert.Equal(c.LivenessProbe.HttpGet.Port.Value, c.StartupProbe.HttpGet.Port.Value);
        Assert.True(c.StartupProbe.PeriodSeconds * c.StartupProbe.FailureThreshold >= 300,
            "a slow node's agent (50 s to listen on an emulated guest) must not be killed before it listens");
        Assert.All(new[] { c.StartupProbe, c.LivenessProbe }, p => Assert.True(p.TimeoutSeconds >= 5, "a starved agent answered /healthz in over 1 s"));
    }

    [Fact]
    public void ANodeKeepsItsAgentUntilItReportedReverted()
    {
        var t = Tuning("t", selector: Labels(("role", "web")));
        var web = Node("n1", ("role", "web"));
        var relabelled = Node("n1", ("role", "db"));
        Assert.True(AgentPlacement.NeedsAgent(web, [t], null));

        // Out of the selector, the NodeState still holds the tuning: keep the agent.
        var holding = State("n1", 3, Having("t", 1), "Applied");
        Assert.True(AgentPlacement.NeedsAgent(relabelled, [t], holding));
        // Asked to revert, not done yet: keep it.
        var reverting = State("n1", 4, new NodeStateSpec { Revert = true }, "Applied");
        reverting.Status!.ObservedGeneration = 3;
        Assert.True(AgentPlacement.NeedsAgent(relabelled, [t], reverting));
        // Reverted for the current generation: the agent may go.
        Assert.False(AgentPlacement.NeedsAgent(relabelled, [t], State("n1", 4, new NodeStateSpec { Revert = true }, "Reverted")));
        // A deleted tuning whose revert is pending does not hold a node by its selector, only through the NodeState.
        var deleted = Tuning("t", selector: Labels(("role", "web")));
        deleted.Metadata.DeletionTimestamp = DateTime.UtcNow;
        Assert.False(AgentPlacement.NeedsAgent(web, [deleted], null));
        Assert.True(AgentPlacement.NeedsAgent(web, [deleted], holding));
    }

    [Fact]
    public void PodsArePlacedByTheSchedulerOnTheirNodeWithoutTolerationsAndWithTheirPriority()
    {
        var t = DataPlaneTuning();
        t.Spec.DataPlane!.PriorityClassName = "nettune-dataplane";
        var pod = DataPlanePodBuilder.Build(t, "node-a", WithPages, TwoSockets(), Options)[0];
        Assert.Null(pod.Spec.NodeName); // bound by the scheduler, which accounts for it and honours cordons
        Assert.Null(pod.Spec.Tolerations);
        var term = Assert.Single(pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms);
        var field = Assert.Single(term.MatchFields);
        Assert.Equal(("metadata.name", "In", "node-a"), (field.Key, field.OperatorProperty, Assert.Single(field.Values)));
        var label = Assert.Single(term.MatchExpressions);
        Assert.Equal((Names.NodeTunedLabel, "Exists"), (label.Key, label.OperatorProperty));
        Assert.Equal("nettune-dataplane", pod.Spec.PriorityClassName);
        Assert.Equal("node-a", DataPlanePodBuilder.NodeOf(pod));

        t.Spec.DataPlane.PriorityClassName = null;
        Assert.Null(DataPlanePodBuilder.Build(t, "node-a", WithPages, TwoSockets(), Options with { RequiredNodeLabel = null })[0].Spec.PriorityClassName);
    }

    [Fact]
    public void TheCpuCountFitsTheNodesAllocatableCpu()
    {
        var t = DataPlaneTuning();
        t.Spec.Hugepages = null;
        // 16 CPUs, kubeReserved 1 CPU: 15 allocatable, less the agent's 20m: 14 whole CPUs, 7 per socket.
        var big = Allocatable(("cpu", "15"));
        var pods = DataPlanePodBuilder.Build(t, "node-a", big, TwoSockets(), Options);
        Assert.Equal(["7", "7"], pods.Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));
        // Less allocatable than the sockets have: each socket's pod gets its share of it.
        pods = DataPlanePodBuilder.Build(t, "node-a", Allocatable(("cpu", "9500m")), TwoSockets(), Options);
        Assert.Equal(["4", "4"], pods.Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));

        // This machine's real node: 2 CPUs, one NUMA node. kubeReserved 100m leaves 1900m: one whole CPU.
        var small = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-1" }] };
        t.Spec.Nic = null;
        var one = Assert.Single(DataPlanePodBuilder.Build(t, "node-a", Allocatable(("cpu", "1900m")), small, Options));
        Assert.Equal("1", one.Spec.Containers[0].Resources.Limits["cpu"].ToString());
        // reservedSystemCPUs "0" leaves exactly 1 CPU, which the agent's 20m already dips into: no pod, and why.
        var none = Assert.Single(DataPlanePodBuilder.Plan(t, "node-a", Allocatable(("cpu", "1")), small, Options));
        Assert.Null(none.Pod);
        Assert.Equal(ConditionReasons.NoAllocatableCpu, none.WaitReason);
        Assert.Contains("no whole CPU left", none.WaitMessage);
    }

    /// <summary>A pod bound to the node, requesting CPU (containers, an init container, overhead), as the kubelet would list it.</summary>
    private static V1Pod Bound(string name, string cpu, string? phase = null, string? ownerUid = null, string? initCpu = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name, NamespaceProperty = "kube-system",
            OwnerReferences = ownerUid is null ? null : [new V1OwnerReference { Uid = ownerUid, Name = "owner", Kind = "NetworkTuning", ApiVersion = "nettune.io/v1alpha1" }],
        },
        Spec = new V1PodSpec
        {
            Containers = [new V1Container { Name = "c", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(cpu) } } }],
            InitContainers = initCpu is null ? null : [new V1Container { Name = "i", Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(initCpu) } } }],
        },
        Status = new V1PodStatus { Phase = phase ?? "Running" },
    };

    private static IEnumerable<string> Cpus(IEnumerable<V1Pod> pods) => pods.Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString());

    [Fact]
    public void TheCpuCountLeavesWhatTheNodesOtherPodsRequestAndAMargin_SoTheSecondPodIsNotPending()
    {
        var t = DataPlaneTuning();
        t.Spec.Hugepages = null;
        var node = Allocatable(("cpu", "15"));
        // A CNI pod (1.5), a CSI pod whose init container asks more than its containers (1), an exporter (250m), the agent
        // (20m); a finished Job's pod and this tuning's own pod hold nothing beside the new pods.
        var others = NodeCpuUse.Of(
        [
            Bound("cni", "1500m"), Bound("csi", "200m", initCpu: "1"), Bound("exporter", "250m"), Bound("agent", "20m"),
            Bound("job", "4", phase: "Succeeded"), Bound("web-dp-node-a-numa9", "6", ownerUid: t.Metadata.Uid),
        ], t.Metadata.Uid);
        Assert.Equal((2770L, 4), (others.Millis, others.Pods));
        Assert.Equal(["kube-system/cni 1500m", "kube-system/csi 1", "kube-system/exporter 250m"], others.Largest);

        // Without them each socket would get 7 of the 14 CPUs the agent leaves, and 7 + 7 + 2.77 does not fit in 15:
        // the second pod would stay Pending. With them: 15 − 2.77 − 0.5 margin = 11.73, 5 per socket.
        Assert.Equal(["7", "7"], Cpus(DataPlanePodBuilder.Build(t, "node-a", node, TwoSockets(), Options)));
        Assert.Equal(["5", "5"], Cpus(DataPlanePodBuilder.Build(t, "node-a", node, TwoSockets(), Options, others)));
        Assert.Equal(["5", "5"], Cpus(DataPlanePodBuilder.Build(t, "node-a", node, TwoSockets(), Options with { CpuMarginMillis = 2230 }, others)));
        Assert.Equal(["4", "4"], Cpus(DataPlanePodBuilder.Build(t, "node-a", node, TwoSockets(), Options with { CpuMarginMillis = 2231 }, others)));

        // A running pod keeps its size while what it could have (its cap, recorded on it) stays the same: pods coming and
        // going beside it do not replace it. The missing socket gets what is left beside it.
        var running = DataPlanePodBuilder.Build(t, "node-a", node, TwoSockets(), Options)[0];
        Assert.Equal("7", running.Metadata.Annotations[Names.CpuCapAnnotation]);
        var plan = DataPlanePodBuilder.Plan(t, "node-a", node, TwoSockets(), Options, others, [running]);
        Assert.Equal([7, 4], plan.Select(s => s.Cpus));
        Assert.Equal(running.Metadata.Annotations[Names.SpecHashAnnotation], plan[0].Pod!.Metadata.Annotations[Names.SpecHashAnnotation]);
        // Its cap changed (CPU 0 no longer housekeeping, more allocatable CPU): sized anew beside the other pods.
        t.Spec.Nic!.HousekeepingCpus = "8";
        plan = DataPlanePodBuilder.Plan(t, "node-a", Allocatable(("cpu", "17")), TwoSockets(), Options, others, [running]);
        Assert.Equal([6, 6], plan.Select(s => s.Cpus));
        // A pod made before the cap was recorded keeps its size while it fits.
        running.Metadata.Annotations.Remove(Names.CpuCapAnnotation);
        plan = DataPlanePodBuilder.Plan(t, "node-a", Allocatable(("cpu", "17")), TwoSockets(), Options, others, [running]);
        Assert.Equal([7, 6], plan.Select(s => s.Cpus));
        t.Spec.Nic.HousekeepingCpus = "0,8";

        // Nothing left for the pods: none is made, and the status says whose requests took the CPU.
        var crowded = NodeCpuUse.Of([Bound("cni", "14")], t.Metadata.Uid);
        plan = DataPlanePodBuilder.Plan(t, "node-a", node, TwoSockets(), Options, crowded);
        Assert.All(plan, s => Assert.Null(s.Pod));
        Assert.All(plan, s => Assert.Equal(ConditionReasons.NoAllocatableCpu, s.WaitReason));
        Assert.Equal("node node-a has no whole CPU left for NUMA node 1's pod: allocatable CPU 15 less 14 requested by 1 other pods (kube-system/cni 14) " +
            "and a margin of 500m leaves 500m for 2 pods", plan[1].WaitMessage);

        // An explicit cpusPerSocket is taken as given.
        t.Spec.DataPlane!.CpusPerSocket = 3;
        Assert.Equal(["3", "3"], Cpus(DataPlanePodBuilder.Build(t, "node-a", node, TwoSockets(), Options, crowded)));
    }

    /// <summary>Two packages of two NUMA nodes each (Intel SNC2, AMD NPS2), 4 CPUs per NUMA node.</summary>
    private static NodeTopology SubNumaClustered() => new()
    {
        NumaNodes = Enumerable.Range(0, 4).Select(i => new NumaNodeInfo { Id = i, Cpus = $"{i * 4}-{i * 4 + 3}" }).ToList(),
        Cpus = Enumerable.Range(0, 16).Select(i => new CpuTopology { Id = i, Package = i / 8, Core = i % 8, ThreadSiblings = $"{i}" }).ToList(),
        Nics = [new NicInfo { Name = "eth0", Driver = "ice", NumaNode = 2 }],
    };

    [Fact]
    public void WithPodPerPackage_EachPackageGetsOnePodOverItsNumaNodes_TheDefaultStaysOnePerNumaNode()
    {
        var t = DataPlaneTuning();
        t.Spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64 }];
        t.Spec.Nic = new NicSpec { HousekeepingCpus = "0" };
        var node = Allocatable(("cpu", "15"), ("hugepages-2Mi", "512Mi"), (NumaResources.ResourceName(2), "64"), (NumaResources.ResourceName(3), "64"));
        Assert.Equal(["web-dp-node-a-numa0", "web-dp-node-a-numa1", "web-dp-node-a-numa2", "web-dp-node-a-numa3"],
            DataPlanePodBuilder.Build(t, "node-a", node, SubNumaClustered(), Options).Select(p => p.Metadata.Name));

        t.Spec.DataPlane!.PodPer = DataPlanePodUnit.Package;
        var pods = DataPlanePodBuilder.Build(t, "node-a", node, SubNumaClustered(), Options);
        Assert.Equal(["web-dp-node-a-pkg0", "web-dp-node-a-pkg1"], pods.Select(p => p.Metadata.Name));
        var first = pods[0].Spec.Containers[0];
        // One device of each of its NUMA nodes: the Topology Manager's hint then spans both, and the CPUs come from them.
        Assert.Equal(["cpu", "hugepages-2Mi", "memory", "nettune.io/numa-node-0", "nettune.io/numa-node-1"], first.Resources.Requests.Keys.Order(StringComparer.Ordinal));
        // 7 free CPUs (CPU 0 is housekeeping), capped by 14.98 allocatable CPUs over two pods, and the pages of both NUMA nodes.
        Assert.Equal(("7", "256Mi"), (first.Resources.Requests["cpu"].ToString(), first.Resources.Requests["hugepages-2Mi"].ToString()));
        Assert.Equal(("0", 9180), (pods[0].Metadata.Labels[Names.NumaLabel], first.Ports[0].ContainerPort));
        Assert.Equal(("2", 9182), (pods[1].Metadata.Labels[Names.NumaLabel], pods[1].Spec.Containers[0].Ports[0].ContainerPort));

        // NicLocal: the package with the NIC's NUMA node, whole.
        t.Spec.Nic.Interfaces = new InterfaceSelector { Drivers = ["ice"] };
        var plan = DataPlanePodBuilder.Plan(t, "node-a", node, SubNumaClustered(), Options);
        var only = Assert.Single(plan);
        Assert.Equal(("web-dp-node-a-pkg1", 8), (only.Name, only.Cpus));
        Assert.Equal([2, 3], only.NumaNodes!);
        Assert.Equal("node node-a: no pod on NUMA nodes 0, 1, which no selected NIC is on (eth0 on 2); dataPlane.numaNodes All puts one on every NUMA node",
            DataPlanePodBuilder.PodNumaNodes(t, "node-a", SubNumaClustered()).Note);

        // Without the CPUs' packages (an older agent's topology) each NUMA node stays a unit.
        var unknown = SubNumaClustered();
        unknown.Cpus = null;
        t.Spec.Nic.Interfaces = null;
        Assert.Equal(4, DataPlanePodBuilder.Build(t, "node-a", node, unknown, Options).Count);
    }

    [Fact]
    public void TheCpuCountIsWholeCoresOnSmtHostsUnlessAskedForExactly()
    {
        var t = DataPlaneTuning();
        t.Spec.Hugepages = null;
        // 4 cores × 2 threads per socket; CPU 0 and 8 reserved leave 7: rounded down to 6 (an odd count can hit SMTAlignmentError).
        var smt = TwoSockets();
        smt.Cpus = Enumerable.Range(0, 16).Select(i => new CpuTopology { Id = i, Package = i / 8, Core = i % 4, ThreadSiblings = $"{i - i % 8 + i % 4},{i - i % 8 + i % 4 + 4}" }).ToList();
        var pods = DataPlanePodBuilder.Build(t, "node-a", Fixtures.NumaNode("node-a"), smt, Options);
        Assert.Equal(["6", "6"], pods.Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));

        t.Spec.DataPlane!.CpusPerSocket = 3;
        pods = DataPlanePodBuilder.Build(t, "node-a", Fixtures.NumaNode("node-a"), smt, Options);
        Assert.Equal(["3", "3"], pods.Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));

        // More than a socket has outside the housekeeping CPUs: single-numa-node could not admit it, so it is not made.
        t.Spec.DataPlane.CpusPerSocket = 8;
        var plan = DataPlanePodBuilder.Plan(t, "node-a", Fixtures.NumaNode("node-a"), smt, Options);
        Assert.All(plan, s => Assert.Null(s.Pod));
        Assert.Contains("has 7 CPUs outside the housekeeping CPUs", plan[0].WaitMessage);
    }

    [Fact]
    public void TheDeprecatedIrqReservedCpus_StillCountAsHousekeepingForTheDataPlane_WhenNoHousekeepingCpusAreGiven()
    {
        var smt = TwoSockets();
        smt.Cpus = Enumerable.Range(0, 16).Select(i => new CpuTopology { Id = i, Package = i / 8, Core = i % 4, ThreadSiblings = $"{i - i % 8 + i % 4},{i - i % 8 + i % 4 + 4}" }).ToList();
        var current = DataPlaneTuning();
        current.Spec.Hugepages = null;
        var old = DataPlaneTuning();
        old.Spec.Hugepages = null;
        old.Spec.Nic!.HousekeepingCpus = null;
        old.Spec.Nic.IrqAffinity!.ReservedCpus = "0,8"; // a v1alpha1 object written before housekeepingCpus was the one CPU set
        Assert.Equal(DataPlanePodBuilder.Build(current, "node-a", Fixtures.NumaNode("node-a"), smt, Options).Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()),
            DataPlanePodBuilder.Build(old, "node-a", Fixtures.NumaNode("node-a"), smt, Options).Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));
        old.Spec.Nic.IrqAffinity.ReservedCpus = null;
        Assert.Equal(["8", "8"], DataPlanePodBuilder.Build(old, "node-a", Fixtures.NumaNode("node-a"), smt, Options).Select(p => p.Spec.Containers[0].Resources.Requests["cpu"].ToString()));
    }

    [Fact]
    public void NoPodThatNeedsHugepagesUntilTheNodesAllocatableShowsThem()
    {
        // Pages the agent reserved at run time: the kubelet has not counted them (it reads them when it starts).
        var plan = DataPlanePodBuilder.Plan(DataPlaneTuning(), "node-a", Allocatable(("cpu", "15"), ("hugepages-2Mi", "0")), TwoSockets(), Options);
        Assert.Equal(2, plan.Count);
        Assert.All(plan, s => Assert.Null(s.Pod));
        Assert.All(plan, s => Assert.Equal(ConditionReasons.HugepagesNotAllocatable, s.WaitReason));
        Assert.Contains("hugepages-2Mi allocatable 0Mi, the pods need 768Mi", plan[0].WaitMessage);
        Assert.Contains("restart", plan[0].WaitMessage);
        // Part of them is not enough either.
        Assert.All(DataPlanePodBuilder.Plan(DataPlaneTuning(), "node-a", Allocatable(("hugepages-2Mi", "512Mi")), TwoSockets(), Options), s => Assert.Null(s.Pod));
        // After the kubelet's restart it shows them: the pods come.
        Assert.Equal(2, DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", WithPages, TwoSockets(), Options).Count);
    }

    [Fact]
    public void AgentsServeLiveTuningsAndDeletedOnesStillReverting()
    {
        var live = Tuning("live");
        var reverting = Tuning("reverting");
        reverting.Metadata.DeletionTimestamp = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var finalized = Tuning("finalized");
        finalized.Metadata.DeletionTimestamp = reverting.Metadata.DeletionTimestamp;
        finalized.Metadata.Finalizers = [];
        var otherFinalizer = Tuning("other");
        otherFinalizer.Metadata.DeletionTimestamp = reverting.Metadata.DeletionTimestamp;
        otherFinalizer.Metadata.Finalizers = ["example.com/keep"];
        var fresh = Tuning("fresh");
        fresh.Metadata.Finalizers = null; // created, finalizer not added yet

        var served = AgentDaemonSetBuilder.ServedTunings([live, reverting, finalized, otherFinalizer, fresh]);
        Assert.Equal(["live", "reverting", "fresh"], served.Select(t => t.Metadata.Name));
    }

    /// <summary>
    /// What the operator creates (the agent DaemonSet and ServiceAccount, data-plane pods) is an object of the current
    /// Kubernetes API (<see cref="NetTune.Testing.Cluster.CurrentKubernetesApi.Release"/>), not only of the v1.20 test cluster's.
    /// </summary>
    [Fact]
    public void WhatTheOperatorBuildsIsOfTheCurrentKubernetesApi()
    {
        var tuning = DataPlaneTuning();
        var agent = new AgentOptions("nettune-system", "nettune/agent:1")
        {
            NodeSelector = new Dictionary<string, string> { ["pool"] = "edge" },
            KubeletRestart = KubeletRestart.TryParse("command:systemctl restart kubelet", out var restart, out _) ? restart : KubeletRestart.None,
        };
        var objects = new List<(string, object)>
        {
            ("agent DaemonSet", AgentDaemonSetBuilder.Build(agent)),
            ("agent DaemonSet, defaults", AgentDaemonSetBuilder.Build(new AgentOptions("nettune-system", "nettune/agent:1"))),
            ("agent ServiceAccount", AgentDaemonSetBuilder.BuildServiceAccount(agent)),
        };
        var pods = DataPlanePodBuilder.Build(tuning, "node-a", WithPages, TwoSockets(), Options);
        Assert.NotEmpty(pods);
        objects.AddRange(pods.Select((p, i) => ($"data-plane pod {i}", (object)p)));
        // Where a builder leaves apiVersion and kind to the client, the client sends these.
        foreach (var (_, o) in objects)
            if (o is k8s.IKubernetesObject { ApiVersion: null } k)
                (k.ApiVersion, k.Kind) = k switch
                {
                    V1DaemonSet => ("apps/v1", "DaemonSet"),
                    V1ServiceAccount => ("v1", "ServiceAccount"),
                    _ => ("v1", "Pod"),
                };
        var problems = NetTune.Testing.Cluster.CurrentKubernetesApi.Check(objects).Where(p => p.Value.Count > 0).Select(p => $"{p.Key}: {string.Join("; ", p.Value)}").ToList();
        Assert.Empty(problems);
    }
}
