using System.Diagnostics;
using k8s;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>`nettune-operator uninstall`, the chart's pre-delete hook, against a running operator.</summary>
[Collection("cluster")]
public sealed class UninstallTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task UninstallDeletesEveryTuningWaitsForTheRevertAndLeavesNothingButTheCrds()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        await bed.StartOperatorAsync();
        bed.StartAgents();
        var a = (await bed.CreateTuningAsync("uninstall-a", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        var specB = Specs.Somaxconn(bed, "1024");
        specB.Priority = 5;
        var b = (await bed.CreateTuningAsync("uninstall-b", specB)).Metadata.Name;
        await Specs.ConvergedAsync(bed, a, 1, 2);
        await TestBed.EventuallyAsync(async () => (await bed.Client.AppsV1.ListNamespacedDaemonSetAsync(bed.Namespace)).Items.Count == 1, "the agent DaemonSet");

        var (code, log) = await UninstallAsync(bed, TimeSpan.FromSeconds(60));
        Assert.True(code == 0, log);
        Assert.Contains($"deleted NetworkTuning {a}", log);
        Assert.Contains($"deleted NetworkTuning {b}", log);
        Assert.Null(await bed.GetTuningAsync(a));
        Assert.Null(await bed.GetTuningAsync(b));
        Assert.Empty(await bed.NodeStatesAsync());
        Assert.Empty((await bed.Client.AppsV1.ListNamespacedDaemonSetAsync(bed.Namespace)).Items);
        // Every node reported Reverted before its tuning's finalizer went (the agents here revert on request).
        Assert.All(nodes, n => Assert.DoesNotContain(n, log.Split('\n').Where(l => l.StartsWith("timed out", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task UninstallGivesUpAfterItsTimeoutNamingTheNodeThatHasNotReverted()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var nodes = await bed.CreateNodesAsync(2);
        // The operator would wait 30 s for the revert; the hook gives up sooner, with the reason.
        await bed.StartOperatorAsync();
        bed.StartAgents(null, nodes[1]);
        var name = (await bed.CreateTuningAsync("stuck", Specs.Somaxconn(bed, "1024"))).Metadata.Name;
        await bed.WaitForTuningAsync(name, t => t.Status?.AppliedNodes == 1, "one node applied");

        var (code, log) = await UninstallAsync(bed, TimeSpan.FromSeconds(6));
        Assert.True(code == 1, log);
        Assert.Contains($"NetworkTuning {name}, waiting for {nodes[1]} to revert", log);
        Assert.Contains("Stuck finalizers", log);
        // The tuning is still there, finalizer and all: the operator goes on reverting.
        Assert.NotNull((await bed.GetTuningAsync(name))!.Metadata.DeletionTimestamp);
    }

    private async Task<(int Code, string Log)> UninstallAsync(TestBed bed, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "nettune-operator.dll"), "uninstall", "--kubeconfig", fx.Cluster.KubeconfigPath,
                     "--namespace", bed.Namespace, "--timeout-seconds", timeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout + TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(limit.Token);
        var log = await stdout + await stderr;
        output.WriteLine(log);
        return (process.ExitCode, log);
    }
}
