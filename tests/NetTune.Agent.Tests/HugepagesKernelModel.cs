using System.Globalization;
using System.Text.RegularExpressions;
using NetTune.Agent.Core.Host;

namespace NetTune.Agent.Tests;

/// <summary>
/// A fixture root whose per-node hugepage pools behave like the kernel's (mm/hugetlb.c, set_max_huge_pages): raising
/// nr_hugepages takes pages out of the node's MemFree while it lasts (down to <paramref name="unreclaimableKb"/>) and
/// stops there; lowering frees only free pages, and pages still mapped by a process stay counted in nr_hugepages as
/// surplus_hugepages until released. Every write of a pool is recorded.
/// </summary>
public sealed partial class HugepagesKernelModel(HostFileSystem inner, long unreclaimableKb = 0) : WriteInterceptingFileSystem(inner)
{
    public List<(string Path, long Asked)> PoolWrites { get; } = [];

    /// <summary>Pages of a pool that a process maps right now, by the pool's nr_hugepages path.</summary>
    public Dictionary<string, long> InUse { get; } = new(StringComparer.Ordinal);

    public override HostIoResult Write(string path, string value)
    {
        var m = NodePool().Match(path);
        if (!m.Success) return Inner.Write(path, value);
        var asked = long.Parse(value, CultureInfo.InvariantCulture);
        PoolWrites.Add((path, asked));
        var dir = Path.GetDirectoryName(path)!;
        var meminfo = $"{m.Groups[1].Value}/meminfo";
        var pageKb = long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        var total = Number(path);
        var inUse = InUse.GetValueOrDefault(path);
        var memFree = MemFreeKb(meminfo);
        long next;
        if (asked >= total)
            next = total + Math.Min(asked - total, Math.Max(0, memFree - unreclaimableKb) / pageKb);
        else
            next = Math.Max(asked, inUse);
        SetMemFreeKb(meminfo, memFree - (next - total) * pageKb);
        Inner.Write(path, $"{next}");
        Inner.Write($"{dir}/free_hugepages", $"{next - inUse}");
        Inner.Write($"{dir}/surplus_hugepages", $"{Math.Max(0, next - asked)}");
        return HostIoResult.Success();
    }

    /// <summary>A process unmaps its pages: surplus pages go back to the node's free memory, as the kernel frees them.</summary>
    public void Release(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        var m = NodePool().Match(path);
        var surplus = Number($"{dir}/surplus_hugepages");
        InUse[path] = 0;
        var meminfo = $"{m.Groups[1].Value}/meminfo";
        SetMemFreeKb(meminfo, MemFreeKb(meminfo) + surplus * long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        var total = Number(path) - surplus;
        Inner.Write(path, $"{total}");
        Inner.Write($"{dir}/free_hugepages", $"{total}");
        Inner.Write($"{dir}/surplus_hugepages", "0");
    }

    public long MemFreeKb(string meminfo) =>
        long.Parse(MemFree().Match(Inner.Read(meminfo).Text!).Groups[1].Value, CultureInfo.InvariantCulture);

    private void SetMemFreeKb(string meminfo, long kb)
    {
        var text = Inner.Read(meminfo).Text!;
        File.WriteAllText(Inner.FullPath(meminfo), MemFree().Replace(text, mm => mm.Value.Replace(mm.Groups[1].Value, $"{kb}".PadLeft(mm.Groups[1].Value.Length))));
    }

    private long Number(string path) => long.Parse(Inner.Read(path).Text!.Trim(), CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^(sys/devices/system/node/node\d+)/hugepages/hugepages-(\d+)kB/nr_hugepages$")] private static partial Regex NodePool();
    [GeneratedRegex(@"MemFree:\s+(\d+) kB")] private static partial Regex MemFree();
}
