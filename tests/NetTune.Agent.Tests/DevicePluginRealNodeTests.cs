using System.Diagnostics;
using k8s;
using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using Xunit.Abstractions;

namespace NetTune.Agent.Tests;

/// <summary>
/// The agent's NUMA device plugin against the real kubelet of the local node (v1.20, whose grpc-go client sends the
/// socket path as :authority): it registers, the Node advertises the resource, a pod asking for it is admitted and
/// runs, and after a kubelet restart (which deletes every socket in device-plugins/) the plugin registers again.
/// The agent runs as a process on this host (host root /), with no NodeState, so it changes nothing on the host.
/// Starts the real node: run it under flock /tmp/nettune-realnode.lock.
/// </summary>
public sealed class DevicePluginRealNodeTests(ITestOutputHelper output)
{
    private const string NodeName = "nettune-dp-plugin";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [RootFact]
    public async Task TheAgentRegistersANumaResourceThatAPodIsAdmittedWith_AndRegistersAgainAfterAKubeletRestart()
    {
        var clock = Stopwatch.StartNew();
        await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { Node = new NodeOptions { Name = NodeName } });
        output.WriteLine($"cluster and node up: {clock.Elapsed.TotalSeconds:0.0}s");
        var journal = Directory.CreateTempSubdirectory("nettune-dp-journal");
        var log = Path.Join(journal.FullName, "agent.log");
        var command = AgentBinary.Command("--host-root", "/", "--node-name", NodeName, "--journal-dir", journal.FullName, "--kubeconfig", cluster.KubeconfigPath,
            "--metrics-port", "0", "--drift-interval", "10m", "--connectivity-timeout", "0", "--orphan-revert-after", "0");
        await using var agent = ChildProcess.Start("agent", command[0], command[1..], log);
        var resource = NumaResources.ResourceName(0);
        try
        {
            clock.Restart();
            var advertised = await AdvertisedAsync(cluster.Client, resource, agent);
            output.WriteLine($"agent start → {resource} in allocatable: {clock.Elapsed.TotalSeconds:0.0}s ({advertised} devices)");
            Assert.Equal(4, advertised);
            var node = await cluster.Client.CoreV1.ReadNodeAsync(NodeName);
            Assert.Equal("4", node.Status.Capacity[resource].ToString());

            // A pod asking for one device is admitted (the kubelet's Allocate call reaches the plugin) and runs.
            clock.Restart();
            await cluster.Client.CoreV1.CreateNamespacedPodAsync(PausePod("numa-pinned", resource), "default");
            var pod = await RunningAsync(cluster.Client, "numa-pinned", agent);
            output.WriteLine($"pod create → Running: {clock.Elapsed.TotalSeconds:0.0}s");
            Assert.Equal(NodeName, pod.Spec.NodeName);

            // The kubelet restarts: it deletes the plugin's socket, forgets the plugin, and shows the resource again
            // only once the plugin has registered anew.
            clock.Restart();
            await cluster.Node!.RestartKubeletAsync(cluster);
            output.WriteLine($"kubelet restarted (Ready again): {clock.Elapsed.TotalSeconds:0.0}s");
            Assert.Equal(4, await AdvertisedAsync(cluster.Client, resource, agent));
            output.WriteLine($"kubelet restart → {resource} back in allocatable: {clock.Elapsed.TotalSeconds:0.0}s");
            // The status the restarted kubelet reported when it turned Ready is its own: what it shows now came from a new registration.
            Assert.True(File.ReadAllLines(log).Count(l => l.Contains("registered", StringComparison.Ordinal) && l.Contains("with the kubelet", StringComparison.Ordinal)) >= 2,
                "the agent logged one registration only:\n" + agent.Tail(40));

            // And a second pod is admitted by the restarted kubelet through the new registration.
            await cluster.Client.CoreV1.CreateNamespacedPodAsync(PausePod("numa-pinned-2", resource), "default");
            await RunningAsync(cluster.Client, "numa-pinned-2", agent);
        }
        finally
        {
            output.WriteLine("agent log:\n" + agent.Tail(40));
            foreach (var name in new[] { "numa-pinned", "numa-pinned-2" })
                try { await cluster.Client.CoreV1.DeleteNamespacedPodAsync(name, "default", gracePeriodSeconds: 0); }
                catch (k8s.Autorest.HttpOperationException) { }
            await agent.StopAsync();
            journal.Delete(recursive: true);
        }
    }

    private static V1Pod PausePod(string name, string resource)
    {
        var resources = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("32Mi"), [resource] = new("1") };
        return new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = name },
            Spec = new V1PodSpec
            {
                HostNetwork = true,
                TerminationGracePeriodSeconds = 0,
                Containers = [new V1Container
                {
                    Name = "pause", Image = LocalNode.PauseImage, ImagePullPolicy = "Never",
                    Resources = new V1ResourceRequirements { Requests = resources, Limits = new Dictionary<string, ResourceQuantity>(resources) },
                }],
            },
        };
    }

    private static async Task<int> AdvertisedAsync(IKubernetes client, string resource, ChildProcess agent)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            var node = await client.CoreV1.ReadNodeAsync(NodeName);
            if (node.Status?.Allocatable?.TryGetValue(resource, out var q) == true && q.ToDecimal() > 0) return (int)q.ToDecimal();
            Assert.False(agent.HasExited, "the agent exited:\n" + agent.Tail());
            await Task.Delay(500);
        }
        Assert.Fail($"the Node never showed {resource} in allocatable; agent log:\n{agent.Tail(40)}");
        return 0;
    }

    private static async Task<V1Pod> RunningAsync(IKubernetes client, string name, ChildProcess agent)
    {
        var deadline = DateTime.UtcNow + Patience;
        V1Pod? pod = null;
        while (DateTime.UtcNow < deadline)
        {
            pod = await client.CoreV1.ReadNamespacedPodAsync(name, "default");
            if (pod.Status?.Phase == "Running") return pod;
            Assert.NotEqual("Failed", pod.Status?.Phase);
            await Task.Delay(500);
        }
        Assert.Fail($"pod {name} never ran: {KubernetesJson.Serialize(pod?.Status)}\nagent log:\n{agent.Tail(40)}");
        return null!;
    }
}
