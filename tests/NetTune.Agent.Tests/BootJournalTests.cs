using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>The journal across reboots (a new boot id, kernel values back to their defaults) and across agent versions.</summary>
public sealed class BootJournalTests
{
    private const string SecondBoot = "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b";

    /// <summary>
    /// A reboot: every file back to what the kernel and drivers give at boot (<paramref name="bootImage"/>), a new boot
    /// id, and eth1's vectors under new numbers (+50), as a different probe order gives them.
    /// </summary>
    private static void Reboot(FixtureHost host, SortedDictionary<string, string> bootImage)
    {
        Directory.Delete(host.Root, recursive: true);
        foreach (var (rel, v) in bootImage)
        {
            var full = Path.Join(host.Root, rel);
            if (rel.EndsWith('/')) Directory.CreateDirectory(full);
            else if (v.StartsWith("-> ", StringComparison.Ordinal))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                File.CreateSymbolicLink(full, v[3..]);
            }
            else
            {
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                File.WriteAllBytes(full, Convert.FromBase64String(v));
            }
        }
        host.Write(TopologyDiscovery.BootIdPath, SecondBoot);
        var interrupts = host.Read("proc/interrupts").Split('\n');
        for (var irq = 116; irq >= 101; irq--)
        {
            Directory.Move(Path.Join(host.Root, $"proc/irq/{irq}"), Path.Join(host.Root, $"proc/irq/{irq + 50}"));
            File.Move(Path.Join(host.Root, $"sys/devices/pci0000:af/0000:af:00.0/msi_irqs/{irq}"), Path.Join(host.Root, $"sys/devices/pci0000:af/0000:af:00.0/msi_irqs/{irq + 50}"));
            for (var i = 0; i < interrupts.Length; i++)
                if (interrupts[i].StartsWith($" {irq}:", StringComparison.Ordinal)) interrupts[i] = $" {irq + 50}:" + interrupts[i][(irq.ToString().Length + 2)..];
        }
        host.Write("proc/interrupts", string.Join('\n', interrupts));
    }

    private const string Node0Pages2M = "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";

    /// <summary>The second boot begins with 512 2 MiB pages on NUMA node 0 (hugepages= on its kernel command line).</summary>
    private static void RebootWith512Pages(FixtureHost host, SortedDictionary<string, string> bootImage)
    {
        Reboot(host, bootImage);
        host.Write(Node0Pages2M, "512");
        host.Write("sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "512");
    }

    [Fact]
    public void AfterAReboot_TheNodeIsNotTunedUntilReapplied_AndTheOriginalsAreThisBootsValues()
    {
        using var host = FixtureHost.TwoSocket();
        var bootImage = host.TreeImage();
        var firstBoot = host.Read(TopologyDiscovery.BootIdPath);
        host.Write("proc/sys/net/core/somaxconn", "1024"); // the admin's own run-time value, gone with the reboot
        var engine = host.Engine();
        Assert.False(engine.TunedThisBoot());
        var first = engine.Apply(Specs.Full());
        Assert.True(first.Kind == RunKind.Applied, first.Message);
        Assert.False(first.AfterReboot);
        Assert.True(engine.TunedThisBoot());
        var journal = new JournalStore(host.JournalDir).Load();
        Assert.Equal((firstBoot, firstBoot), (journal.BootId, journal.AppliedBootId));
        Assert.Equal("256", journal.Find("hugepages/node0/2Mi")!.Original);

        RebootWith512Pages(host, bootImage);
        var afterBoot = host.Engine(); // a new agent process in the new boot
        Assert.False(afterBoot.TunedThisBoot());
        Assert.Equal("4096", host.Read("proc/sys/net/core/somaxconn"));

        var spec = Specs.Full();
        spec.Hugepages![0].PagesPerNumaNode = 768;
        var again = afterBoot.Apply(spec);
        Assert.True(again.Kind == RunKind.Applied, again.Message);
        Assert.True(again.AfterReboot);
        Assert.Contains("after a reboot", again.Message);
        Assert.True(afterBoot.TunedThisBoot());
        Assert.Equal("9", host.Read("proc/irq/151/smp_affinity_list")); // eth1-TxRx-0 under its new number
        Assert.Equal("768", host.Read(Node0Pages2M));
        journal = new JournalStore(host.JournalDir).Load();
        Assert.Equal((SecondBoot, SecondBoot), (journal.BootId, journal.AppliedBootId));
        // This boot's values, read before this boot's first change: nothing of the previous boot is left.
        Assert.Equal("4096", journal.Find("sysctl/net.core.somaxconn")!.Original);
        Assert.Equal("512", journal.Find("hugepages/node0/2Mi")!.Original);
        Assert.Contains(journal.Entries, e => e.Path == "proc/irq/151/smp_affinity_list");
        Assert.DoesNotContain(journal.Entries, e => e.Path == "proc/irq/101/smp_affinity_list");

        var revert = afterBoot.Revert();
        Assert.True(revert.Kind == RunKind.Reverted, revert.Message);
        Assert.Equal("512", host.Read(Node0Pages2M));
        Assert.Equal("4096", host.Read("proc/sys/net/core/somaxconn"));
        Assert.Equal("0-31", host.Read("proc/irq/151/smp_affinity_list"));
        Assert.Equal("00000006", host.Read("sys/class/net/eth1/queues/rx-12/rps_cpus"));
        Assert.False(afterBoot.TunedThisBoot());
    }

    private const string Node1Pages2M = "sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages";

    private static NodeStateSpec Pages300() => new()
    {
        NodeName = "n",
        Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 300 }],
        Sysctls = new() { ["net.core.somaxconn"] = "8192" },
    };

    [Fact]
    public void AfterAReboot_TheAgentReservesThePreviousBootsPoolsAgainAtItsStart_WithThisBootsValuesAsTheOriginals()
    {
        using var host = FixtureHost.TwoSocket();
        var bootImage = host.TreeImage();
        Assert.Equal(RunKind.Applied, host.Engine().Apply(Pages300()).Kind);
        Assert.Null(host.Engine().ReserveHugepagesAfterReboot()); // the same boot: nothing to do
        var reserved = new JournalStore(host.JournalDir).Load().ReservedHugepages!;
        Assert.Equal([("hugepages/node0/2Mi", "300"), ("hugepages/node1/2Mi", "300")], reserved.Select(r => (r.Knob, r.Pages)));

        Reboot(host, bootImage); // node 0 begins with 256 pages again, node 1 with none
        Assert.Equal(("256", "0"), (host.Read(Node0Pages2M), host.Read(Node1Pages2M)));
        var afterBoot = host.Engine(); // the agent's start in the new boot, before it reads its NodeState
        var early = afterBoot.ReserveHugepagesAfterReboot();
        Assert.NotNull(early);
        Assert.True(early.Kind == RunKind.Applied, early.Message);
        Assert.Contains("after a reboot", early.Message);
        Assert.Equal(("300", "300"), (host.Read(Node0Pages2M), host.Read(Node1Pages2M)));
        var journal = new JournalStore(host.JournalDir).Load();
        Assert.Equal((SecondBoot, (string?)null), (journal.BootId, journal.AppliedBootId));
        Assert.Equal(("256", "0"), (journal.Find("hugepages/node0/2Mi")!.Original, journal.Find("hugepages/node1/2Mi")!.Original));
        Assert.False(afterBoot.TunedThisBoot()); // the rest of the tuning is not there yet
        Assert.Null(afterBoot.ReserveHugepagesAfterReboot()); // once per boot

        // The first apply finds the pools in place and does the rest; the revert gives back this boot's values.
        var apply = afterBoot.Apply(Pages300());
        Assert.True(apply.Kind == RunKind.Applied, apply.Message);
        Assert.True(afterBoot.TunedThisBoot());
        Assert.Equal("8192", host.Read("proc/sys/net/core/somaxconn"));
        Assert.Equal(RunKind.Reverted, afterBoot.Revert().Kind);
        Assert.Equal(("256", "0", "4096"), (host.Read(Node0Pages2M), host.Read(Node1Pages2M), host.Read("proc/sys/net/core/somaxconn")));
    }

    [Fact]
    public void AfterAReboot_UnderTheStaticMemoryManager_NothingIsReservedAtRunTime_AndTheReportSaysHowAtBoot()
    {
        using var host = FixtureHost.TwoSocket();
        var bootImage = host.TreeImage();
        Assert.Equal(RunKind.Applied, host.Engine().Apply(Pages300()).Kind);
        Reboot(host, bootImage);
        Directory.CreateDirectory(Path.Join(host.Root, "var/lib/kubelet"));
        host.Write("var/lib/kubelet/memory_manager_state", """{"policyName":"Static","machineState":{},"entries":{},"checksum":1}""");
        var before = host.TreeImage();
        var early = host.Engine().ReserveHugepagesAfterReboot();
        Assert.NotNull(early);
        Assert.Equal(RunKind.Failed, early.Kind);
        Assert.Contains("Static policy", early.Message);
        Assert.EndsWith("hugepagesz=2M hugepages=0:300,1:300", early.Message);
        Assert.Equal(before, host.TreeImage());
    }

    [Fact]
    public void ARevertInABootThatWasNeverTuned_RestoresNothing_AndDropsThePreviousBootsJournal()
    {
        using var host = FixtureHost.TwoSocket();
        var bootImage = host.TreeImage();
        Assert.Equal(RunKind.Applied, host.Engine().Apply(Specs.Full()).Kind);

        RebootWith512Pages(host, bootImage);
        var before = host.TreeImage();
        var revert = host.Engine().Revert();
        Assert.True(revert.Kind == RunKind.Reverted, revert.Message);
        Assert.Contains("previous boot", revert.Message);
        Assert.Equal(before, host.TreeImage()); // not one file written: 512 pages stay 512
        Assert.False(File.Exists(new JournalStore(host.JournalDir).FilePath));
    }

    [Fact]
    public void AFailedApply_LeavesTheBootUntuned()
    {
        using var host = FixtureHost.TwoSocket();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(Specs.Full()).Kind);
        var spec = Specs.Full();
        spec.Nic!.Channels = new ChannelsSpec { Combined = 64 };
        Assert.Equal(RunKind.Failed, engine.Apply(spec).Kind);
        Assert.False(engine.TunedThisBoot());
        Assert.Null(new JournalStore(host.JournalDir).Load().AppliedBootId);
    }

    private static byte[] Envelope(string body) =>
        Encoding.UTF8.GetBytes("nettune-journal v1 sha256=" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(body))) + "\n" + body);

    [Fact]
    public void AFormat1Journal_IsMigrated_AndKeptAsThePreviousGoodCopyByTheFirstSave()
    {
        using var host = FixtureHost.ThisVm();
        // What the agent wrote before bodies had a format number or boots.
        const string v1 = """
            {
              "entries": [
                {
                  "knob": "sysctl/vm.swappiness",
                  "kind": "Sysctl",
                  "path": "proc/sys/vm/swappiness",
                  "original": "60"
                }
              ]
            }

            """;
        Directory.CreateDirectory(host.JournalDir);
        var store = new JournalStore(host.JournalDir);
        File.WriteAllBytes(store.FilePath, Envelope(v1));
        host.Write("proc/sys/vm/swappiness", "10");

        var loaded = store.Load();
        Assert.Equal(2, loaded.FormatVersion);
        Assert.Null(loaded.BootId);
        Assert.Equal("60", Assert.Single(loaded.Entries).Original);

        var report = host.Engine().Apply(new NodeStateSpec { NodeName = "n", Sysctls = new() { ["vm.swappiness"] = "10", ["net.core.somaxconn"] = "8192" } });
        Assert.True(report.Kind == RunKind.Applied, report.Message);
        Assert.Equal(Envelope(v1), File.ReadAllBytes(store.PreviousPath));
        var saved = store.Load();
        Assert.Equal(TuningJournal.CurrentFormat, saved.FormatVersion);
        Assert.Equal(host.Read(TopologyDiscovery.BootIdPath), saved.BootId);
        Assert.Contains("\"formatVersion\": 2", File.ReadAllText(store.FilePath));
        Assert.Equal("60", saved.Find("sysctl/vm.swappiness")!.Original);

        Assert.Equal(RunKind.Reverted, host.Engine().Revert().Kind);
        Assert.Equal("60", host.Read("proc/sys/vm/swappiness"));
        Assert.False(File.Exists(store.PreviousPath));
    }

    // The journal types of the agent before format 2, as they were: what a downgraded agent reads with.
    private sealed record V1Entry(
        [property: JsonPropertyName("knob")] string Knob, [property: JsonPropertyName("kind")] string Kind,
        [property: JsonPropertyName("path")] string Path, [property: JsonPropertyName("original")] string Original,
        [property: JsonPropertyName("identity")] string? Identity = null, [property: JsonPropertyName("lostWithChannels")] bool? LostWithChannels = null);

    private sealed record V1Journal([property: JsonPropertyName("entries")] IReadOnlyList<V1Entry> Entries);

    [Fact]
    public void AFormat2Journal_KeepsTheFormat1HeaderAndFields_SoADowngradedAgentReadsIt()
    {
        using var host = FixtureHost.Mlx5Bond();
        var spec = new NodeStateSpec { NodeName = "n", Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["ens1f0np0"] }, Channels = new ChannelsSpec { Combined = 4 } } };
        Assert.Equal(RunKind.Applied, host.Engine().Apply(spec).Kind);
        var text = File.ReadAllText(new JournalStore(host.JournalDir).FilePath);
        Assert.StartsWith("nettune-journal v1 sha256=", text);
        var body = text[(text.IndexOf('\n') + 1)..];
        var old = JsonSerializer.Deserialize<V1Journal>(body)!;
        var current = new JournalStore(host.JournalDir).Load();
        Assert.Equal(current.Entries.Select(e => (e.Knob, e.Kind.ToString(), e.Path, e.Original, e.Identity)), old.Entries.Select(e => (e.Knob, e.Kind, e.Path, e.Original, e.Identity)));
        Assert.Contains(current.Entries, e => e.BeforeChannels == true && e.Nic == "ens1f0np0");
    }

    [Fact]
    public void ANewerFormat_IsReadAsFarAsUnderstood_NotTakenForDamage()
    {
        using var host = FixtureHost.ThisVm();
        Directory.CreateDirectory(host.JournalDir);
        var store = new JournalStore(host.JournalDir);
        File.WriteAllBytes(store.FilePath, Envelope("""
            {"formatVersion":3,"bootId":"x","somethingNew":{"a":1},
             "entries":[{"knob":"sysctl/vm.swappiness","kind":"Sysctl","path":"proc/sys/vm/swappiness","original":"60","addedLater":true}]}
            """));
        var journal = store.Load();
        Assert.Equal(3, journal.FormatVersion);
        Assert.Equal("60", Assert.Single(journal.Entries).Original);
    }

    [Fact]
    public void Damage_IsStillReported_NamingThePreviousGoodCopy()
    {
        using var host = FixtureHost.ThisVm();
        var engine = host.Engine();
        Assert.Equal(RunKind.Applied, engine.Apply(new NodeStateSpec { NodeName = "n", Sysctls = new() { ["vm.swappiness"] = "10" } }).Kind);
        Assert.Equal(RunKind.Applied, engine.Apply(new NodeStateSpec { NodeName = "n", Sysctls = new() { ["vm.swappiness"] = "10", ["net.core.somaxconn"] = "8192" } }).Kind);
        var store = new JournalStore(host.JournalDir);
        var bytes = File.ReadAllBytes(store.FilePath);
        bytes[^5] ^= 0x20;
        File.WriteAllBytes(store.FilePath, bytes);
        var report = engine.Apply(new NodeStateSpec { NodeName = "n" });
        Assert.Equal(RunKind.JournalCorrupt, report.Kind);
        Assert.Contains(store.PreviousPath, report.Message);
        Assert.Equal("10", host.Read("proc/sys/vm/swappiness"));
    }
}
