using System.Globalization;
using System.Text;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Host;

/// <summary>
/// What a fixture NIC's driver does on a channel change beyond the kernel's queue folders, from
/// .fixture/driver/IFNAME (key=value lines). Modelled on mlx5 (mlx5e_safe_switch_params: the channels are torn down
/// and rebuilt): <c>resets=1</c> puts every queue's rps_cpus/rps_flow_cnt back to 0 and xps_cpus to the driver's
/// default (tx queue i on local CPU i), and frees the completion vectors named <c>irq-name</c> (with <c>{q}</c> for
/// the queue) and requests one per channel anew, with new numbers and the driver's default affinity (vector i on
/// local CPU i); <c>link-down-at-combined=N</c> leaves operstate down while N combined channels are set.
/// </summary>
public static class SimulatedDriver
{
    public static string StatePath(string ifName) => $".fixture/driver/{ifName}";

    public static void OnChannelsChanged(IHostFileSystem fs, string ifName, ChannelCounts counts)
    {
        var read = fs.Read(StatePath(ifName));
        if (!read.Ok) return;
        var cfg = read.Text!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        var root = fs.Root;
        var net = $"sys/class/net/{ifName}";
        if (cfg.TryGetValue("link-down-at-combined", out var down))
            File.WriteAllText(Path.Join(root, net, "operstate"), (down == counts.Combined.ToString(CultureInfo.InvariantCulture) ? "down" : "up") + "\n");
        if (cfg.GetValueOrDefault("resets") != "1") return;

        var cpuIds = CpuMask.GroupWidthFromPossible(fs.Read("sys/devices/system/cpu/possible").Text);
        var pciDir = cfg.GetValueOrDefault("pci-dir");
        var local = pciDir is not null && CpuList.TryParse(StripNewline(fs.Read($"{pciDir}/local_cpulist").Text), out var l) && l.Count > 0
            ? l : Enumerable.Range(0, cpuIds).ToArray();
        var queues = Path.Join(root, net, "queues");
        var txCount = Directory.EnumerateDirectories(queues, "tx-*").Count();
        foreach (var dir in Directory.EnumerateDirectories(queues))
        {
            var name = Path.GetFileName(dir);
            var index = int.Parse(name[3..], CultureInfo.InvariantCulture);
            if (name.StartsWith("rx-", StringComparison.Ordinal))
            {
                File.WriteAllText(Path.Join(dir, "rps_cpus"), CpuMask.Format([], cpuIds) + "\n");
                File.WriteAllText(Path.Join(dir, "rps_flow_cnt"), "0\n");
            }
            else if (txCount > 1)
            {
                File.WriteAllText(Path.Join(dir, "xps_cpus"), CpuMask.Format([local[index % local.Count]], cpuIds) + "\n");
            }
        }
        if (cfg.GetValueOrDefault("irq-name") is { } template && pciDir is not null)
            ReallocateVectors(fs, template, pciDir, Math.Max(counts.Combined + counts.Rx, counts.Combined + counts.Tx), local, cpuIds);
    }

    /// <summary>
    /// A ring change. With <c>ring-resets-affinity=1</c> the driver behaves like ENA (ena_update_queue_params: the
    /// interface goes down and up, its IO vectors are freed and requested again with the same numbers, and
    /// irq_set_affinity_and_hint puts each back on its default CPU, vector q on local CPU q): every vector named
    /// <c>irq-name</c> gets that affinity, whatever was set before.
    /// </summary>
    public static void OnRingsChanged(IHostFileSystem fs, string ifName)
    {
        var read = fs.Read(StatePath(ifName));
        if (!read.Ok) return;
        var cfg = read.Text!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
        if (cfg.GetValueOrDefault("ring-resets-affinity") != "1" || cfg.GetValueOrDefault("irq-name") is not { } template || cfg.GetValueOrDefault("pci-dir") is not { } pciDir) return;
        var cpuIds = CpuMask.GroupWidthFromPossible(fs.Read("sys/devices/system/cpu/possible").Text);
        var local = CpuList.TryParse(StripNewline(fs.Read($"{pciDir}/local_cpulist").Text), out var l) && l.Count > 0 ? l : Enumerable.Range(0, cpuIds).ToArray();
        var (prefix, suffix) = (template[..template.IndexOf("{q}", StringComparison.Ordinal)], template[(template.IndexOf("{q}", StringComparison.Ordinal) + 3)..]);
        foreach (var irq in fs.List("proc/irq"))
            foreach (var action in fs.List($"proc/irq/{irq}"))
            {
                if (!action.StartsWith(prefix, StringComparison.Ordinal) || !action.EndsWith(suffix, StringComparison.Ordinal)
                    || !int.TryParse(action[prefix.Length..^suffix.Length], out var q)) continue;
                var cpu = local[q % local.Count];
                var dir = Path.Join(fs.Root, $"proc/irq/{irq}");
                File.WriteAllText(Path.Join(dir, "smp_affinity_list"), $"{cpu}\n");
                File.WriteAllText(Path.Join(dir, "smp_affinity"), CpuMask.Format([cpu], cpuIds) + "\n");
                File.WriteAllText(Path.Join(dir, "effective_affinity_list"), $"{cpu}\n");
            }
    }

