using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Chart.Tests.Support;
using NetTune.Operator.Core.Builders;

namespace NetTune.Chart.Tests;

/// <summary>
/// Every pod spec the chart renders and the operator builds, judged by the Pod Security Standards' controls at the
/// level its namespace enforces: the release namespace (operator, uninstall hook) at restricted, which an admin may
/// enforce there; the node namespace (agents, data-plane pods) at the level the chart labels it with. And what makes
/// the node components need that namespace: exactly the host access each one is for, nothing more.
/// </summary>
public sealed class PodSecurityTests
{
    public static TheoryData<string> Helms => new(TheChart.HelmMajors);

    /// <summary>The pods of a default install: where each goes, and its metadata and spec.</summary>
    private static async Task<List<(string What, string Namespace, V1ObjectMeta? Meta, V1PodSpec Spec)>> PodsAsync(string major, params string[] values)
    {
        var objects = await TheChart.RenderAsync(major, values);
        var deployment = objects.Single<V1Deployment>();
        var jobs = objects.All<V1Job>().ToList();
        var nodes = objects.Single<V1Namespace>().Metadata.Name;
        var agent = AgentDaemonSetBuilder.Build(new AgentOptions(nodes, "nettune/agent:" + TheChart.AppVersion));
        var agentWithRestart = AgentDaemonSetBuilder.Build(new AgentOptions(nodes, "nettune/agent:" + TheChart.AppVersion)
        {
            KubeletRestart = new KubeletRestart(null, "nsenter --target 1 --mount -- systemctl restart kubelet"),
        });
        return
        [
            ("operator Deployment", deployment.Metadata.NamespaceProperty, deployment.Spec.Template.Metadata, deployment.Spec.Template.Spec),
            .. jobs.Select(job => ($"{job.Metadata.Name} Job", job.Metadata.NamespaceProperty, job.Spec.Template.Metadata, job.Spec.Template.Spec)),
            ("agent DaemonSet", agent.Metadata.NamespaceProperty, agent.Spec.Template.Metadata, agent.Spec.Template.Spec),
            ("agent DaemonSet (kubelet restart command)", agentWithRestart.Metadata.NamespaceProperty, agentWithRestart.Spec.Template.Metadata, agentWithRestart.Spec.Template.Spec),
            .. DataPlanePods(nodes).Select(p => ($"data-plane pod ({p.Name})", p.Pod.Metadata.NamespaceProperty, p.Pod.Metadata, p.Pod.Spec)),
        ];
    }

