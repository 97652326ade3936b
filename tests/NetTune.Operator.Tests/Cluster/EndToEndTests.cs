using System.Diagnostics;
using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Fixtures.Hosts;
using NetTune.Operator.Core.Builders;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>The operator with the real node agents (child processes on two-socket fixture host roots) and the sample.</summary>
[Collection("cluster")]
public sealed class EndToEndTests(ClusterFixture fx, ITestOutputHelper output)
{
    private sealed class Agent(Process process, string root) : IDisposable
    {
        public string Root => root;
        public List<string> Logs { get; } = [];

        public void Dispose()
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
            process.Dispose();
        }
    }

    private static Agent StartAgent(string kubeconfig, string node, string dir)
    {
        var root = Path.Combine(dir, "root");
        FixtureHosts.WriteTwoSocket(root);
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "NetTune.Agent.dll"), "--node-name", node, "--host-root", root,
                     "--channel-backend", "Fixture", "--journal-dir", Path.Combine(dir, "journal"), "--kubeconfig", kubeconfig,
                     "--metrics-port", "0", "--drift-interval", "5s",
                     // These nodes have no kubelet: a stand-in publishes the hugepages as a restarted kubelet would.
                     "--kubelet-restart-command", FixtureHosts.WriteKubeletRestartScript(root, kubeconfig, node),
                 })
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var agent = new Agent(process, root);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (agent.Logs) agent.Logs.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (agent.Logs) agent.Logs.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    [Fact]
    public async Task TheSampleConvergesWithRealAgentsAndRevertsOnDelete()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2, ("nettune.io/role", "web"), ("kubernetes.io/os", "linux"));
        // The kubelets counted the sample's hugepages (512 × 2 MiB per socket), and have 32 CPUs less the sample's 2
        // housekeeping CPUs (their reservedSystemCPUs).
        foreach (var node in nodes) await bed.SetAllocatableAsync(node, ("cpu", "30"), ("hugepages-2Mi", "2Gi"));
        var dir = Directory.CreateTempSubdirectory("nettune-e2e-");
        var agents = nodes.ToDictionary(n => n, n => StartAgent(fx.Cluster.KubeconfigPath, n, Path.Combine(dir.FullName, n)));
        try
        {
            await bed.StartOperatorAsync();
            var sample = KubernetesYaml.Deserialize<NetworkTuning>(await File.ReadAllTextAsync(Path.Combine(KubeCluster.RepoRoot, "samples", "networktuning-basic.yaml")));
            sample.Spec.NodeSelector!.MatchLabels[bed.TestLabel.Key] = bed.TestLabel.Value; // only this test's nodes
            var name = (await bed.CreateTuningAsync("sample", sample.Spec)).Metadata.Name;

            NetworkTuning ready;
            try
            {
                // Every node applied, but no kubelet runs the data-plane pods: not Ready until they serve.
                ready = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Progressing")?.Reason == "RolloutComplete"
                    && TestBed.Condition(t, "Ready")?.Reason == ConditionReasons.PodsNotReady, "rolled out with real agents, data plane not serving", TimeSpan.FromSeconds(90));
            }
            finally
            {
                foreach (var (node, agent) in agents)
                    lock (agent.Logs) foreach (var line in agent.Logs.TakeLast(30)) output.WriteLine($"agent {node}: {line}");
            }
            Assert.Equal(2, ready.Status!.AppliedNodes);

            foreach (var (node, agent) in agents)
            {
                Assert.Equal("65535", File.ReadAllText(Path.Combine(agent.Root, "proc/sys/net/core/somaxconn")).Trim());
                var state = (await bed.GetNodeStateAsync(node))!;
                Assert.Equal(state.Metadata.Generation, state.Status!.LastAppliedGeneration);
                Assert.Equal(2, state.Status.Topology!.NumaNodes!.Count);
            }

            // The data plane: one pod per socket, with the CPUs the agents discovered (less housekeeping CPUs 0-1).
            var pods = await TestBed.EventuallyAsync(async () => (await bed.Client.CoreV1.ListNamespacedPodAsync(bed.Namespace, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}")).Items,
                p => p.Count == 4, "4 data-plane pods");
            var socket0 = pods.First(p => p.Metadata.Name.EndsWith("-numa0", StringComparison.Ordinal)).Spec.Containers[0];
            var socket1 = pods.First(p => p.Metadata.Name.EndsWith("-numa1", StringComparison.Ordinal)).Spec.Containers[0];
            // 2-7,16-23 (14 CPUs) on socket 0; whole cores on the fixture's SMT host: 14.
            Assert.Equal("14", socket0.Resources.Requests["cpu"].ToString());
            Assert.Equal("14", socket1.Resources.Requests["cpu"].ToString()); // 30 allocatable less the agent's share, halved: 14
            Assert.Equal("1Gi", socket1.Resources.Requests["hugepages-2Mi"].ToString()); // 512 pages of 2 MiB
            Assert.Equal("False", TestBed.Condition(ready, ConditionTypes.DataPlaneAvailable)!.Status);
            Assert.Equal((4, 0), (ready.Status.DataPlane!.DesiredPods, ready.Status.DataPlane.ReadyPods));

            // The kubelets run them: Ready.
            foreach (var pod in pods) await bed.SetPodStatusAsync(pod.Metadata.Name, ip: "192.0.2.1");
            var serving = await bed.WaitForTuningAsync(name, t => TestBed.Condition(t, "Ready")?.Status == "True", "Ready once the pods serve");
            Assert.Equal((4, 4), (serving.Status!.DataPlane!.DesiredPods, serving.Status.DataPlane.ReadyPods));
            Assert.Equal(ConditionReasons.PodsReady, TestBed.Condition(serving, ConditionTypes.DataPlaneAvailable)!.Reason);

            // Delete: pods go, the agents put the original values back, the finalizer goes.
            await bed.DeleteTuningAsync(name);
            await TestBed.EventuallyAsync(async () => await bed.GetTuningAsync(name) is null, "the sample is gone after the revert", TimeSpan.FromSeconds(60));
            foreach (var agent in agents.Values)
                Assert.Equal(FixtureHostBuilder.DefaultSysctls["net.core.somaxconn"], File.ReadAllText(Path.Combine(agent.Root, "proc/sys/net/core/somaxconn")).Trim());
            Assert.Empty((await bed.Client.CoreV1.ListNamespacedPodAsync(bed.Namespace, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}")).Items);
        }
        finally
        {
            foreach (var agent in agents.Values) agent.Dispose();
            dir.Delete(recursive: true);
        }
    }
}
