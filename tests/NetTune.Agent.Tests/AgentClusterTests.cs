using System.Net;
using System.Net.Sockets;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Agent.Tests;

[CollectionDefinition("cluster")]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>;

/// <summary>
/// The agent process against the real kube-apiserver, on a fixture host root standing for a Node: it publishes its
/// plan in dry-run, applies, repairs drift, reports status and metrics, reverts when asked and exits on SIGTERM.
/// </summary>
[Collection("cluster")]
public sealed class AgentClusterTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private KubeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Agent_DryRunsAppliesRepairsDriftReportsAndReverts()
    {
        const string node = "agent-node-a";
        using var host = FixtureHost.TwoSocket();
        var original = host.TreeImage();
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node, Labels = new Dictionary<string, string> { ["nettune.io/tuned"] = "true" } } });
        // Agents cannot write Nodes: whatever the status says, this label (no operator runs here) stays as it was made.
        var spec = Specs.Full();
        spec.NodeName = node;
        spec.DryRun = true;
        await CreateNodeStateAsync(node, spec);

        var port = FreePort();
        var logPath = Path.Join(host.Dir, "agent.log");
        var restartKubelet = NetTune.Fixtures.Hosts.FixtureHosts.WriteKubeletRestartScript(host.Root, Cluster.KubeconfigPath, node);
        var agent = StartAgent(host, node, logPath, "1s", port, extraArgs: ["--kubelet-restart-command", restartKubelet]);
        try
        {
            // Dry run: the plan is published, nothing on the host changes.
            var dry = await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Reason == ConditionReasons.DryRun && s.Status!.ObservedGeneration == s.Metadata.Generation, agent);
            Assert.Contains(dry.Status!.PlannedChanges!, c => c.Knob == "nic/eth1/channels" && c.Target == "rx=0,tx=0,other=1,combined=4");
            Assert.Equal(2, dry.Status.Topology!.NumaNodes!.Count);
            Assert.Equal("8-15,24-31", dry.Status.Topology.Nics!.Single(n => n.Name == "eth1").LocalCpus);
            Assert.Equal(32, dry.Status.Topology.Cpus!.Count);
            var cpu25 = dry.Status.Topology.Cpus.Single(c => c.Id == 25);
            Assert.Equal((1, 1, "9,25"), (cpu25.Package, cpu25.Core, cpu25.ThreadSiblings));
            TreeAssert.Same(original, host.TreeImage());
            // The status says this boot has nothing applied yet: the operator keeps the node's tuned label off.
            await WaitForTunedStatusAsync(node, host, tuned: false, agent);

            // Apply.
            await PatchSpecAsync(node, new { dryRun = false });
            var applied = await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, agent);
            Assert.Equal(ConditionStatus.False, Condition(applied, ConditionTypes.Degraded)!.Status);
            Assert.Equal(applied.Metadata.Generation, applied.Status!.ObservedGeneration);
            Assert.All(applied.Status.Knobs!, k => Assert.Equal(KnobOutcome.Applied, k.Result));
            Assert.Equal("65535", host.Read("proc/sys/net/core/somaxconn"));
            Assert.Equal("4", applied.Status.Topology!.Nics!.Single(n => n.Name == "eth1").Channels!.Combined.ToString());
            await WaitForTunedStatusAsync(node, host, tuned: true, agent);

            // Applied only once the node's capacity showed the new hugepages: the agent restarted the (stand-in) kubelet once.
            var kubelet = Condition(applied, ConditionTypes.KubeletRestartRequired)!;
            Assert.Equal((ConditionStatus.False, ConditionReasons.KubeletSeesHugepages), (kubelet.Status, kubelet.Reason));
            Assert.StartsWith($"after '{restartKubelet}' exited 0", kubelet.Message);
            Assert.Contains("hugepages-2Mi 3Gi (1536 pages", kubelet.Message);
            Assert.Equal("3Gi", (await client.CoreV1.ReadNodeAsync(node)).Status.Capacity["hugepages-2Mi"].ToString());
            // Drift: someone resets a sysctl; the agent notices, repairs and counts it.
            host.Write("proc/sys/net/core/somaxconn", "4096");
            var repaired = await WaitForAsync(node, s => s.Status!.Drift?.Any(d => d.Knob == "sysctl/net.core.somaxconn" && d.Repaired >= 1) == true, agent);
            Assert.Equal("65535", host.Read("proc/sys/net/core/somaxconn"));
            Assert.True(repaired.Status!.Drift!.Single(d => d.Knob == "sysctl/net.core.somaxconn").Detected >= 1);

            using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
            {
                var metrics = await http.GetStringAsync("/metrics");
                Assert.Contains("nettune_agent_numa_nodes 2", metrics);
                Assert.Contains("nettune_agent_drift_repaired_total{knob=\"sysctl\"}", metrics);
                Assert.DoesNotContain("knob=\"sysctl/", metrics);
                Assert.Contains("nettune_agent_hugepages{numa_node=\"1\",size=\"2Mi\",state=\"total\"} 1024", metrics);
                Assert.Contains("nettune_agent_knob_changes_total{kind=\"channels\",result=\"Applied\"}", metrics);
                Assert.Contains("nettune_agent_irq_cpu{irq=\"101\",nic=\"eth1\",queue=\"0\"} 9", metrics);
                Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
                if (File.Exists("/usr/bin/promtool"))
                {
                    // promtool exits non-zero on lint problems (bad names, missing help, wrong suffixes).
                    var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/promtool", "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
                    using var promtool = System.Diagnostics.Process.Start(psi)!;
                    await promtool.StandardInput.WriteAsync(metrics);
                    promtool.StandardInput.Close();
                    var lint = await promtool.StandardOutput.ReadToEndAsync() + await promtool.StandardError.ReadToEndAsync();
                    await promtool.WaitForExitAsync();
                    Assert.True(promtool.ExitCode == 0, "promtool check metrics: " + lint);
                }
            }

            // Revert: every journaled original comes back, byte for byte.
            await PatchSpecAsync(node, new { revert = true });
            var reverted = await WaitForAsync(node, s => Condition(s, ConditionTypes.Reverted)?.Status == ConditionStatus.True && s.Status!.ObservedGeneration == s.Metadata.Generation, agent);
            Assert.Equal(ConditionReasons.Reverted, Condition(reverted, ConditionTypes.Applied)!.Reason);
            Assert.All(reverted.Status!.Knobs!, k => Assert.Equal(KnobOutcome.Reverted, k.Result));
            TreeAssert.Same(original, host.TreeImage());
            await WaitForTunedStatusAsync(node, host, tuned: false, agent);

            Assert.Equal(NodeLabels.TunedValue, (await client.CoreV1.ReadNodeAsync(node)).Metadata.Labels[NodeLabels.Tuned]);

            await agent.StopAsync(TimeSpan.FromSeconds(20));
            Assert.True(agent.HasExited);
            Assert.Contains("agent stopping", File.ReadAllText(logPath));
        }
        finally
        {
            await agent.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    [Fact]
    public async Task AgentRestarted_RevertsFromItsJournal_WhatTheEarlierProcessApplied()
    {
        const string node = "agent-node-b";
        using var host = FixtureHost.ThisVm();
        var original = host.TreeImage();
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        var spec = new NodeStateSpec
        {
            NodeName = node,
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["virtio_net"] }, IrqAffinity = new IrqAffinitySpec { ReservedCpus = "0" }, Rps = new RpsSpec { Enabled = true } },
            Sysctls = new() { ["net.core.netdev_max_backlog"] = "16384" },
        };
        await CreateNodeStateAsync(node, spec);
        ChildProcess Start(string log) => StartAgent(host, node, Path.Join(host.Dir, log), "30s");
        var first = Start("first.log");
        ChildProcess? second = null;
        try
        {
            var applied = await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, first);
            Assert.Equal(["irq/38/affinity", "irq/39/affinity", "nic/eth0/rx-0/rps_cpus", "sysctl/net.core.netdev_max_backlog"], applied.Status!.Knobs!.Select(k => k.Knob).Order());
            Assert.Equal("1", host.Read("proc/irq/38/smp_affinity_list"));
            await first.StopAsync(TimeSpan.FromSeconds(20));

            // Asked to revert while no agent runs: the next process finds the originals in the journal on the host.
            await PatchSpecAsync(node, new { revert = true });
            second = Start("second.log");
            var reverted = await WaitForAsync(node, s => Condition(s, ConditionTypes.Reverted)?.Status == ConditionStatus.True && s.Status!.ObservedGeneration == s.Metadata.Generation, second);
            Assert.Equal(4, reverted.Status!.Knobs!.Count(k => k.Result == KnobOutcome.Reverted));
            TreeAssert.Same(original, host.TreeImage());
        }
        finally
        {
            await first.DisposeAsync();
            if (second is not null) await second.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    /// <summary>
    /// The operator takes the node's tuned label off only when the status says Reverted, so a revert whose status write
    /// failed (here: a webhook that cannot be reached, failing closed) must be reported once writes go through again.
    /// </summary>
    [Fact]
    public async Task ARevertWhoseStatusWriteFailed_IsReportedOnceTheStatusCanBeWrittenAgain()
    {
        const string node = "agent-node-statusfail";
        const string webhook = "agent-test-block-nodestate-status";
        using var host = FixtureHost.ThisVm();
        const string backlog = "proc/sys/net/core/netdev_max_backlog";
        var original = host.Read(backlog);
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        await client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuningNodeState
        {
            Metadata = new V1ObjectMeta { Name = node, Labels = new Dictionary<string, string> { ["agent-test-block"] = node } },
            Spec = new NodeStateSpec { NodeName = node, Sysctls = new() { ["net.core.netdev_max_backlog"] = "16384" } },
        }, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);
        var agent = StartAgent(host, node, Path.Join(host.Dir, "agent.log"), "1s");
        try
        {
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, agent);

            // A webhook nobody answers, failing closed, for this NodeState's status only (the spec stays writable).
            await client.AdmissionregistrationV1.CreateValidatingWebhookConfigurationAsync(new V1ValidatingWebhookConfiguration
            {
                Metadata = new V1ObjectMeta { Name = webhook },
                Webhooks =
                [
                    new V1ValidatingWebhook
                    {
                        Name = "block.agent-test.nettune.io",
                        ClientConfig = new Admissionregistrationv1WebhookClientConfig { Url = "https://127.0.0.1:1/block" },
                        Rules = [new V1RuleWithOperations { ApiGroups = [ApiGroup.Name], ApiVersions = [ApiGroup.Version], Resources = ["networktuningnodestates/status"], Operations = ["UPDATE"] }],
                        ObjectSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["agent-test-block"] = node } },
                        FailurePolicy = "Fail",
                        SideEffects = "None",
                        AdmissionReviewVersions = ["v1"],
                        TimeoutSeconds = 2,
                    },
                ],
            });
            try
            {
                var blocked = new V1Patch("""{"status":{"agentVersion":"blocked?"}}""", V1Patch.PatchType.MergePatch);
                await WaitUntilAsync(async () =>
                {
                    try { await client.CustomObjects.PatchClusterCustomObjectStatusAsync(blocked, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node); }
                    catch (k8s.Autorest.HttpOperationException) { return true; }
                    return false;
                }, "the webhook to refuse status writes");

                await PatchSpecAsync(node, new { revert = true });
                await WaitUntilAsync(() => Task.FromResult(host.Read(backlog) == original), "the host reverted");
                // The agent keeps trying; nothing can say Reverted yet.
                await Task.Delay(TimeSpan.FromSeconds(3));
                var stale = await GetNodeStateAsync(node);
                Assert.NotEqual(stale.Metadata.Generation, stale.Status!.ObservedGeneration);
            }
            finally
            {
                await client.AdmissionregistrationV1.DeleteValidatingWebhookConfigurationAsync(webhook);
            }

            var reverted = await WaitForAsync(node, s => Condition(s, ConditionTypes.Reverted)?.Status == ConditionStatus.True && s.Status!.ObservedGeneration == s.Metadata.Generation, agent);
            Assert.Equal(original, host.Read(backlog));
            Assert.Contains(reverted.Status!.Knobs!, k => k.Knob == "sysctl/net.core.netdev_max_backlog");
        }
        finally
        {
            await agent.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(200);
        }
        Assert.Fail($"timed out waiting for {what}");
    }

    [Fact]
    public async Task Hugepages_AreAppliedOnlyWhenTheNodesCapacityShowsThem_UntilThenKubeletRestartRequiredSaysWhatIsMissing()
    {
        const string node = "agent-node-hugepages";
        using var host = FixtureHost.ThisVm();
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        await client.CoreV1.PatchNodeStatusAsync(new V1Patch("""{"status":{"capacity":{"hugepages-2Mi":"0"},"allocatable":{"hugepages-2Mi":"0"}}}""", V1Patch.PatchType.MergePatch), node);
        var spec = new NodeStateSpec { NodeName = node, Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 8 }] };
        await CreateNodeStateAsync(node, spec);
        var agent = StartAgent(host, node, Path.Join(host.Dir, "agent.log"), "1s");
        try
        {
            var waiting = await WaitForAsync(node, s => Condition(s, ConditionTypes.KubeletRestartRequired)?.Status == ConditionStatus.True, agent);
            Assert.Equal("8", host.Read("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"));
            var required = Condition(waiting, ConditionTypes.KubeletRestartRequired)!;
            Assert.Equal(ConditionReasons.KubeletRestartRequired, required.Reason);
            Assert.StartsWith("the kernel holds 8 pages (16Mi) of hugepages-2Mi, the node's capacity says 0 and allocatable 0. The kubelet reads hugepages only when it starts", required.Message);
            var applied = Condition(waiting, ConditionTypes.Applied)!;
            Assert.Equal((ConditionStatus.False, ConditionReasons.KubeletRestartRequired), (applied.Status, applied.Reason));
            Assert.Equal(ConditionStatus.False, Condition(waiting, ConditionTypes.Degraded)!.Status);
            Assert.Null(waiting.Status!.LastAppliedGeneration);
            Assert.Equal(KnobOutcome.Applied, waiting.Status.Knobs!.Single(k => k.Knob == "hugepages/node0/2Mi").Result);
            // Pods that need the pages must not land yet: the node is not marked tuned.
            await WaitForTunedStatusAsync(node, host, tuned: false, agent);

            // Someone restarts the kubelet: the capacity shows the pages, and the next drift tick reports Applied.
            await client.CoreV1.PatchNodeStatusAsync(new V1Patch("""{"status":{"capacity":{"hugepages-2Mi":"16Mi"},"allocatable":{"hugepages-2Mi":"16Mi"}}}""", V1Patch.PatchType.MergePatch), node);
            var done = await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, agent);
            Assert.Equal((ConditionStatus.False, ConditionReasons.KubeletSeesHugepages),
                (Condition(done, ConditionTypes.KubeletRestartRequired)!.Status, Condition(done, ConditionTypes.KubeletRestartRequired)!.Reason));
            // And the data-plane pods, which require the tuned label, may now be scheduled.
            await WaitForTunedStatusAsync(node, host, tuned: true, agent);
        }
        finally
        {
            await agent.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    [Fact]
    public async Task PlanOnlyAgent_PublishesThePlanOfAnApply_HasNothingToRevert_AndNeverWritesToTheHost()
    {
        const string node = "agent-node-plan-only";
        using var host = FixtureHost.TwoSocket();
        var original = host.TreeImage();
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        var spec = Specs.Full();
        spec.NodeName = node;
        Assert.False(spec.DryRun); // the NodeState asks for a real apply
        await CreateNodeStateAsync(node, spec);
        var agent = StartAgent(host, node, Path.Join(host.Dir, "agent.log"), "1s", extraArgs: ["--plan-only"]);
        try
        {
            var planned = await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Reason == ConditionReasons.DryRun && s.Status!.ObservedGeneration == s.Metadata.Generation, agent);
            Assert.Contains(planned.Status!.PlannedChanges!, c => c.Knob == "nic/eth1/channels" && c.Target == "rx=0,tx=0,other=1,combined=4");
            Assert.Contains("--plan-only", Condition(planned, ConditionTypes.Applied)!.Message);
            Assert.Null(planned.Status.LastAppliedGeneration);

            await PatchSpecAsync(node, new { revert = true });
            // It changed nothing, so there is nothing to restore: the revert is reported done at once.
            var reverted = await WaitForAsync(node, s => Condition(s, ConditionTypes.Reverted)?.Status == ConditionStatus.True && s.Status!.ObservedGeneration == s.Metadata.Generation, agent);
            Assert.Contains("nothing to restore", Condition(reverted, ConditionTypes.Reverted)!.Message);

            // Several drift intervals later: still nothing written, no journal.
            await Task.Delay(TimeSpan.FromSeconds(3));
            TreeAssert.Same(original, host.TreeImage());
            Assert.False(File.Exists(Path.Join(host.JournalDir, NetTune.Agent.Core.Journal.JournalStore.FileName)));
        }
        finally
        {
            await agent.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    [Fact]
    public async Task AfterAReboot_TheStatusNamesTheNewBoot_WithNothingAppliedUntilTheAgentHasAppliedAgain()
    {
        const string node = "agent-node-reboot";
        using var host = FixtureHost.ThisVm();
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        var spec = new NodeStateSpec { NodeName = node, Sysctls = new() { ["net.core.netdev_max_backlog"] = "16384" } };
        await CreateNodeStateAsync(node, spec);
        ChildProcess Start(string log) => StartAgent(host, node, Path.Join(host.Dir, log), "30s");
        var first = Start("first.log");
        ChildProcess? second = null;
        try
        {
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, first);
            await WaitForTunedStatusAsync(node, host, tuned: true, first);
            await first.StopAsync(TimeSpan.FromSeconds(20));

            // The reboot: a new boot id, the kernel's default back. The spec is held in dry run so the new agent
            // shows what it does before applying: its status names the new boot and nothing applied in it.
            host.Write(NetTune.Agent.Core.Topology.TopologyDiscovery.BootIdPath, "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a");
            host.Write("proc/sys/net/core/netdev_max_backlog", "1000");
            Assert.Equal("8f1c2b4e-5d6a-4e3f-9a7b-0c1d2e3f4a5b", (await GetNodeStateAsync(node)).Status!.BootId);
            await PatchSpecAsync(node, new { dryRun = true });
            second = Start("second.log");
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Reason == ConditionReasons.DryRun && s.Status!.ObservedGeneration == s.Metadata.Generation, second);
            await WaitForTunedStatusAsync(node, host, tuned: false, second);
            Assert.Equal("3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", (await GetNodeStateAsync(node)).Status!.BootId);

            await PatchSpecAsync(node, new { dryRun = false });
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, second);
            await WaitForTunedStatusAsync(node, host, tuned: true, second);
            Assert.Equal("16384", host.Read("proc/sys/net/core/netdev_max_backlog"));
            Assert.Contains("after a reboot", File.ReadAllText(Path.Join(host.Dir, "second.log")));
        }
        finally
        {
            await first.DisposeAsync();
            if (second is not null) await second.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    [Fact]
    public async Task AKnobSomethingElseKeepsChanging_IsLeftAloneAfterThreeRepairs()
    {
        const string node = "agent-node-backoff";
        using var host = FixtureHost.ThisVm();
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        var spec = new NodeStateSpec { NodeName = node, Sysctls = new() { ["net.core.somaxconn"] = "8192", ["vm.swappiness"] = "10" } };
        await CreateNodeStateAsync(node, spec);
        var agent = StartAgent(host, node, Path.Join(host.Dir, "agent.log"), "1s");
        try
        {
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True, agent);
            // Someone (a sysctl job, TuneD) sets it back each time the agent repairs it.
            for (var round = 1; round <= 2; round++)
            {
                host.Write("proc/sys/net/core/somaxconn", "4096");
                await WaitForAsync(node, s => s.Status!.Drift?.Any(d => d.Knob == "sysctl/net.core.somaxconn" && d.Repaired >= round) == true, agent);
            }
            host.Write("proc/sys/net/core/somaxconn", "4096");
            var held = await WaitForAsync(node, s => s.Status!.Knobs?.Any(k => k.Knob == "sysctl/net.core.somaxconn" && k.Result == KnobOutcome.Skipped) == true, agent);
            Assert.Contains("backs off until", held.Status!.Knobs!.Single(k => k.Knob == "sysctl/net.core.somaxconn").Message);
            Assert.Equal("4096", host.Read("proc/sys/net/core/somaxconn"));
            // The other knob is still repaired.
            host.Write("proc/sys/vm/swappiness", "60");
            await WaitForAsync(node, s => s.Status!.Drift?.Any(d => d.Knob == "sysctl/vm.swappiness" && d.Repaired >= 1) == true, agent);
            Assert.Equal("10", host.Read("proc/sys/vm/swappiness"));
            Assert.Equal("4096", host.Read("proc/sys/net/core/somaxconn"));
        }
        finally
        {
            await agent.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    [Fact]
    public async Task NodeDeletedWithItsNodeState_TheAgentRevertsFromItsJournalAfterTheGracePeriod_AndSaysSo()
    {
        const string node = "agent-node-orphan";
        using var host = FixtureHost.ThisVm();
        var original = host.TreeImage();
        var client = Cluster.Client;
        var created = await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        var spec = new NodeStateSpec
        {
            NodeName = node,
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["virtio_net"] }, Rps = new RpsSpec { Enabled = true } },
            Sysctls = new() { ["net.core.netdev_max_backlog"] = "16384" },
        };
        // Owned by its Node, as the operator makes it: the garbage collector deletes it with the Node.
        await client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuningNodeState
        {
            Metadata = new V1ObjectMeta { Name = node, OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "Node", Name = node, Uid = created.Metadata.Uid }] },
            Spec = spec,
        }, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);
        var port = FreePort();
        var agent = StartAgent(host, node, Path.Join(host.Dir, "agent.log"), "1s", port, extraArgs: ["--orphan-revert-after", "4s"]);
        try
        {
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, agent);
            Assert.Equal("16384", host.Read("proc/sys/net/core/netdev_max_backlog"));

            // The Node is deleted (to be registered again, or for good); its NodeState goes with it, nobody asks for a revert.
            var deleted = DateTime.UtcNow;
            await client.CoreV1.DeleteNodeAsync(node);
            var deadline = DateTime.UtcNow + Patience;
            while (DateTime.UtcNow < deadline && host.Read("proc/sys/net/core/netdev_max_backlog") != "1000")
            {
                Assert.False(agent.HasExited, "the agent exited:\n" + agent.Tail());
                await Task.Delay(200);
            }
            var after = DateTime.UtcNow - deleted;
            TreeAssert.Same(original, host.TreeImage());
            Assert.True(after >= TimeSpan.FromSeconds(4), $"reverted {after.TotalSeconds:0.0} s after the Node went, before the grace period ended");
            Assert.False(File.Exists(Path.Join(host.JournalDir, NetTune.Agent.Core.Journal.JournalStore.FileName)));

            // The Event follows the revert.
            Corev1Event? ev = null;
            while (DateTime.UtcNow < deadline && ev is null)
            {
                var events = await client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: $"involvedObject.name={node}");
                ev = events.Items.SingleOrDefault(e => e.Reason == "RevertedWithoutNodeState");
                if (ev is null) await Task.Delay(200);
            }
            var log = File.ReadAllText(Path.Join(host.Dir, "agent.log"));
            Assert.True(ev is not null, "no Event RevertedWithoutNodeState; agent log:\n" + agent.Tail(20));
            Assert.Contains("reverting them from the journal at", log);
            Assert.Contains("while the journal held changes: reverted from the journal: Reverted", log);
            Assert.Equal(("Node", "Warning"), (ev.InvolvedObject.Kind, ev.Type));
            Assert.Matches(@"^no NetworkTuningNodeState agent-node-orphan for \d+ s while the journal held changes: reverted from the journal: Reverted: [1-9]\d* knobs restored to their journaled originals$", ev.Message);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            Assert.Contains("nettune_agent_orphan_reverts_total{outcome=\"Reverted\"} 1", await http.GetStringAsync("/metrics"));
        }
        finally
        {
            await agent.DisposeAsync();
            try { await client.CoreV1.DeleteNodeAsync(node); } catch (k8s.Autorest.HttpOperationException) { }
        }
    }

    [Fact]
    public async Task AGuaranteedPodsExclusiveCpu_LosesInterruptsAndRpsWithinSeconds_AndGetsThemBackWhenThePodGoes()
    {
        const string node = "agent-node-exclusive";
        const string kubeletRoot = "var/lib/nettune-test-kubelet"; // a kubelet run with --root-dir elsewhere
        using var host = FixtureHost.ThisVm();
        Directory.CreateDirectory(Path.Join(host.Root, kubeletRoot));
        var checkpoint = $"{kubeletRoot}/cpu_manager_state";
        host.Write(checkpoint, """{"policyName":"static","defaultCpuSet":"0-1","checksum":1}""");
        var client = Cluster.Client;
        await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = node } });
        var spec = new NodeStateSpec
        {
            NodeName = node,
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["virtio_net"] }, IrqAffinity = new IrqAffinitySpec(), Rps = new RpsSpec { Enabled = true } },
        };
        await CreateNodeStateAsync(node, spec);
        // A drift interval far longer than the test: only the watch of the kubelet's assignment can move anything.
        var agent = StartAgent(host, node, Path.Join(host.Dir, "agent.log"), "10m", extraArgs: ["--kubelet-root-dir", "/" + kubeletRoot]);
        try
        {
            await WaitForAsync(node, s => Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True && s.Status!.LastAppliedGeneration == s.Metadata.Generation, agent);
            Assert.Equal(("0", "0", "3"), (host.Read("proc/irq/38/smp_affinity_list"), host.Read("proc/irq/39/smp_affinity_list"), host.Read("sys/class/net/eth0/queues/rx-0/rps_cpus")));

            // A Guaranteed pod is admitted: the static policy gives it CPU 0.
            host.Write(checkpoint, """{"policyName":"static","defaultCpuSet":"1","entries":{"8a6b1f0e-0000-4000-8000-000000000002":{"dataplane":"0"}},"checksum":2}""");
            await WaitForHostAsync(host, () => (host.Read("proc/irq/38/smp_affinity_list"), host.Read("proc/irq/39/smp_affinity_list"), host.Read("sys/class/net/eth0/queues/rx-0/rps_cpus")) == ("1", "1", "2"),
                "interrupts and RPS off CPU 0", agent);
            var pinned = await WaitForAsync(node, s => s.Status!.Knobs?.Any(k => k.Knob == "nic/eth0/rx-0/rps_cpus" && k.Value == "2") == true, agent);
            Assert.Null(pinned.Status!.Drift?.FirstOrDefault(d => d.Knob == "nic/eth0/rx-0/rps_cpus")); // new targets, not drift

            // The pod ends: the kubelet drops the entry, CPU 0 serves the NIC again.
            host.Write(checkpoint, """{"policyName":"static","defaultCpuSet":"0-1","checksum":3}""");
            await WaitForHostAsync(host, () => (host.Read("proc/irq/38/smp_affinity_list"), host.Read("sys/class/net/eth0/queues/rx-0/rps_cpus")) == ("0", "3"),
                "interrupts and RPS back on CPU 0", agent);
            Assert.Contains("exclusive CPUs changed from none to 0 (data plane: none): planning again", File.ReadAllText(Path.Join(host.Dir, "agent.log")));
        }
        finally
        {
            await agent.DisposeAsync();
            await DeleteNodeAndStateAsync(node);
        }
    }

    /// <summary>Polls the host until <paramref name="done"/> holds, for at most 10 s: the agent reads the kubelet's assignment when its root dir changes (inotify), and otherwise only once a minute.</summary>
    private static async Task WaitForHostAsync(FixtureHost host, Func<bool> done, string what, ChildProcess agent)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (done()) return;
            Assert.False(agent.HasExited, "the agent exited:\n" + agent.Tail());
            await Task.Delay(100);
        }
        Assert.Fail($"{what} never came within 10 s\nagent log:\n{agent.Tail(30)}");
    }

    private Task CreateNodeStateAsync(string node, NodeStateSpec spec) =>
        Cluster.Client.CustomObjects.CreateClusterCustomObjectAsync(
            new NetworkTuningNodeState { Metadata = new V1ObjectMeta { Name = node }, Spec = spec }, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);

    private async Task DeleteNodeAndStateAsync(string node)
    {
        await Cluster.Client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node);
        await Cluster.Client.CoreV1.DeleteNodeAsync(node);
    }

    /// <summary>The agent as a process against the cluster, on a fixture host, logging to <paramref name="logPath"/>.</summary>
    private ChildProcess StartAgent(FixtureHost host, string node, string logPath, string driftInterval, int? port = null, string[]? extraArgs = null)
    {
        var command = AgentBinary.Command(["--host-root", host.Root, "--node-name", node, "--journal-dir", host.JournalDir, "--kubeconfig", Cluster.KubeconfigPath,
             "--metrics-port", $"{port ?? FreePort()}", "--drift-interval", driftInterval, "--channel-backend", "Fixture", .. extraArgs ?? []]);
        return ChildProcess.Start("agent", command[0], command[1..], logPath);
    }

    /// <summary>
    /// Waits until the status tells the operator that this host's current boot has (or has not) the NodeState's
    /// current generation applied: what the operator sets the node's tuned label from.
    /// </summary>
    private async Task WaitForTunedStatusAsync(string node, FixtureHost host, bool tuned, ChildProcess agent)
    {
        var boot = host.Read(NetTune.Agent.Core.Topology.TopologyDiscovery.BootIdPath).Trim();
        await WaitForAsync(node, s => TunedInBoot(s, boot) == tuned, agent);
    }

    private static bool TunedInBoot(NetworkTuningNodeState s, string boot) =>
        !s.Spec.Revert && s.Status?.BootId == boot && s.Status.ObservedGeneration == s.Metadata.Generation
        && s.Status.LastAppliedGeneration == s.Metadata.Generation && Condition(s, ConditionTypes.Applied)?.Status == ConditionStatus.True;

    private Task<NetworkTuningNodeState> GetNodeStateAsync(string node) =>
        Cluster.Client.CustomObjects.GetClusterCustomObjectAsync<NetworkTuningNodeState>(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node);

    private static V1Condition? Condition(NetworkTuningNodeState s, string type) => s.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    private async Task PatchSpecAsync(string node, object specPatch)
    {
        var patch = new V1Patch(KubernetesJson.Serialize(new { spec = specPatch }), V1Patch.PatchType.MergePatch);
        await Cluster.Client.CustomObjects.PatchClusterCustomObjectAsync(patch, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node);
    }

    /// <summary>Polls the NodeState until <paramref name="done"/> holds; fails with the agent's log when it never does.</summary>
    private async Task<NetworkTuningNodeState> WaitForAsync(string node, Func<NetworkTuningNodeState, bool> done, ChildProcess agent)
    {
        var deadline = DateTime.UtcNow + Patience;
        NetworkTuningNodeState? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await Cluster.Client.CustomObjects.GetClusterCustomObjectAsync<NetworkTuningNodeState>(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node);
            if (last.Status is not null && done(last)) return last;
            Assert.False(agent.HasExited, "the agent exited:\n" + agent.Tail());
            await Task.Delay(200);
        }
        Assert.Fail($"the NodeState never reached the expected state; last status: {(last?.Status is null ? "(none)" : KubernetesJson.Serialize(last.Status))}\nagent log:\n{agent.Tail(40)}");
        return null!;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
