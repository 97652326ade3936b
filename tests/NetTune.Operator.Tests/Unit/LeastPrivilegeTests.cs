using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

/// <summary>What the operator's pods may do: the data plane's restricted context, the agent's pod-bound token, the allow-lists.</summary>
public sealed class LeastPrivilegeTests
{
    private static NetworkTuning StaticTuning(string image = "nettune/dataplane:1", string path = "/srv/www/site", int port = 8080)
    {
        var t = Tuning("web");
        t.Spec.DataPlane = new DataPlaneSpec
        {
            Enabled = true, Image = image, Port = port, AdminPort = 9180, Mode = DataPlaneMode.StaticFiles,
            StaticFiles = new StaticFilesSpec { HostPath = path },
        };
        return t;
    }

    private static readonly NodeTopology OneSocket = new() { NumaNodes = [new NumaNodeInfo { Id = 0, Cpus = "0-3" }] };

    [Fact]
    public void DataPlanePodsRunRestrictedWithoutAServiceAccountToken()
    {
        var pod = DataPlanePodBuilder.Build(StaticTuning(), "node-a", Fixtures.NumaNode("node-a"), OneSocket, new DataPlaneOptions("ns")).Single();
        Assert.False(pod.Spec.AutomountServiceAccountToken);
        Assert.True(pod.Spec.SecurityContext.RunAsNonRoot);
        Assert.Equal(DataPlanePodBuilder.RunAsUser, pod.Spec.SecurityContext.RunAsUser);
        Assert.NotEqual(0, pod.Spec.SecurityContext.RunAsGroup);
        // Localhost (NetTune's profile, installed by the agent) is allowed by restricted as RuntimeDefault is.
        Assert.Equal(("Localhost", SeccompProfiles.NetTuneLocalhostProfile), (pod.Spec.SecurityContext.SeccompProfile.Type, pod.Spec.SecurityContext.SeccompProfile.LocalhostProfile));
        var c = pod.Spec.Containers.Single().SecurityContext;
        Assert.False(c.AllowPrivilegeEscalation);
        Assert.True(c.ReadOnlyRootFilesystem);
        Assert.Equal(["ALL"], c.Capabilities.Drop);
        Assert.Null(c.Capabilities.Add);
        Assert.NotEqual(true, c.Privileged);
        // A read-only root needs somewhere to write temporary files; the static root stays read-only.
        var mounts = pod.Spec.Containers.Single().VolumeMounts;
        Assert.Contains(mounts, m => m.MountPath == "/tmp" && pod.Spec.Volumes.Single(v => v.Name == m.Name).EmptyDir is not null);
        Assert.True(mounts.Single(m => m.MountPath == DataPlanePodBuilder.StaticRoot).ReadOnlyProperty);
    }

    [Theory]
    [InlineData(IoEngine.Auto, null, null, "Localhost", SeccompProfiles.NetTuneLocalhostProfile)]
    [InlineData(IoEngine.IoUring, null, null, "Localhost", SeccompProfiles.NetTuneLocalhostProfile)]
    [InlineData(IoEngine.Epoll, null, null, "RuntimeDefault", null)]
    [InlineData(IoEngine.Auto, SeccompProfileKind.RuntimeDefault, null, "RuntimeDefault", null)]
    [InlineData(IoEngine.Epoll, SeccompProfileKind.NetTune, null, "Localhost", SeccompProfiles.NetTuneLocalhostProfile)]
    [InlineData(IoEngine.Auto, SeccompProfileKind.Localhost, "team/dp.json", "Localhost", "team/dp.json")]
    public void DataPlanePodsGetTheSeccompProfileTheTuningChose(IoEngine engine, SeccompProfileKind? kind, string? localhost, string type, string? profile)
    {
        var tuning = StaticTuning();
        tuning.Spec.DataPlane!.IoEngine = engine;
        if (kind is { } k) tuning.Spec.DataPlane.SeccompProfile = new DataPlaneSeccompSpec { Type = k, LocalhostProfile = localhost };
        var pod = DataPlanePodBuilder.Build(tuning, "node-a", Fixtures.NumaNode("node-a"), OneSocket, new DataPlaneOptions("ns")).Single();
        Assert.Equal((type, profile), (pod.Spec.SecurityContext.SeccompProfile.Type, pod.Spec.SecurityContext.SeccompProfile.LocalhostProfile));
    }

