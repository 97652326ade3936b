using System.Globalization;

namespace NetTune.DataPlane;

/// <summary>
/// The 2 MiB hugepages this process may still fault in: its hugetlb cgroup's limit less its usage at start (a pod that
/// requests hugepages-2Mi gets that limit from the kubelet). A hugepage faulted beyond the limit kills the process
/// with SIGBUS, and mmap(MAP_HUGETLB) does not check it (only the kernel's reservation accounting would), so slabs
/// come from hugepages only while this budget lasts and from ordinary pages after.
/// </summary>
internal static class HugepageBudget
{
    private static long _left = Read("/");

    /// <summary>Takes <paramref name="bytes"/> from the budget; false (nothing taken) when not that much is left.</summary>
    public static bool TryTake(long bytes)
    {
        while (true)
        {
            var left = Volatile.Read(ref _left);
            if (left < bytes) return false;
            if (Interlocked.CompareExchange(ref _left, left - bytes, left) == left) return true;
        }
    }

    /// <summary>
    /// The bytes of 2 MiB hugepages left under the hugetlb cgroup of this process, read below <paramref name="root"/>;
    /// long.MaxValue when no limit is set or no hugetlb controller is found (the kernel's pool then decides).
    /// </summary>
    public static long Read(string root)
    {
        var limit = long.MaxValue;
        foreach (var (max, current) in Candidates(root))
        {
            var text = KernelFiles.TryRead(max);
            if (text is null) continue;
            if (text == "max") return long.MaxValue;
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes)) continue;
            var used = long.TryParse(KernelFiles.TryRead(current), NumberStyles.None, CultureInfo.InvariantCulture, out var u) ? u : 0;
            limit = Math.Max(0, bytes - used);
            break;
        }
        return limit;
    }

    /// <summary>The limit and usage files: cgroup v2 (unified), then v1, each at this process's cgroup and at the root of a cgroup namespace.</summary>
    private static IEnumerable<(string Max, string Current)> Candidates(string root)
    {
        var fs = Path.Combine(root, "sys/fs/cgroup");
        string? unified = null, v1 = null;
        foreach (var line in KernelFiles.TryReadLines(Path.Combine(root, "proc/self/cgroup")))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            if (parts[0] == "0" && parts[1].Length == 0) unified = parts[2].TrimStart('/');
            else if (parts[1].Split(',').Contains("hugetlb")) v1 = parts[2].TrimStart('/');
        }
        if (v1 is not null)
        {
            yield return (Path.Combine(fs, "hugetlb", v1, "hugetlb.2MB.limit_in_bytes"), Path.Combine(fs, "hugetlb", v1, "hugetlb.2MB.usage_in_bytes"));
            yield return (Path.Combine(fs, "hugetlb", "hugetlb.2MB.limit_in_bytes"), Path.Combine(fs, "hugetlb", "hugetlb.2MB.usage_in_bytes"));
        }
        foreach (var v2 in new[] { fs, Path.Combine(fs, "unified") })
        {
            if (unified is { Length: > 0 }) yield return (Path.Combine(v2, unified, "hugetlb.2MB.max"), Path.Combine(v2, unified, "hugetlb.2MB.current"));
            yield return (Path.Combine(v2, "hugetlb.2MB.max"), Path.Combine(v2, "hugetlb.2MB.current"));
        }
    }
}
