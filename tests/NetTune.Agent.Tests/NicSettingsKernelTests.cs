using System.Text.Json;

namespace NetTune.Agent.Tests;

/// <summary>
/// Offloads and coalescing through the real kernel's ethtool ioctls, in a throwaway network namespace: a veth pair
/// (changeable GRO, TSO, GSO and checksumming; LRO fixed off; no rings, coalescing or pause) and a tap device (rx-frames
/// coalescing, its rx_batched). The agent runs as a child under `ip netns exec`; the ethtool program is the
/// independent reader before and after. Nothing outside the namespace is touched, and it is deleted whatever happens.
/// </summary>
public sealed class NicSettingsKernelTests
{
    private const string SpecJson = """
        {"nodeName":"netns","nic":{"interfaces":{"names":["nta","ntt"]},
         "offloads":{"gro":true,"tso":false,"gso":false,"txChecksum":false,"lro":true},
         "coalesce":{"rxFrames":16},
         "rings":{"rx":512},
         "pause":{"rx":true}}}
        """;

    [RootFact]
    public void VethOffloads_AndTapCoalescing_ApplyReadBack_UnsupportedOnesAreSkipped_AndRevertExactly() =>
        WithVethAndTap("ntnic", "", (ns, work) =>
        {
            var before = EthtoolView(ns);
            Assert.Contains("generic-receive-offload: off", InNs(ns, "ethtool -k nta"));
            var spec = Path.Join(work, "spec.json");
            File.WriteAllText(spec, SpecJson);

            var applied = Agent(ns, "once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"));
            Assert.Equal("Applied", applied.GetProperty("kind").GetString());
            Assert.Equal("on", Result(applied, "nic/nta/features/rx-gro", "Applied").GetProperty("value").GetString());
            Result(applied, "nic/nta/features/tx-tcp-segmentation", "Applied");
            Result(applied, "nic/nta/features/tx-checksum-ip-generic", "Applied");
            Assert.Contains("fixed off", Result(applied, "nic/nta/features/rx-lro", "Skipped").GetProperty("message").GetString());
            Assert.Contains("EOPNOTSUPP", Result(applied, "nic/nta/rings", "Skipped").GetProperty("message").GetString());
            Assert.Contains("EOPNOTSUPP", Result(applied, "nic/nta/coalesce", "Skipped").GetProperty("message").GetString());
            Assert.Contains("EOPNOTSUPP", Result(applied, "nic/nta/pause", "Skipped").GetProperty("message").GetString());
            Assert.Contains("rx-frames=16", Result(applied, "nic/ntt/coalesce", "Applied").GetProperty("value").GetString());

            // ethtool itself sees the changes.
            var k = InNs(ns, "ethtool -k nta");
            Assert.Contains("generic-receive-offload: on", k);
            Assert.Contains("tcp-segmentation-offload: off", k);
            Assert.Contains("generic-segmentation-offload: off", k);
            Assert.Contains("tx-checksumming: off", k);
            Assert.Contains("rx-frames: 16", InNs(ns, "ethtool -c ntt"));
            var nta = applied.GetProperty("topology").GetProperty("nics").EnumerateArray().Single(n => n.GetProperty("name").GetString() == "nta");
            Assert.StartsWith("unknown: EOPNOTSUPP", nta.GetProperty("rings").GetString());
            Assert.Contains("rx-gro=on", nta.GetProperty("offloads").GetString());

            // Applying again changes nothing.
            var again = Agent(ns, "once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"), "--plan-only");
            Assert.Equal(0, again.GetProperty("plannedChanges").GetArrayLength());

