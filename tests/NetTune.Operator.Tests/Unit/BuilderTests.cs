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
            IrqAffinity = new IrqAffinitySpec { ReservedCpus = "0,8" },
        };
        t.Spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 256, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 128 }] }];
        t.Spec.DataPlane = new DataPlaneSpec
        {
            Enabled = true, Image = "nettune/dataplane:1", Port = 8080, AdminPort = 9180,
            StaticFiles = new StaticFilesSpec { HostPath = "/srv/site" }, IoEngine = IoEngine.IoUring,
        };
        return t;
    }

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
    public void OnePodPerSocketWithItsCpusLessReserved()
    {
        var pods = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", TwoSockets(), Options);
        Assert.Equal(["web-dp-node-a-numa0", "web-dp-node-a-numa1"], pods.Select(p => p.Metadata.Name));

        var pod = pods[1];
        Assert.Equal("node-a", pod.Spec.NodeName);
        Assert.True(pod.Spec.HostNetwork);
        Assert.Equal("nettune-system", pod.Metadata.NamespaceProperty);
        var c = Assert.Single(pod.Spec.Containers);
        var args = c.Args.ToList();
        Assert.Equal("9-15", args[args.IndexOf("--cpus") + 1]);
        Assert.Equal("1", args[args.IndexOf("--numa-node") + 1]);
        Assert.Equal("iouring", args[args.IndexOf("--io-engine") + 1]);
        Assert.Equal("9181", args[args.IndexOf("--admin-port") + 1]);
        Assert.Contains("--hugepages", args);
        Assert.Equal("9-15", c.Env.Single(e => e.Name == "NETTUNE_CPUS").Value);
        Assert.Equal("1", c.Env.Single(e => e.Name == "NETTUNE_NUMA_NODE").Value);

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
        var pod = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", TwoSockets(), Options)[1];
        var o = NetTune.DataPlane.ServerOptions.Parse(pod.Spec.Containers[0].Args.ToList());
        Assert.False(o.IsProxy);
        Assert.Equal(DataPlanePodBuilder.StaticRoot, o.Root);
        Assert.Equal([9, 10, 11, 12, 13, 14, 15], o.Cpus);
        Assert.Equal((8080, 9181, 1), (o.Port, o.AdminPort, o.NumaNode));
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
        var pod = DataPlanePodBuilder.Build(t, "node-a", TwoSockets(), Options)[0];
        var o = NetTune.DataPlane.ServerOptions.Parse(pod.Spec.Containers[0].Args.ToList());
        Assert.True(o.IsProxy);
        Assert.Equal(["10.0.0.5:8080", "app.default.svc:80"], o.Upstreams);
        Assert.Equal(2, o.Workers);
        Assert.Equal("", o.Root);
        Assert.DoesNotContain(pod.Spec.Volumes ?? [], v => v.Name == "static-root");
    }

    [Fact]
    public void EachSocketDeclaresItsOwnAdminPortAsMetricsAndNoDataPort()
    {
        var pods = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", TwoSockets(), Options);
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
        var before = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", TwoSockets(), Options)[0];
        var again = DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", TwoSockets(), Options)[0];
        var changed = DataPlaneTuning();
        changed.Spec.DataPlane!.Image = "nettune/dataplane:2";
        var after = DataPlanePodBuilder.Build(changed, "node-a", TwoSockets(), Options)[0];
        Assert.Equal(before.Metadata.Annotations[Names.SpecHashAnnotation], again.Metadata.Annotations[Names.SpecHashAnnotation]);
        Assert.NotEqual(before.Metadata.Annotations[Names.SpecHashAnnotation], after.Metadata.Annotations[Names.SpecHashAnnotation]);
    }

    [Fact]
    public void NoPodsWithoutTopologyOrWhenDisabled()
    {
        Assert.Empty(DataPlanePodBuilder.Build(DataPlaneTuning(), "node-a", null, Options));
        var off = DataPlaneTuning();
        off.Spec.DataPlane!.Enabled = false;
        Assert.Empty(DataPlanePodBuilder.Build(off, "node-a", TwoSockets(), Options));
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
    public void TheAgentDaemonSetRunsOnTheUnionOfTheSelectors()
    {
        var a = Tuning("a", selector: Labels(("zone", "a")));
        var b = Tuning("b", selector: Labels(("role", "edge")));
        var ds = AgentDaemonSetBuilder.Build(new AgentOptions("nettune-system", "nettune/agent:1"), [b, a]);

        var terms = ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms;
        Assert.Equal(["zone", "role"], terms.Select(t => t.MatchExpressions.Single().Key));
        Assert.Equal(["a", "b"], ds.Metadata.OwnerReferences.Select(o => o.Name));

        var pod = ds.Spec.Template.Spec;
        Assert.True(pod.HostNetwork);
        Assert.Equal(Names.AgentServiceAccount, pod.ServiceAccountName);
        var c = pod.Containers.Single();
        Assert.True(c.SecurityContext.Privileged);
        Assert.Equal("spec.nodeName", c.Env.Single(e => e.Name == "NODE_NAME").ValueFrom.FieldRef.FieldPath);
        Assert.Equal(["/host/sys", "/host/proc", "/var/lib/nettune", PodBoundToken.MountPath], c.VolumeMounts.Select(m => m.MountPath));
        Assert.Equal(["/sys", "/proc", "/var/lib/nettune"], pod.Volumes.Where(v => v.HostPath is not null).Select(v => v.HostPath.Path));
        Assert.NotNull(c.Resources.Requests["cpu"]);
        Assert.NotNull(c.Resources.Limits["memory"]);
        Assert.Contains(pod.Tolerations, t => t.OperatorProperty == "Exists");

        // One tuning that selects every node: no affinity at all (an empty term would select none).
        var all = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "img"), [a, Tuning("c")]);
        Assert.Null(all.Spec.Template.Spec.Affinity);
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
}
