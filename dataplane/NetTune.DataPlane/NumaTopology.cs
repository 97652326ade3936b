namespace NetTune.DataPlane;

/// <summary>
/// Which NUMA node each CPU belongs to, read from sysfs (devices/system/node/nodeN/cpulist). The root is a
/// flag so tests can hand in a fixture tree shaped like a multi-socket host.
/// </summary>
public static class NumaTopology
{
    /// <summary>CPU → node; empty when the kernel exposes no nodes (a kernel without NUMA support).</summary>
    public static IReadOnlyDictionary<int, int> ReadNodeOfCpus(string sysfsRoot)
    {
        var nodeOf = new Dictionary<int, int>();
        var nodes = Path.Combine(sysfsRoot, "devices", "system", "node");
        if (!Directory.Exists(nodes)) return nodeOf;
        foreach (var dir in Directory.EnumerateDirectories(nodes, "node*"))
        {
            var name = Path.GetFileName(dir);
            if (!int.TryParse(name.AsSpan(4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int node)) continue;
            var listFile = Path.Combine(dir, "cpulist");
            if (!File.Exists(listFile)) continue;
            var text = File.ReadAllText(listFile).Trim();
            // A memory-only node has an empty cpulist.
            if (text.Length == 0) continue;
            IReadOnlyList<int> cpus;
            try { cpus = CpuList.Parse(text); }
            catch (OptionsException e) { throw new StartupException($"{listFile}: {e.Message}"); }
            foreach (var cpu in cpus) nodeOf[cpu] = node;
        }
        return nodeOf;
    }

    /// <summary>
    /// The node each worker's memory is bound to: the explicit --numa-node for all, or else each CPU's own node
    /// (-1: unknown, memory stays unbound).
    /// </summary>
    public static int[] NodesFor(IReadOnlyList<int> workerCpus, int explicitNode, IReadOnlyDictionary<int, int> nodeOfCpu) =>
        workerCpus.Select(cpu => explicitNode >= 0 ? explicitNode : nodeOfCpu.TryGetValue(cpu, out int n) ? n : -1).ToArray();
}
