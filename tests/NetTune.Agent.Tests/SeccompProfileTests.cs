using System.Runtime.InteropServices;
using System.Text.Json;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Seccomp;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

public sealed class SeccompProfileTests
{
    /// <summary>containerd 2.0's unconditional allow-list, recorded from its source (tests/fixtures/seccomp).</summary>
    private static readonly string[] Containerd2Default = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Seccomp", "containerd-2.0-default-allowed.txt"))
        .Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();

    // The runtime-spec's LinuxSeccomp vocabulary (config-linux.md#seccomp).
    private static readonly string[] Actions = ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"];
    private static readonly string[] Operators = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];
    private static readonly string[] Fields = ["defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls"];

    [Theory]
    [InlineData(Architecture.X64, "SCMP_ARCH_X86_64", "arch_prctl")]
    [InlineData(Architecture.Arm64, "SCMP_ARCH_AARCH64", "set_tls")]
    public void TheProfileIsAnOciSeccompProfileThatAllowsContainerd2sDefaultPlusIoUring(Architecture arch, string nativeArch, string archSyscall)
    {
        using var doc = JsonDocument.Parse(DataPlaneSeccompProfile.Json(arch));
        var root = doc.RootElement;
        Assert.All(root.EnumerateObject(), p => Assert.Contains(p.Name, Fields));
        Assert.Equal("SCMP_ACT_ERRNO", root.GetProperty("defaultAction").GetString());
        Assert.Contains(nativeArch, root.GetProperty("architectures").EnumerateArray().Select(a => a.GetString()));
        var unconditional = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rule in root.GetProperty("syscalls").EnumerateArray())
        {
            var names = rule.GetProperty("names").EnumerateArray().Select(n => n.GetString()!).ToList();
            Assert.NotEmpty(names);
            Assert.All(names, n => Assert.Matches("^[a-z_][a-z0-9_]*$", n));
            var action = rule.GetProperty("action").GetString();
            Assert.Contains(action, Actions);
            var args = rule.TryGetProperty("args", out var a) ? a.EnumerateArray().ToList() : [];
            foreach (var arg in args)
            {
                Assert.InRange(arg.GetProperty("index").GetUInt32(), 0u, 5u);
                arg.GetProperty("value").GetUInt64();
                Assert.Contains(arg.GetProperty("op").GetString(), Operators);
            }
            if (action == "SCMP_ACT_ALLOW" && args.Count == 0) unconditional.UnionWith(names);
        }
        Assert.Empty(Containerd2Default.Except(unconditional));
        Assert.Superset(new HashSet<string>(["io_uring_setup", "io_uring_enter", "io_uring_register", archSyscall]), unconditional);
        Assert.DoesNotContain("io_uring_setup", Containerd2Default);
        // Nothing beyond the default, io_uring, the workers' memory policy and what the default adds by kernel and architecture.
        Assert.Empty(unconditional.Except(Containerd2Default).Except(DataPlaneSeccompProfile.IoUringSyscalls)
            .Except(DataPlaneSeccompProfile.MemoryPolicySyscalls).Except(DataPlaneSeccompProfile.ForArchitecture(arch).Syscalls).Except(["ptrace"]));
        // Namespaces stay out of reach: clone only without CLONE_NEW* flags, clone3 answers ENOSYS so libc uses clone.
        Assert.DoesNotContain("clone", unconditional);
        Assert.DoesNotContain("unshare", unconditional);
        var clone3 = root.GetProperty("syscalls").EnumerateArray().Single(r => r.GetProperty("names")[0].GetString() == "clone3");
        Assert.Equal(("SCMP_ACT_ERRNO", 38), (clone3.GetProperty("action").GetString(), clone3.GetProperty("errnoRet").GetInt32()));
    }

    [Fact]
    public void TheProfileGoesUnderTheKubeletsSeccompFolderWhereThePodsLocalhostProfilePoints()
    {
        Assert.Equal("var/lib/kubelet/seccomp/" + SeccompProfiles.NetTuneLocalhostProfile, DataPlaneSeccompProfile.HostPath("/var/lib/kubelet"));
        Assert.Equal("data/k/seccomp/" + SeccompProfiles.NetTuneLocalhostProfile, DataPlaneSeccompProfile.HostPath("/data/k/"));
    }

    [Fact]
    public void ApplyInstallsTheProfileJournaledAsAbsent_DriftIsSeen_AndRevertRemovesItAndItsFolder()
    {
        using var host = FixtureHost.ThisVm();
        var before = host.TreeImage();
        var path = DataPlaneSeccompProfile.HostPath("/var/lib/kubelet");
        var file = Path.Join(host.Root, path);
        var engine = Engine(host, path);

        var report = engine.Apply(Somaxconn);
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        var knob = Assert.Single(report.Knobs, k => k.Knob == TuningEngine.SeccompKnob);
        Assert.Equal(KnobOutcome.Applied, knob.Result);
        Assert.Equal(DataPlaneSeccompProfile.Json(), File.ReadAllText(file));
        Assert.Equal(SeccompProfileFile.Fingerprint(DataPlaneSeccompProfile.Json()), knob.Value);
        var entry = new JournalStore(host.JournalDir).Load().Find(TuningEngine.SeccompKnob);
        Assert.Equal((KnobKind.SeccompProfile, SeccompProfileFile.Absent, path), (entry!.Kind, entry.Original, entry.Path));
        Assert.Empty(engine.PlanNow(Somaxconn).Plan.Changes);

        // Removed by someone: the drift check sees it, the next apply puts it back.
        File.Delete(file);
        var drift = Assert.Single(engine.PlanNow(Somaxconn).Plan.Changes);
        Assert.Equal((TuningEngine.SeccompKnob, SeccompProfileFile.Absent), (drift.Knob, drift.Current));
        engine.Apply(Somaxconn);
        Assert.True(File.Exists(file));

        var revert = engine.Revert();
        Assert.Contains(revert.Knobs, k => k.Knob == TuningEngine.SeccompKnob && k.Result == KnobOutcome.Reverted);
        Assert.False(File.Exists(file));
        Assert.False(Directory.Exists(Path.GetDirectoryName(file)));
        // Nothing that was there before went; the sysctl is back too.
        Assert.Empty(before.Keys.Except(host.TreeImage().Keys));
        Assert.Equal(before["proc/sys/net/core/somaxconn"], host.TreeImage()["proc/sys/net/core/somaxconn"]);
    }

    [Fact]
    public void AProfileFoundThereIsAnEarlierAgentsAndTheRevertRemovesItToo()
    {
        using var host = FixtureHost.ThisVm();
        var path = DataPlaneSeccompProfile.HostPath("/var/lib/kubelet");
        var file = Path.Join(host.Root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, DataPlaneSeccompProfile.Json());
        var engine = Engine(host, path);

        engine.Apply(Somaxconn);
        Assert.Equal(SeccompProfileFile.Absent, new JournalStore(host.JournalDir).Load().Find(TuningEngine.SeccompKnob)!.Original);
        engine.Revert();
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void WithoutAKubeletFolderNoProfileIsPlanned()
    {
        using var host = FixtureHost.ThisVm();
        Assert.DoesNotContain(host.Engine().PlanNow(Specs.Full()).Plan.Desired, d => d.Kind == KnobKind.SeccompProfile);
    }

    private static NodeStateSpec Somaxconn => new() { NodeName = "n", Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "3333" } };

    private static TuningEngine Engine(FixtureHost host, string profilePath) =>
        new(host.Fs, new Core.Host.SimulatedChannelControl(host.Fs), new JournalStore(host.JournalDir)) { SeccompProfilePath = profilePath };
}
