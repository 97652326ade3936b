namespace NetTune.EndToEnd.Tests;

/// <summary>
/// The host values NetTune may write, read from the real kernel: every net.core, net.ipv4 (top level) and vm sysctl,
/// hugepages globally and per NUMA node, each network device's queue masks, and what lies in the agent's journal
/// folder. Two readings compare value by value, so a revert is checked byte for byte.
/// </summary>
public sealed class HostValues
{
    public const string JournalDir = "/var/lib/nettune";

    private HostValues(IReadOnlyDictionary<string, string> values) => Values = values;

    public IReadOnlyDictionary<string, string> Values { get; }

    public static HostValues Read(params string[] devices)
    {
        var values = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var dir in new[] { "/proc/sys/net/core", "/proc/sys/net/ipv4", "/proc/sys/vm" })
            foreach (var file in Directory.EnumerateFiles(dir))
                Add(values, file);
        foreach (var file in Directory.EnumerateFiles("/sys/kernel/mm/hugepages", "nr_hugepages", SearchOption.AllDirectories))
            Add(values, file);
        foreach (var node in Directory.EnumerateDirectories("/sys/devices/system/node", "node*"))
            if (Directory.Exists(Path.Combine(node, "hugepages")))
                foreach (var file in Directory.EnumerateFiles(Path.Combine(node, "hugepages"), "nr_hugepages", SearchOption.AllDirectories))
                    Add(values, file);
        foreach (var device in devices)
        {
            var queues = $"/sys/class/net/{device}/queues";
            if (!Directory.Exists(queues)) continue;
            foreach (var queue in Directory.EnumerateDirectories(queues))
                foreach (var name in new[] { "rps_cpus", "rps_flow_cnt", "xps_cpus", "xps_rxqs" })
                    Add(values, Path.Combine(queue, name));
        }
        values["journal:" + JournalDir] = Directory.Exists(JournalDir)
            ? string.Join(',', Directory.EnumerateFileSystemEntries(JournalDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            : "(absent)";
        return new HostValues(values);
    }

    private static void Add(IDictionary<string, string> values, string path)
    {
        // Write-only and unreadable entries (drop_caches, compact_memory, stat_refresh) have no value to compare.
        try
        {
            values[path] = File.ReadAllText(path).Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>The differences to another reading, one line each ("path: before -> after").</summary>
    public IReadOnlyList<string> DifferencesTo(HostValues after, params string[] ignore)
    {
        var lines = new List<string>();
        foreach (var key in Values.Keys.Union(after.Values.Keys).Order(StringComparer.Ordinal))
        {
            if (ignore.Any(i => key.Contains(i, StringComparison.Ordinal))) continue;
            Values.TryGetValue(key, out var a);
            after.Values.TryGetValue(key, out var b);
            if (a != b) lines.Add($"{key}: {a ?? "(none)"} -> {b ?? "(none)"}");
        }
        return lines;
    }

    public string this[string path] => Values[path];
}
