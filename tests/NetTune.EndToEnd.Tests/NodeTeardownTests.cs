using System.Diagnostics;
using k8s;
using k8s.Models;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using Xunit.Abstractions;

namespace NetTune.EndToEnd.Tests;

[CollectionDefinition("node-teardown")]
public sealed class NodeTeardownCollection;

/// <summary>
/// The real node itself: one per machine, and the host put back as it was even when the process that started the
/// node is killed (the guard runs the teardown).
/// </summary>
[Collection("node-teardown")]
public sealed class NodeTeardownTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AKilledOwnersNodeIsTornDownByItsGuardAndASecondNodeIsRefusedMeanwhile()
    {
        var before = HostFootprint.Read();
        var work = Tool.TempDir("nettune-node-owner");
        var kubeconfig = Path.Combine(work, "kubeconfig");
        // This test's own build configuration (bin/<configuration>/net10.0): the CLI is built beside it.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var cli = Path.Combine(Tool.RepoRoot, "localcluster", "NetTune.LocalCluster.Cli", "bin", configuration, "net10.0", "nettune-local-cluster.dll");
        Assert.True(File.Exists(cli), $"no {cli}: build the solution first");
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { cli, "up", kubeconfig, "--node", "nettune-owner-test" }) psi.ArgumentList.Add(a);
        psi.Environment["NETTUNE_REPO_ROOT"] = Tool.RepoRoot;
        using var owner = Process.Start(psi)!;
        var log = new System.Text.StringBuilder();
        owner.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        owner.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        owner.BeginOutputReadLine();
        owner.BeginErrorReadLine();
        try
        {
            await Eventually.TrueAsync(() => Task.FromResult(File.Exists(kubeconfig) || owner.HasExited), "the owner's node to be ready", TimeSpan.FromMinutes(3));
            Assert.False(owner.HasExited, log.ToString());

            // A pod runs there, so the teardown has containers, a sandbox, mounts and cgroups to remove.
            using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig));
            await client.CoreV1.CreateNamespacedPodAsync(new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = "sleeper" },
                Spec = new V1PodSpec { Containers = [new V1Container { Name = "pause", Image = LocalNode.PauseImage, ImagePullPolicy = "Never" }] },
            }, "default");
            await Eventually.TrueAsync(async () => (await client.CoreV1.ReadNamespacedPodAsync("sleeper", "default")).Status?.Phase == "Running",
                "the pod to run", TimeSpan.FromMinutes(1));
            var during = HostFootprint.Read();
            Assert.Contains(LocalNode.Bridge, during.Devices);
            Assert.Contains(during.Mounts, m => m.StartsWith(LocalNode.RunDir, StringComparison.Ordinal));

            // One node per machine: a second one is refused, saying why.
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
                KubeCluster.StartAsync(new KubeClusterOptions { Node = new NodeOptions { Name = "second" } }));
            Assert.Contains("already runs on this machine", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            owner.Kill(entireProcessTree: false);
            await owner.WaitForExitAsync();
        }
        var killedAt = Stopwatch.StartNew();
        await Eventually.TrueAsync(() => Task.FromResult(!Directory.Exists(LocalNode.RunDir)),
            "the guard's teardown", TimeSpan.FromMinutes(2));
        await Eventually.TrueAsync(() => Task.FromResult(HostFootprint.Read().DifferencesTo(before).Count == 0),
            "the host to be as before", TimeSpan.FromSeconds(30), () => Task.FromResult(string.Join('\n', HostFootprint.Read().DifferencesTo(before))));
        output.WriteLine($"the guard restored the host {killedAt.Elapsed.TotalSeconds:0.0}s after the owner was killed");
        try { Directory.Delete(work, recursive: true); } catch (IOException) { }
    }
}

/// <summary>What a node leaves on the host if it leaves anything: devices, mounts, cgroups, kernel settings, folders, processes.</summary>
public sealed record HostFootprint(IReadOnlyList<string> Devices, IReadOnlyList<string> Mounts, IReadOnlyList<string> Other)
{
    private static readonly string[] Sysctls =
    [
        "/proc/sys/vm/overcommit_memory", "/proc/sys/vm/panic_on_oom", "/proc/sys/kernel/panic", "/proc/sys/kernel/panic_on_oops",
        "/proc/sys/kernel/keys/root_maxkeys", "/proc/sys/kernel/keys/root_maxbytes", "/proc/sys/net/ipv4/ip_forward",
    ];

    private static readonly string[] Folders =
    [
        "/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/run/containerd", "/var/lib/cni", LocalNode.StateDir, LocalNode.RunDir, LocalNode.LockPath,
    ];

    public static HostFootprint Read()
    {
        var devices = Directory.EnumerateDirectories("/sys/class/net").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        // Other users' network namespaces come and go under /run/netns: they are not the node's.
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
            .Where(m => !m.StartsWith("/run/netns/", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var other = new List<string>();
        other.AddRange(Sysctls.Select(s => $"{s}={File.ReadAllText(s).Trim()}"));
        other.AddRange(Folders.Where(f => Directory.Exists(f) || File.Exists(f)).Select(f => "exists " + f));
        other.AddRange(Directory.EnumerateDirectories("/sys/fs/cgroup").Select(c => Path.Combine(c, "kubepods")).Where(Directory.Exists).Select(c => "cgroup " + c));
        foreach (var proc in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            string cmd;
            try { cmd = File.ReadAllText(Path.Combine(proc, "cmdline")).Replace('\0', ' '); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (cmd.Contains(LocalNode.StateDir, StringComparison.Ordinal) || cmd.Contains(LocalNode.RunDir + "/", StringComparison.Ordinal))
                other.Add("process " + cmd.Trim());
        }
        return new HostFootprint(devices!, mounts, other);
    }

    public IReadOnlyList<string> DifferencesTo(HostFootprint before)
    {
        static IEnumerable<string> Diff(string what, IEnumerable<string> a, IEnumerable<string> b) =>
            a.Except(b).Select(x => $"{what} added: {x}").Concat(b.Except(a).Select(x => $"{what} gone: {x}"));
        return Diff("device", Devices, before.Devices).Concat(Diff("mount", Mounts, before.Mounts)).Concat(Diff("", Other, before.Other)).ToList();
    }
}