    private static void ReallocateVectors(IHostFileSystem fs, string template, string pciDir, int vectors, IReadOnlyList<int> local, int cpuIds)
    {
        var root = fs.Root;
        var interruptsPath = Path.Join(root, "proc/interrupts");
        var lines = File.ReadAllText(interruptsPath).Split('\n').ToList();
        var cpus = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        var (prefix, suffix) = (template[..template.IndexOf("{q}", StringComparison.Ordinal)], template[(template.IndexOf("{q}", StringComparison.Ordinal) + 3)..]);
        var numbers = new List<int>();
        var keep = new List<string> { lines[0] };
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            var isIrq = colon > 0 && int.TryParse(line[..colon].Trim(), out var n);
            var name = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
            if (isIrq && int.TryParse(line[..colon].Trim(), out n)) numbers.Add(n);
            if (isIrq && name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(suffix, StringComparison.Ordinal)
                && int.TryParse(name[prefix.Length..^suffix.Length], out _))
            {
                // free_irq + the vector released: its folder and msi_irqs entry go.
                var irq = int.Parse(line[..colon].Trim(), CultureInfo.InvariantCulture);
                Directory.Delete(Path.Join(root, $"proc/irq/{irq}"), recursive: true);
                File.Delete(Path.Join(root, pciDir, "msi_irqs", $"{irq}"));
                continue;
            }
            keep.Add(line);
        }
        var next = numbers.Count == 0 ? 1 : numbers.Max() + 1;
        var pci = Path.GetFileName(pciDir);
        var added = new List<(int Irq, string Line)>();
        for (var q = 0; q < vectors; q++)
        {
            var irq = next + q;
            var name = $"{prefix}{q}{suffix}";
            var dir = Path.Join(root, $"proc/irq/{irq}");
            Directory.CreateDirectory(Path.Join(dir, name));
            var cpu = local[q % local.Count];
            File.WriteAllText(Path.Join(dir, "smp_affinity_list"), $"{cpu}\n");
            File.WriteAllText(Path.Join(dir, "smp_affinity"), CpuMask.Format([cpu], cpuIds) + "\n");
            File.WriteAllText(Path.Join(dir, "effective_affinity_list"), $"{cpu}\n");
            File.WriteAllText(Path.Join(root, pciDir, "msi_irqs", $"{irq}"), "msix\n");
            var sb = new StringBuilder().Append(CultureInfo.InvariantCulture, $"{irq,4}:");
            for (var c = 0; c < cpus; c++) sb.Append("0".PadLeft(11));
            sb.Append(CultureInfo.InvariantCulture, $"  PCI-MSIX-{pci}   {q + 1}-edge      {name}");
            added.Add((irq, sb.ToString()));
        }
        // Numbered lines in order, the named ones (NMI, LOC, ...) after them, as the kernel prints them.
        var numbered = keep.Skip(1).Where(IsNumbered).Select(x => (Irq: int.Parse(x[..x.IndexOf(':')].Trim(), CultureInfo.InvariantCulture), Line: x)).Concat(added).OrderBy(x => x.Irq).Select(x => x.Line);
        var rest = keep.Skip(1).Where(x => !IsNumbered(x) && x.Length > 0);
        File.WriteAllText(interruptsPath, string.Join('\n', new[] { keep[0] }.Concat(numbered).Concat(rest)) + "\n");

        static bool IsNumbered(string line) => line.IndexOf(':') is > 0 and var c && int.TryParse(line[..c].Trim(), out _);
    }

    private static string? StripNewline(string? s) => s?.TrimEnd('\n');
}