    [Fact]
    public void TheAgentMountsTheKubeletsSeccompFolderUnderItsHostRootAndIsToldTheRootDir()
    {
        foreach (var (options, folder) in new[]
        {
            (new AgentOptions("ns", "nettune/agent:1"), "/var/lib/kubelet/seccomp"),
            (new AgentOptions("ns", "nettune/agent:1") { KubeletRootDir = "/data/kubelet/" }, "/data/kubelet/seccomp"),
        })
        {
            var pod = AgentDaemonSetBuilder.Build(options).Spec.Template.Spec;
            var volume = pod.Volumes.Single(v => v.HostPath?.Path == folder);
            Assert.Equal("DirectoryOrCreate", volume.HostPath.Type);
            var container = pod.Containers.Single();
            Assert.Equal(AgentDaemonSetBuilder.HostRoot + folder, container.VolumeMounts.Single(m => m.Name == volume.Name).MountPath);
            var args = container.Args.ToList();
            Assert.Equal(options.KubeletRootDir, args[args.IndexOf("--kubelet-root-dir") + 1]);
            Assert.Equal(AgentDaemonSetBuilder.HostRoot, args[args.IndexOf("--host-root") + 1]);
        }
    }

    [Fact]
    public void TheAgentMountsTheKubeletsDevicePluginFolderReadWriteWhateverTheKubeletsRootDir()
    {
        foreach (var options in new[] { new AgentOptions("ns", "nettune/agent:1"), new AgentOptions("ns", "nettune/agent:1") { KubeletRootDir = "/data/kubelet" } })
        {
            var pod = AgentDaemonSetBuilder.Build(options).Spec.Template.Spec;
            var volume = pod.Volumes.Single(v => v.HostPath?.Path == "/var/lib/kubelet/device-plugins");
            var mount = pod.Containers.Single().VolumeMounts.Single(m => m.Name == volume.Name);
            Assert.Equal(AgentDaemonSetBuilder.HostRoot + "/var/lib/kubelet/device-plugins", mount.MountPath);
            Assert.NotEqual(true, mount.ReadOnlyProperty);
        }
    }

