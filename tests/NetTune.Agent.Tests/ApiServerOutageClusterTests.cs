using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Api.V1Alpha1;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Agent.Tests;

/// <summary>
/// Issue 20 item 6 against the real kube-apiserver, stopped and started again around a drift repair of a NIC knob:
/// an outage that the repair did not cause never leaves the knob rolled back for good.
/// </summary>
[Collection("cluster")]
public sealed class ApiServerOutageClusterTests(ClusterFixture fixture)
{
    private const string RpsCpus = "sys/class/net/eth0/queues/rx-0/rps_cpus";
    private KubeCluster Cluster => fixture.Cluster;

    private static NodeStateSpec Spec() => new()
    {
        NodeName = "outage",
        Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["virtio_net"] }, Rps = new RpsSpec { Enabled = true } },
    };

    private TuningEngine Engine(FixtureHost host, IConnectivityCheck? check = null) =>
        new(host.Fs, new SimulatedChannelControl(host.Fs), new JournalStore(host.JournalDir))
        {
            Connectivity = check ?? new ApiServerReachability(Cluster.CreateClient()),
            ConnectivityBound = TimeSpan.FromSeconds(3),
            ConnectivityPrecheckBound = TimeSpan.FromSeconds(2),
        };

    /// <summary>Tuned, then someone puts rx-0's rps_cpus back: the drift a repair sets right again.</summary>
    private (string Original, string Target) TunedThenDrifted(FixtureHost host)
    {
        var original = host.Read(RpsCpus);
        var applied = Engine(host).Apply(Spec());
        Assert.True(applied.Kind == RunKind.Applied, applied.Message);
        var target = host.Read(RpsCpus);
        Assert.NotEqual(original, target);
        host.Write(RpsCpus, original);
        return (original, target);
    }

    [Fact]
    public async Task ApiServerDownAroundADriftRepair_TheRepairWaits_AndIsMadeOnceItAnswers()
    {
        using var host = FixtureHost.ThisVm();
        var (original, target) = TunedThenDrifted(host);

        await Cluster.StopApiServerAsync();
        RunReport repair;
        try
        {
            repair = Engine(host).Apply(Spec());
        }
        finally
        {
            await Cluster.StartApiServerAsync();
        }
        Assert.Equal(RunKind.Failed, repair.Kind);
        Assert.True(repair.ApiServerOutage, repair.Message);
        Assert.True(repair.Retry);
        Assert.Equal(original, host.Read(RpsCpus)); // not touched while nobody could tell whether it cut the node off
        Assert.Equal(original, new JournalStore(host.JournalDir).Load().Find("nic/eth0/rx-0/rps_cpus")!.Original);

        var back = Engine(host).Apply(Spec());
        Assert.True(back.Kind == RunKind.Applied, back.Message);
        Assert.Equal(target, host.Read(RpsCpus));
    }

    /// <summary>Answers through the real API server once, then stops it: an outage that begins during the repair.</summary>
    private sealed class StopsTheApiServerAfterItsFirstAnswer(KubeCluster cluster, IConnectivityCheck real) : IConnectivityCheck
    {
        public int Calls { get; private set; }

        public (bool Reachable, string Detail) WaitUntilReachable(TimeSpan bound)
        {
            var answer = real.WaitUntilReachable(bound);
            if (Calls++ == 0) cluster.StopApiServerAsync().GetAwaiter().GetResult();
            return answer;
        }
    }

    [Fact]
    public async Task ApiServerGoingDownDuringADriftRepair_IsNotTakenForTheRepairsDoing()
    {
        using var host = FixtureHost.ThisVm();
        var (original, target) = TunedThenDrifted(host);

        var check = new StopsTheApiServerAfterItsFirstAnswer(Cluster, new ApiServerReachability(Cluster.CreateClient()));
        RunReport repair;
        try
        {
            repair = Engine(host, check).Apply(Spec());
        }
        finally
        {
            await Cluster.StartApiServerAsync();
        }
        Assert.Equal(3, check.Calls); // before the repair (answered), after it, after its rollback
        Assert.Equal(RunKind.RolledBack, repair.Kind);
        Assert.Equal(original, host.Read(RpsCpus));
        Assert.True(repair.ApiServerOutage, repair.Message);
        Assert.True(repair.Retry); // the agent's next drift interval applies again
        Assert.Contains("still unreachable without them", repair.Message);

        var back = Engine(host).Apply(Spec());
        Assert.True(back.Kind == RunKind.Applied, back.Message);
        Assert.Equal(target, host.Read(RpsCpus));
    }
}
