using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Merge;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class MergeTests
{
    private static Dictionary<string, string> Sysctls(params (string Key, string Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => p.Value);

    [Fact]
    public void HigherPriorityWinsEachKnobAndTheRestStillMerges()
    {
        var low = Tuning("low", priority: 1, sysctls: Sysctls(("net.core.somaxconn", "1024"), ("vm.swappiness", "10")));
        var high = Tuning("high", generation: 4, priority: 5, sysctls: Sysctls(("net.core.somaxconn", "4096")));
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(low), Contribution.Current(high)], previous: null);

        Assert.Empty(result.Conflicts);
        Assert.Equal("4096", result.Spec.Sysctls!["net.core.somaxconn"]);
        Assert.Equal("10", result.Spec.Sysctls["vm.swappiness"]);
        Assert.False(result.Spec.Revert);
        var sources = result.Spec.Sources!;
        Assert.Equal(["high", "low"], sources.Select(s => s.Name));
        Assert.Equal(4, sources[0].Generation);
        Assert.Equal(["sysctl/net.core.somaxconn"], sources[0].Knobs);
        Assert.Equal(["sysctl/vm.swappiness"], sources[1].Knobs);
    }

    [Fact]
    public void EqualPriorityDifferentValuesConflictAndTheNodeKeepsWhatItHad()
    {
        var a = Tuning("a", priority: 3, sysctls: Sysctls(("net.core.somaxconn", "1024")));
        var b = Tuning("b", priority: 3, sysctls: Sysctls(("net.core.somaxconn", "8192")));
        var previous = Having("a", 1, Sysctls(("net.core.somaxconn", "512")), priority: 3);
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(a), Contribution.Current(b)], previous);

        var conflict = Assert.Single(result.Conflicts);
        Assert.Equal("sysctl/net.core.somaxconn", conflict.Knob);
        Assert.Equal(["a", "b"], conflict.Tunings);
        Assert.Equal("512", result.Spec.Sysctls!["net.core.somaxconn"]);
        Assert.Equal(["sysctl/net.core.somaxconn"], result.Spec.Sources!.Single(s => s.Name == "a").Knobs);
    }

    [Fact]
    public void AConflictOnANewKnobLeavesItUnset()
    {
        var a = Tuning("a", sysctls: Sysctls(("vm.swappiness", "1")));
        var b = Tuning("b", sysctls: Sysctls(("vm.swappiness", "60")));
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(a), Contribution.Current(b)], previous: null);
        Assert.Single(result.Conflicts);
        Assert.Null(result.Spec.Sysctls);
    }

    [Fact]
    public void EqualPriorityAndEqualValueIsNoConflict()
    {
        var a = Tuning("a", sysctls: Sysctls(("vm.swappiness", "1")));
        var b = Tuning("b", sysctls: Sysctls(("vm.swappiness", "1")));
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(a), Contribution.Current(b)], previous: null);
        Assert.Empty(result.Conflicts);
        Assert.Equal("1", result.Spec.Sysctls!["vm.swappiness"]);
    }

    [Fact]
    public void AFrozenContributionKeepsWhatTheNodeHadFromThatTuning()
    {
        // The node has "other" at generation 2 (somaxconn 1024); "other" is at generation 3 now, but its rollout has
        // not reached this node, so the merge for "mine" must carry generation 2's value.
        var previous = Having("other", 2, Sysctls(("net.core.somaxconn", "1024")));
        var frozen = Contribution.Frozen(previous, "other", dryRun: false)!;
        var mine = Tuning("mine", sysctls: Sysctls(("vm.swappiness", "5")));
        var result = NodeSpecMerger.Merge("n1", [frozen, Contribution.Current(mine)], previous);

        Assert.Equal("1024", result.Spec.Sysctls!["net.core.somaxconn"]);
        Assert.Equal("5", result.Spec.Sysctls["vm.swappiness"]);
        Assert.Equal(2, result.Spec.Sources!.Single(s => s.Name == "other").Generation);
        Assert.Null(Contribution.Frozen(previous, "absent", false));
    }

    [Fact]
    public void NoContributionMeansRevert()
    {
        var result = NodeSpecMerger.Merge("n1", [], Having("gone", 1, Sysctls(("vm.swappiness", "5"))));
        Assert.True(result.Spec.Revert);
        Assert.Null(result.Spec.Sources);
        Assert.Null(result.Spec.Sysctls);
    }

    [Fact]
    public void NicSettingsOfALowerPriorityTuningForOtherInterfacesStayOut()
    {
        var high = Tuning("high", priority: 9);
        high.Spec.Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth*"] }, Channels = new ChannelsSpec { Combined = 4 } };
        var low = Tuning("low", priority: 1);
        low.Spec.Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["ens*"] }, Rps = new RpsSpec { Enabled = true } };
        var same = Tuning("same", priority: 1);
        same.Spec.Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth*"] }, Xps = new XpsSpec { Enabled = true } };

        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(high), Contribution.Current(low), Contribution.Current(same)], null);
        var nic = result.Spec.Nic!;
        Assert.Equal(["eth*"], nic.Interfaces!.Names);
        Assert.Equal(4, nic.Channels!.Combined);
        Assert.Null(nic.Rps);
        Assert.True(nic.Xps!.Enabled);
        Assert.Empty(result.Conflicts);
    }

    [Fact]
    public void HugepagesMergePerSize()
    {
        var a = Tuning("a", priority: 2);
        a.Spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512 }];
        var b = Tuning("b", priority: 1);
        b.Spec.Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64 }, new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 1 }];
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(a), Contribution.Current(b)], null);
        Assert.Equal([("1Gi", 1), ("2Mi", 512)], result.Spec.Hugepages!.Select(h => (h.Size, h.PagesPerNumaNode)));
    }

    [Fact]
    public void ConflictDetectorNeedsASharedNodeAndEqualPriority()
    {
        var nodes = new[] { Node("n1", ("zone", "a")), Node("n2", ("zone", "b")) };
        var a = Tuning("a", priority: 1, selector: Labels(("zone", "a")), sysctls: Sysctls(("vm.swappiness", "1")));
        var b = Tuning("b", priority: 1, sysctls: Sysctls(("vm.swappiness", "2")));
        var c = Tuning("c", priority: 1, selector: Labels(("zone", "b")), sysctls: Sysctls(("vm.swappiness", "3")));
        var d = Tuning("d", priority: 2, sysctls: Sysctls(("vm.swappiness", "4")));
        var all = new[] { a, b, c, d };

        Assert.Equal([new TuningConflict("sysctl/vm.swappiness", "b")], ConflictDetector.Find(a, all, nodes));
        Assert.Equal(["a", "c"], ConflictDetector.Find(b, all, nodes).Select(x => x.Other));
        Assert.Empty(ConflictDetector.Find(d, all, nodes));
    }

    [Fact]
    public void RingsCoalescingOffloadsAndPause_MergeAsFourKnobs_EachWonOnItsOwn()
    {
        var high = Tuning("high", priority: 5);
        high.Spec.Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth*"] }, Rings = new RingsSpec { Rx = 4096 }, Offloads = new OffloadsSpec { Lro = false } };
        var low = Tuning("low", priority: 1);
        low.Spec.Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth*"] }, Rings = new RingsSpec { Rx = 512 },
            Coalesce = new CoalesceSpec { AdaptiveRx = false, RxUsecs = 8 }, Pause = new PauseSpec { Rx = true },
        };
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(high), Contribution.Current(low)], previous: null);

        Assert.Empty(result.Conflicts);
        var nic = result.Spec.Nic!;
        Assert.Equal(4096, nic.Rings!.Rx);
        Assert.False(nic.Offloads!.Lro);
        Assert.Equal(8, nic.Coalesce!.RxUsecs);
        Assert.True(nic.Pause!.Rx);
        Assert.Equal(["nic.interfaces", "nic.offloads", "nic.rings"], result.Spec.Sources!.Single(s => s.Name == "high").Knobs);
        Assert.Equal(["nic.coalesce", "nic.pause"], result.Spec.Sources!.Single(s => s.Name == "low").Knobs);
    }

    [Fact]
    public void RssAndTxQueueLength_MergeAsTwoKnobs_EachWonOnItsOwn()
    {
        var high = Tuning("high", priority: 5);
        high.Spec.Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth*"] }, Rss = new RssSpec { Equal = 4 } };
        var low = Tuning("low", priority: 1);
        low.Spec.Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth*"] }, TxQueueLength = 10000,
            Rss = new RssSpec { RxFlowHash = [new RxFlowHashSpec { FlowType = "udp4", Fields = "sdfn" }] },
        };
        var result = NodeSpecMerger.Merge("n1", [Contribution.Current(high), Contribution.Current(low)], previous: null);

        Assert.Empty(result.Conflicts);
        var nic = result.Spec.Nic!;
        // The whole RSS spec is one knob: the higher priority's table wins, and the lower one's hash fields with it lose.
        Assert.Equal(4, nic.Rss!.Equal);
        Assert.Null(nic.Rss.RxFlowHash);
        Assert.Equal(10000, nic.TxQueueLength);
        Assert.Equal(["nic.interfaces", "nic.rss"], result.Spec.Sources!.Single(s => s.Name == "high").Knobs);
        Assert.Equal(["nic.txQueueLength"], result.Spec.Sources!.Single(s => s.Name == "low").Knobs);
    }
}