    /// <summary>Data-plane pods of every shape the builder makes: static files (a hostPath), proxy, each seccomp choice, hugepages.</summary>
    private static IEnumerable<(string Name, V1Pod Pod)> DataPlanePods(string ns)
    {
        var shapes = new (string Name, DataPlaneSpec Spec, List<HugepagesSpec>? Pages)[]
        {
            ("static files", new DataPlaneSpec { Enabled = true, Image = "nettune/dataplane:1", Mode = DataPlaneMode.StaticFiles, StaticFiles = new StaticFilesSpec { HostPath = "/srv/www" } }, null),
            ("proxy, RuntimeDefault", new DataPlaneSpec
            {
                Enabled = true, Image = "nettune/dataplane:1", Mode = DataPlaneMode.Proxy, Proxy = new ProxySpec { Upstreams = ["10.0.0.1:80"] },
                SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.RuntimeDefault },
            }, null),
            ("proxy, Localhost profile, hugepages", new DataPlaneSpec
            {
                Enabled = true, Image = "nettune/dataplane:1", Mode = DataPlaneMode.Proxy, Proxy = new ProxySpec { Upstreams = ["10.0.0.1:80"] },
                SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost, LocalhostProfile = "profiles/dp.json" },
            }, [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 8 }]),
        };
        var node = new V1Node
        {
            Metadata = new V1ObjectMeta { Name = "n1" },
            Status = new V1NodeStatus { Allocatable = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("4"), ["hugepages-2Mi"] = new("16Mi"),
                [NumaResources.ResourceName(0)] = new("4"), [NumaResources.ResourceName(1)] = new("4") } },
        };
        var topology = new NodeTopology { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-3" }] };
        foreach (var (name, spec, pages) in shapes)
        {
            var tuning = new NetworkTuning
            {
                Metadata = new V1ObjectMeta { Name = "t", Uid = "u" },
                Spec = new NetworkTuningSpec { DataPlane = spec, Hugepages = pages },
            };
            yield return (name, Assert.Single(DataPlanePodBuilder.Build(tuning, "n1", node, topology, new DataPlaneOptions(ns))));
        }
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task EveryPodPassesTheLevelItsNamespaceEnforces(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var levels = objects.All<V1Namespace>().ToDictionary(n => n.Metadata.Name, PodSecurityStandards.Enforced);
        // The release namespace is the admin's (helm install --create-namespace makes it unlabelled): what runs there
        // passes restricted, so it can enforce that.
        levels[TheChart.Namespace] = PodSecurityLevel.Restricted;
        Assert.Equal(PodSecurityLevel.Privileged, levels[TheChart.NodeNamespace]);
        var pods = await PodsAsync(major);
        Assert.Equal(["nettune-system", "nettune-system-node"], pods.Select(p => p.Namespace).Distinct().Order(StringComparer.Ordinal));
        foreach (var (what, ns, meta, spec) in pods)
            Assert.True(PodSecurityStandards.Violations(meta, spec, levels[ns]) is [], $"{what} in {ns} ({levels[ns]}): {string.Join("; ", PodSecurityStandards.Violations(meta, spec, levels[ns]))}");
    }

    /// <summary>
    /// Why the node components cannot run under baseline: each breaks only the controls for the host access it exists
    /// for, and passes every restricted control the rest of its work allows. A new privilege shows here first.
    /// </summary>
    [Theory, MemberData(nameof(Helms))]
    public async Task TheNodeComponentsBreakOnlyTheControlsOfTheHostAccessTheyNeed(string major)
    {
        var pods = await PodsAsync(major);
        string[] Broken(string what) => PodSecurityStandards.Violations(pods.Single(p => p.What == what).Meta, pods.Single(p => p.What == what).Spec, PodSecurityLevel.Restricted)
            .Select(v => v[..v.IndexOf(':', StringComparison.Ordinal)]).Distinct().Order(StringComparer.Ordinal).ToArray();

        // The agent: privileged with the host's network, /sys, /proc, journal and kubelet folders; root.
        Assert.Equal(["Baseline Host Namespaces", "Baseline Host Ports", "Baseline HostPath Volumes", "Baseline Privileged Containers",
                      "Restricted Capabilities", "Restricted Privilege Escalation", "Restricted Running as Non-root", "Restricted Seccomp", "Restricted Volume Types"],
            Broken("agent DaemonSet"));
        Assert.Contains("Baseline Host Namespaces: hostPID", PodSecurityStandards.Violations(null, pods.Single(p => p.What.Contains("restart command", StringComparison.Ordinal)).Spec, PodSecurityLevel.Baseline));
        // The data plane: host network (so its admin port is a host port) and, serving files, the host folder; nothing else.
        Assert.Equal(["Baseline Host Namespaces", "Baseline Host Ports", "Baseline HostPath Volumes", "Restricted Volume Types"], Broken("data-plane pod (static files)"));
        Assert.Equal(["Baseline Host Namespaces", "Baseline Host Ports"], Broken("data-plane pod (proxy, RuntimeDefault)"));
        Assert.Equal(["Baseline Host Namespaces", "Baseline Host Ports"], Broken("data-plane pod (proxy, Localhost profile, hugepages)"));
    }

    /// <summary>The table's controls catch what the standard names, each on a pod that breaks only it.</summary>
    [Fact]
    public void EachControlFindsItsViolation()
    {
        static V1PodSpec Restricted(Action<V1PodSpec, V1SecurityContext> change)
        {
            var container = new V1SecurityContext { AllowPrivilegeEscalation = false, Capabilities = new V1Capabilities { Drop = ["ALL"] } };
            var pod = new V1PodSpec
            {
                SecurityContext = new V1PodSecurityContext { RunAsNonRoot = true, SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" } },
                Containers = [new V1Container { Name = "c", Image = "i", SecurityContext = container }],
                Volumes = [new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource() }],
            };
            change(pod, container);
            return pod;
        }
        Assert.Empty(PodSecurityStandards.Violations(null, Restricted((_, _) => { }), PodSecurityLevel.Restricted));
        var cases = new (string Control, V1PodSpec Pod)[]
        {
            ("Baseline Host Namespaces", Restricted((p, _) => p.HostIPC = true)),
            ("Baseline Privileged Containers", Restricted((_, c) => c.Privileged = true)),
            ("Baseline Capabilities", Restricted((_, c) => c.Capabilities.Add = ["SYS_ADMIN"])),
            ("Baseline HostPath Volumes", Restricted((p, _) => p.Volumes.Add(new V1Volume { Name = "h", HostPath = new V1HostPathVolumeSource { Path = "/" } }))),
            ("Baseline Host Ports", Restricted((p, _) => p.Containers[0].Ports = [new V1ContainerPort { ContainerPort = 80, HostPort = 80 }])),
            ("Baseline SELinux", Restricted((p, _) => p.SecurityContext.SeLinuxOptions = new V1SELinuxOptions { Type = "spc_t" })),
            ("Baseline /proc Mount Type", Restricted((_, c) => c.ProcMount = "Unmasked")),
            ("Baseline Seccomp", Restricted((_, c) => c.SeccompProfile = new V1SeccompProfile { Type = "Unconfined" })),
            ("Baseline Sysctls", Restricted((p, _) => p.SecurityContext.Sysctls = [new V1Sysctl { Name = "net.core.somaxconn", Value = "1" }])),
            ("Restricted Privilege Escalation", Restricted((_, c) => c.AllowPrivilegeEscalation = null)),
            ("Restricted Running as Non-root", Restricted((p, _) => p.SecurityContext.RunAsNonRoot = null)),
            ("Restricted Running as Non-root user", Restricted((_, c) => c.RunAsUser = 0)),
            ("Restricted Seccomp", Restricted((p, _) => p.SecurityContext.SeccompProfile = null)),
            ("Restricted Capabilities", Restricted((_, c) => c.Capabilities.Add = ["CHOWN"])),
        };
        foreach (var (control, pod) in cases)
        {
            var found = PodSecurityStandards.Violations(null, pod, PodSecurityLevel.Restricted).Select(v => v[..v.IndexOf(':', StringComparison.Ordinal)]).Distinct().ToList();
            Assert.True(found.Contains(control), $"{control}: found {string.Join(", ", found)}");
            if (control.StartsWith("Restricted", StringComparison.Ordinal))
                Assert.Empty(PodSecurityStandards.Violations(null, pod, PodSecurityLevel.Baseline));
        }
    }
}
