using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Topology;

namespace NetTune.Agent.Tests;

/// <summary>Discovery on this machine's own /sys and /proc (read only), checked against what shell tools report.</summary>
public sealed class ThisHostDiscoveryTests
{
    [Fact]
    public void RealHost_NodesCpusAndNicsMatchTheShellsView()
    {
        if (!Directory.Exists("/sys/devices/system/cpu")) return;
        var host = new TopologyDiscovery(new HostFileSystem("/"), new EthtoolChannelControl()).Discover();
        var nodes = Directory.Exists("/sys/devices/system/node") ? Directory.GetDirectories("/sys/devices/system/node", "node*").Length : 1;
        Assert.Equal(Math.Max(nodes, 1), host.NumaNodes.Count);
        Assert.Equal(Environment.ProcessorCount, host.OnlineCpus.Count);

        var withDevice = Directory.GetFileSystemEntries("/sys/class/net").Select(Path.GetFileName)
            .Where(n => n != "lo" && Path.Exists($"/sys/class/net/{n}/device")).Order().ToArray();
        Assert.Equal(withDevice, host.Nics.Where(n => n.Driver is not null).Select(n => n.Name).Order().ToArray());
        foreach (var nic in host.Nics)
        {
            var device = $"/sys/class/net/{nic.Name}/device";
            if (!Path.Exists(device)) continue;
            // The NUMA node is the device's own, or its PCI parent's when the device (virtio) has none.
            var own = Path.Join(Proc.Check("readlink", "-f", device).Trim(), "numa_node");
            var parent = Path.Join(Proc.Check("readlink", "-f", device + "/..").Trim(), "numa_node");
            var expected = File.Exists(own) ? File.ReadAllText(own).Trim() : File.ReadAllText(parent).Trim();
            Assert.Equal(expected, $"{nic.NumaNode}");
            Assert.Equal(Directory.GetDirectories($"/sys/class/net/{nic.Name}/queues", "rx-*").Length, nic.RxQueues.Count);

            var interrupts = File.ReadAllLines("/proc/interrupts");
            foreach (var irq in nic.Irqs)
            {
                var line = interrupts.Single(l => l.TrimStart().StartsWith($"{irq.Irq}:", StringComparison.Ordinal));
                Assert.EndsWith(irq.Name, line.TrimEnd());
                Assert.Contains($"{irq.Queue}", irq.Name);
                Assert.Equal(File.ReadAllText($"/proc/irq/{irq.Irq}/smp_affinity_list").Trim(), irq.AffinityList);
            }
        }
    }
}