            var reverted = Agent(ns, "once", "--revert", "--journal-dir", Path.Join(work, "journal"));
            Assert.Equal("Reverted", reverted.GetProperty("kind").GetString());
            Assert.Equal(before, EthtoolView(ns));
            Assert.False(File.Exists(Path.Join(work, "journal", "journal.json")));
        });

    /// <summary>
    /// The transmit queue length through sysfs (the kernel's dev_change_tx_queue_len, as IFLA_TXQLEN) on a veth, and RSS
    /// on veth and a multi-queue tap: both devices answer ETHTOOL_GRXRINGS and GRXFHINDIR with EOPNOTSUPP, so the table
    /// and the hash fields are Skipped with that reason, and nothing else changes.
    /// </summary>
    [RootFact]
    public void VethTxQueueLength_AppliesAndRevertsExactly_AndRssIsSkippedWhereTheKernelHasNone() =>
        WithVethAndTap("ntrss", "multi_queue", (ns, work) =>
        {
            string View() => InNs(ns, "ip -d link show nta; ip -d link show ntt; ethtool -x nta 2>&1; ethtool -n ntt rx-flow-hash tcp4 2>&1; true");
            var before = View();
            Assert.Contains("qlen 1000", InNs(ns, "ip link show nta"));
            Assert.Contains("Operation not supported", InNs(ns, "ethtool -x nta 2>&1 || true"));
            var spec = Path.Join(work, "spec.json");
            File.WriteAllText(spec, """
                {"nodeName":"netns","nic":{"interfaces":{"names":["nta","ntt"]},"txQueueLength":4242,
                 "rss":{"equal":2,"rxFlowHash":[{"flowType":"tcp4","fields":"sdfn"}]}}}
                """);

            var applied = Agent(ns, "once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"));
            Assert.Equal("Applied", applied.GetProperty("kind").GetString());
            Assert.Equal("4242", Result(applied, "nic/nta/txqueuelen", "Applied").GetProperty("value").GetString());
            Assert.Equal("4242", Result(applied, "nic/ntt/txqueuelen", "Applied").GetProperty("value").GetString());
            Assert.Contains("qlen 4242", InNs(ns, "ip link show nta"));
            foreach (var dev in new[] { "nta", "ntt" })
            {
                Assert.Contains("no RSS indirection table (ethtool -x: EOPNOTSUPP", Result(applied, $"nic/{dev}/rss/indirection", "Skipped").GetProperty("message").GetString());
                Assert.Contains("EOPNOTSUPP", Result(applied, $"nic/{dev}/rss/rx-flow-hash/tcp4", "Skipped").GetProperty("message").GetString());
            }

            var reverted = Agent(ns, "once", "--revert", "--journal-dir", Path.Join(work, "journal"));
            Assert.Equal("Reverted", reverted.GetProperty("kind").GetString());
            Assert.Equal(before, View());
            Assert.False(File.Exists(Path.Join(work, "journal", "journal.json")));
        });

    /// <summary>
    /// Runs <paramref name="body"/> with a throwaway namespace holding veth nta/ntb (up) and tap ntt, and a work folder;
    /// both are deleted whatever happens, and the namespace must be gone after.
    /// </summary>
    private static void WithVethAndTap(string prefix, string tapFlags, Action<string, string> body)
    {
        var ns = $"{prefix}-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        var work = Directory.CreateTempSubdirectory($"nettune-agent-{prefix}-").FullName;
        try
        {
            Proc.Check("ip", "netns", "add", ns);
            Proc.Check("ip", "-n", ns, "link", "add", "nta", "type", "veth", "peer", "name", "ntb");
            InNs(ns, $"ip tuntap add dev ntt mode tap {tapFlags} && ip link set nta up && ip link set ntb up");
            body(ns, work);
        }
        finally
        {
            Proc.Run("ip", "netns", "del", ns);
            Directory.Delete(work, recursive: true);
        }
        Assert.DoesNotContain(ns, Proc.Check("ip", "netns", "list"));
    }

    /// <summary>What ethtool prints of the features of both devices and the tap's coalescing.</summary>
    private static string EthtoolView(string ns) => InNs(ns, "ethtool -k nta; ethtool -k ntt; ethtool -c ntt");

    private static string InNs(string ns, string script) => NetnsKernelTests.InNs(ns, script);

    private static JsonElement Agent(string ns, params string[] args) => NetnsKernelTests.Agent(ns, args);

    private static JsonElement Result(JsonElement report, string knob, string outcome)
    {
        var k = report.GetProperty("knobs").EnumerateArray().SingleOrDefault(x => x.GetProperty("knob").GetString() == knob);
        Assert.True(k.ValueKind == JsonValueKind.Object, $"no result for {knob} in {report}");
        Assert.True(k.GetProperty("result").GetString() == outcome, $"{knob}: {k}");
        return k;
    }
}
