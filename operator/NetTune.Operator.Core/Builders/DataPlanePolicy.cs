using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Builders;

/// <summary>
/// What a NetworkTuning's data plane may use, set by the cluster admin (chart values, operator flags): creating a
/// NetworkTuning otherwise amounts to running any image with host networking on every selected node and serving any
/// host folder. Empty lists allow anything (the operator's default; the chart ships restrictive lists).
/// </summary>
/// <param name="Images">Image patterns; '*' matches any run of characters, e.g. "registry.example.com/nettune/dataplane:*".</param>
/// <param name="HostPaths">Absolute folders; a hostPath is allowed when it is one of them or lies below one.</param>
public sealed record DataPlanePolicy(IReadOnlyList<string> Images, IReadOnlyList<string> HostPaths)
{
    public static readonly DataPlanePolicy Any = new([], []);

    /// <summary>The data plane runs as a non-root user without capabilities, which cannot bind ports below this.</summary>
    public const int FirstUnprivilegedPort = 1024;

    /// <summary>Why <paramref name="dp"/> is not allowed, or null.</summary>
    public string? Refusal(DataPlaneSpec? dp)
    {
        if (dp is null || !dp.Enabled) return null;
        var problems = new List<string>();
        if (Images.Count > 0 && !Images.Any(p => Glob(p, dp.Image ?? "")))
            problems.Add($"image '{dp.Image}' is not in the data-plane image allow-list ({string.Join(", ", Images)})");
        if (dp.Mode == DataPlaneMode.StaticFiles && dp.StaticFiles?.HostPath is { } path && HostPaths.Count > 0 && !HostPaths.Any(root => Below(root, path)))
            problems.Add($"hostPath '{path}' is not below an allowed folder ({string.Join(", ", HostPaths)})");
        if (dp.Port < FirstUnprivilegedPort || dp.AdminPort < FirstUnprivilegedPort)
            problems.Add($"ports below {FirstUnprivilegedPort} (port {dp.Port}, adminPort {dp.AdminPort}) need root, and the data plane runs unprivileged");
        return problems.Count == 0 ? null : "spec.dataPlane: " + string.Join("; ", problems);
    }

    private static bool Below(string root, string path)
    {
        // ".." would climb out of an allowed folder; the kubelet mounts the path as written.
        if (!path.StartsWith('/') || path.Split('/').Any(s => s is ".." or ".")) return false;
        var r = root.TrimEnd('/');
        var p = path.TrimEnd('/');
        return r.Length == 0 || p == r || p.StartsWith(r + "/", StringComparison.Ordinal);
    }

    private static bool Glob(string pattern, string value)
    {
        var parts = pattern.Split('*');
        if (parts.Length == 1) return pattern == value;
        if (!value.StartsWith(parts[0], StringComparison.Ordinal)) return false;
        var at = parts[0].Length;
        for (var i = 1; i < parts.Length - 1; i++)
        {
            var found = value.IndexOf(parts[i], at, StringComparison.Ordinal);
            if (found < 0) return false;
            at = found + parts[i].Length;
        }
        var last = parts[^1];
        return value.Length - at >= last.Length && value.EndsWith(last, StringComparison.Ordinal);
    }
}
