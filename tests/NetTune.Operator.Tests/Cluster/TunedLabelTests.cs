using NetTune.Api.V1Alpha1;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// The agents write no Node: the operator sets and removes each node's nettune.io/tuned label from its NodeState's
/// status, for the node's current boot only.
/// </summary>
[Collection("cluster")]
public sealed class TunedLabelTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task TheTunedLabelFollowsTheStatusOfTheNodesCurrentBoot()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var node = (await bed.CreateNodesAsync(1))[0];
        await bed.SetBootIdAsync(node, "boot-1");
        await bed.StartOperatorAsync();
        var name = (await bed.CreateTuningAsync("tuned", new NetworkTuningSpec
        {
            NodeSelector = bed.Selector(),
            Sysctls = new() { ["vm.swappiness"] = "5" },
        })).Metadata.Name;
        Task<bool> Tuned() => bed.HasLabelAsync(node, NodeLabels.Tuned, NodeLabels.TunedValue);

        await TestBed.EventuallyAsync(async () => await bed.GetNodeStateAsync(node) is not null, "the NodeState");
        Assert.False(await Tuned());
        await bed.ReportAsync(node, bootId: "boot-1");
        await TestBed.EventuallyAsync(Tuned, "the label set once the agent reported Applied");

        // The node boots again: the settings are gone until the agent applies them in the new boot.
        await bed.SetBootIdAsync(node, "boot-2");
        await TestBed.EventuallyAsync(async () => !await Tuned(), "the label removed after a reboot");
        await bed.ReportAsync(node, bootId: "boot-2");
        await TestBed.EventuallyAsync(Tuned, "the label set again once applied in the new boot");

        await bed.ReportAsync(node, "Failed", "channels: device busy", bootId: "boot-2");
        await TestBed.EventuallyAsync(async () => !await Tuned(), "the label removed after a failed apply");
        await bed.ReportAsync(node, bootId: "boot-2");
        await TestBed.EventuallyAsync(Tuned, "the label set again");

        // Asked to revert: the label goes at once, before (and whether or not) the agent's report arrives.
        await bed.DeleteTuningAsync(name);
        await TestBed.EventuallyAsync(async () => (await bed.GetNodeStateAsync(node))!.Spec.Revert, "the node asked to revert");
        await TestBed.EventuallyAsync(async () => !await Tuned(), "the label removed on the revert");
    }
}
