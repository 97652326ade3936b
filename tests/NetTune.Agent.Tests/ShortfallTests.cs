using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// A fixture root whose nr_hugepages files behave like the kernel's when memory is short: a write asks, the file then
/// holds what could be reserved. (On the shared test VM, a real shortfall would mean exhausting its memory.)
/// </summary>
public sealed class HugepagesLikeAKernelShortOfMemory(HostFileSystem inner, long available) : WriteInterceptingFileSystem(inner)
{
    public override HostIoResult Write(string path, string value)
    {
        if (path.EndsWith("/nr_hugepages", StringComparison.Ordinal) && long.TryParse(value, out var asked) && asked > available)
            return Inner.Write(path, $"{available}");
        return Inner.Write(path, value);
    }
}

public sealed class ShortfallTests
{
    [Fact]
    public void FewerPagesThanAsked_IsAShortfall_WithTheNumbers_AndDegradesTheRun()
    {
        using var host = FixtureHost.TwoSocket();
        var fs = new HugepagesLikeAKernelShortOfMemory(host.Fs, available: 300);
        var spec = new NodeStateSpec { NodeName = "n", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 200 }] }] };
        var report = host.Engine(fs).Apply(spec);
        Assert.Equal(RunKind.Failed, report.Kind);
        var node0 = report.Knobs.Single(k => k.Knob == "hugepages/node0/2Mi");
        Assert.Equal((KnobOutcome.Shortfall, "300"), (node0.Result, node0.Value));
        Assert.Equal("partial allocation: 300 of 512 pages (212 short): the kernel found 300 of the 512 pages asked in this step (memory too fragmented or in use)", node0.Message);
        Assert.Equal(KnobOutcome.Applied, report.Knobs.Single(k => k.Knob == "hugepages/node1/2Mi").Result);
        Assert.Equal(RunKind.Reverted, host.Engine().Revert().Kind);
        Assert.Equal("256", host.Read("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"));
    }

    [Fact]
    public void QueueSettingsForChannelsThatFailed_AreSkipped_NotFailedAgain()
    {
        using var host = FixtureHost.TwoSocket();
        var spec = new NodeStateSpec
        {
            NodeName = "n",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth1"] }, Channels = new ChannelsSpec { Combined = 40 }, Rps = new RpsSpec { Enabled = true } },
        };
        var report = host.Engine().Apply(spec);
        Assert.Equal(KnobOutcome.Failed, report.Knobs.Single(k => k.Knob == "nic/eth1/channels").Result);
        Assert.Equal(KnobOutcome.Applied, report.Knobs.Single(k => k.Knob == "nic/eth1/rx-15/rps_cpus").Result);
        Assert.Equal(KnobOutcome.Skipped, report.Knobs.Single(k => k.Knob == "nic/eth1/rx-16/rps_cpus").Result);
        Assert.Single(report.Knobs, k => k.Result == KnobOutcome.Failed);
    }
}
