using System.Globalization;

namespace NetTune.DataPlane;

/// <summary>
/// The memory limit of this process's cgroup: cgroup v1 <c>memory.limit_in_bytes</c> where the v1 memory controller
/// is mounted (hybrid hosts), else cgroup v2 <c>memory.max</c>. The cgroup comes from /proc/self/cgroup and its
/// directory from /proc/self/mountinfo (the mount's root is cut off the path, as in a cgroup namespace); the
/// smallest limit from there up to the mount's root counts, since a parent's limit binds its children too.
/// </summary>
internal static class CgroupMemory
{
    /// <summary>The limit in bytes below <paramref name="root"/> ("/" in production); null when none is set or none is found.</summary>
    public static long? ReadLimit(string root)
    {
        string? v1Path = null, v2Path = null;
        foreach (var line in KernelFiles.TryReadLines(Path.Combine(root, "proc/self/cgroup")))
        {
            var parts = line.Split(':', 3);
            if (parts.Length != 3) continue;
            if (parts[0] == "0" && parts[1].Length == 0) v2Path = parts[2];
            else if (parts[1].Split(',').Contains("memory")) v1Path = parts[2];
        }
        (string Root, string Point)? v1Mount = null, v2Mount = null;
        foreach (var line in KernelFiles.TryReadLines(Path.Combine(root, "proc/self/mountinfo")))
        {
            // id parent major:minor root mount-point options [optional fields] - fstype source super-options
            var fields = line.Split(' ');
            int dash = Array.IndexOf(fields, "-");
            if (dash < 5 || dash + 3 >= fields.Length) continue;
            var mount = (Unescape(fields[3]), Unescape(fields[4]));
            if (fields[dash + 1] == "cgroup" && fields[dash + 3].Split(',').Contains("memory")) v1Mount ??= mount;
            else if (fields[dash + 1] == "cgroup2") v2Mount ??= mount;
        }
        if (v1Path is not null && v1Mount is { } m1)
            return SmallestUpwards(root, m1, v1Path, "memory.limit_in_bytes");
        if (v2Path is not null && v2Mount is { } m2)
            return SmallestUpwards(root, m2, v2Path, "memory.max");
        return null;
    }

    private static long? SmallestUpwards(string root, (string Root, string Point) mount, string cgroup, string file)
    {
        // Inside a cgroup namespace the mount's root is the namespace's; a path outside it cannot be reached from here.
        var relative = cgroup;
        if (mount.Root != "/")
        {
            if (!(cgroup == mount.Root || cgroup.StartsWith(mount.Root + "/", StringComparison.Ordinal))) relative = "/";
            else relative = cgroup[mount.Root.Length..];
        }
        var top = Path.Combine(root, mount.Point.TrimStart('/'));
        var dir = Path.Combine(top, relative.Trim('/'));
        long? smallest = null;
        while (true)
        {
            var text = KernelFiles.TryRead(Path.Combine(dir, file));
            if (text is not null && text != "max"
                && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long bytes) && bytes < MemoryBudget.UnlimitedBytes)
                smallest = Math.Min(smallest ?? long.MaxValue, bytes);
            if (Path.GetFullPath(dir) == Path.GetFullPath(top)) return smallest;
            dir = Path.GetDirectoryName(dir)!;
        }
    }

    /// <summary>mountinfo escapes spaces, tabs, newlines and backslashes in paths as octal (\040).</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var result = new System.Text.StringBuilder(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && field.AsSpan(i + 1, 3).IndexOfAnyExceptInRange('0', '7') < 0)
            {
                result.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else result.Append(field[i]);
        }
        return result.ToString();
    }
}

/// <summary>Reads of kernel files (cgroup, proc) that may be missing or unreadable: null or empty then.</summary>
internal static class KernelFiles
{
    public static string? TryRead(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static string[] TryReadLines(string path)
    {
        try { return File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }
}