    [Fact]
    public void TheAgentGetsAPodBoundTokenWhereTheServiceAccountsWouldBe()
    {
        var ds = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "nettune/agent:1"))!;
        var pod = ds.Spec.Template.Spec;
        Assert.False(pod.AutomountServiceAccountToken);
        var mount = pod.Containers.Single().VolumeMounts.Single(m => m.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount");
        Assert.True(mount.ReadOnlyProperty);
        var sources = pod.Volumes.Single(v => v.Name == mount.Name).Projected.Sources;
        Assert.Equal("token", sources.Single(s => s.ServiceAccountToken is not null).ServiceAccountToken.Path);
        Assert.Equal("ca.crt", sources.Single(s => s.ConfigMap is not null).ConfigMap.Items.Single().Path);
        Assert.Equal("metadata.namespace", sources.Single(s => s.DownwardAPI is not null).DownwardAPI.Items.Single().FieldRef.FieldPath);
    }

    [Theory]
    [InlineData("nettune/dataplane:1", "/srv/www/site", 8080, null)]
    [InlineData("registry.example.com/nettune/dataplane@sha256:ab", "/srv/www", 8080, null)]
    [InlineData("evil/miner:1", "/srv/www", 8080, "image 'evil/miner:1' is not in the data-plane image allow-list")]
    [InlineData("nettune/dataplane-evil:1", "/srv/www", 8080, "is not in the data-plane image allow-list")]
    [InlineData("nettune/dataplane:1", "/etc", 8080, "hostPath '/etc' is not below an allowed folder (/srv/www/)")]
    [InlineData("nettune/dataplane:1", "/srv/wwwx", 8080, "is not below an allowed folder")]
    [InlineData("nettune/dataplane:1", "/srv/www/../../etc", 8080, "is not below an allowed folder")]
    [InlineData("nettune/dataplane:1", "/srv/www", 443, "ports below 1024")]
    public void TheAllowListsJudgeImagesHostPathsAndPorts(string image, string path, int port, string? refusal)
    {
        var policy = new DataPlanePolicy(["nettune/dataplane:*", "registry.example.com/nettune/dataplane@*"], ["/srv/www/"], [], []);
        var tuning = StaticTuning(image, path, port);
        var verdict = policy.Refusal(tuning.Spec.DataPlane);
        if (refusal is null) Assert.Null(verdict);
        else Assert.Contains(refusal, verdict);
        // The builder makes no pods for what the lists refuse (a tuning admitted before the lists changed).
        var pods = DataPlanePodBuilder.Build(tuning, "node-a", Fixtures.NumaNode("node-a"), OneSocket, new DataPlaneOptions("ns") { Policy = policy });
        Assert.Equal(refusal is null ? 1 : 0, pods.Count);
    }

    [Fact]
    public void AnyMustBeSaidAndAllowsAnyImageAndPathButNotPrivilegedPorts()
    {
        Assert.Null(DataPlanePolicy.Any.Refusal(StaticTuning("anything:1", "/anywhere").Spec.DataPlane));
        Assert.Contains("ports below 1024", DataPlanePolicy.Any.Refusal(StaticTuning(port: 80).Spec.DataPlane));
        Assert.Null(DataPlanePolicy.Any.Refusal(new DataPlaneSpec { Enabled = false, Port = 80 }));
    }

    [Fact]
    public void EmptyListsAllowNothing()
    {
        var none = new DataPlanePolicy([], [], [], []);
        var refusal = none.Refusal(StaticTuning().Spec.DataPlane);
        Assert.Contains("image 'nettune/dataplane:1' is not in the data-plane image allow-list (empty: nothing is allowed)", refusal);
        Assert.Contains("hostPath '/srv/www/site' is not below an allowed folder (empty: nothing is allowed)", refusal);
    }

    [Fact]
    public void APriorityClassMustBeAllowListed()
    {
        var tuning = StaticTuning();
        var policy = new DataPlanePolicy(["*"], ["/"], ["nettune-*"], []);
        Assert.Null(policy.Refusal(tuning.Spec.DataPlane)); // none asked for
        tuning.Spec.DataPlane!.PriorityClassName = "system-node-critical";
        Assert.Contains("priorityClassName 'system-node-critical' is not in the allow-list (nettune-*)", policy.Refusal(tuning.Spec.DataPlane));
        tuning.Spec.DataPlane.PriorityClassName = "nettune-high";
        Assert.Null(policy.Refusal(tuning.Spec.DataPlane));
        Assert.Contains("empty: nothing is allowed", (policy with { PriorityClasses = [] }).Refusal(tuning.Spec.DataPlane));
    }

    [Theory]
    [InlineData("10.0.0.5:8080", null)]
    [InlineData("backend.example.svc:80", null)]
    [InlineData("127.0.0.1:8080", "loopback")]
    [InlineData("127.1.2.3:22", "loopback")]
    [InlineData("[::1]:8080", "loopback")]
    [InlineData("localhost:10250", "localhost is the node itself")]
    [InlineData("169.254.169.254:80", "link-local (the cloud metadata service")]
    [InlineData("[fe80::1]:80", "link-local")]
    [InlineData("[::ffff:169.254.169.254]:80", "link-local")]
    [InlineData("0.0.0.0:10250", "unspecified")]
    [InlineData("nonsense", "not host:port")]
    public void ProxyUpstreamsMayNotBeTheNodeItselfOrLinkLocalUnlessAllowed(string upstream, string? refusal)
    {
        var tuning = StaticTuning();
        tuning.Spec.DataPlane!.Mode = DataPlaneMode.Proxy;
        tuning.Spec.DataPlane.Proxy = new ProxySpec { Upstreams = [upstream] };
        var policy = new DataPlanePolicy(["*"], ["/"], [], []);
        var verdict = policy.Refusal(tuning.Spec.DataPlane);
        if (refusal is null) Assert.Null(verdict);
        else Assert.Contains(refusal, verdict);
        // An allow-list entry covering the address lets it through; "*" lets everything through.
        if (refusal is not (null or "not host:port"))
            Assert.Null((policy with { UpstreamNetworks = ["*"] }).Refusal(tuning.Spec.DataPlane));
        if (upstream.StartsWith("127.", StringComparison.Ordinal))
        {
            Assert.Null((policy with { UpstreamNetworks = ["127.0.0.0/8"] }).Refusal(tuning.Spec.DataPlane));
            Assert.NotNull((policy with { UpstreamNetworks = ["10.0.0.0/8"] }).Refusal(tuning.Spec.DataPlane));
        }
    }
}
