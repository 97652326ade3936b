using System.Net;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Builders;

/// <summary>
/// What a NetworkTuning's data plane may use, set by the cluster admin (chart values, operator flags): creating a
/// NetworkTuning otherwise amounts to running any image with host networking on every selected node, serving any host
/// folder, proxying to the node's own services or the cloud metadata address, and preempting other pods. An empty
/// list allows nothing; "*" (or "/" for folders) allows anything, and must be written out.
/// </summary>
/// <param name="Images">Image patterns; '*' matches any run of characters, e.g. "registry.example.com/nettune/dataplane:*".</param>
/// <param name="HostPaths">Absolute folders; a hostPath is allowed when it is one of them or lies below one.</param>
/// <param name="PriorityClasses">PriorityClass names (patterns) spec.dataPlane.priorityClassName may name; none set is always fine.</param>
/// <param name="UpstreamNetworks">
/// CIDRs (or "*") where proxy upstreams may be even though they are loopback, link-local or unspecified addresses
/// (127.0.0.0/8, ::1, 169.254.0.0/16 with the cloud metadata address, fe80::/10, 0.0.0.0, ::), refused otherwise.
/// </param>
public sealed record DataPlanePolicy(IReadOnlyList<string> Images, IReadOnlyList<string> HostPaths, IReadOnlyList<string> PriorityClasses,
    IReadOnlyList<string> UpstreamNetworks)
{
    public const string AnyValue = "*";

    /// <summary>Everything allowed, said explicitly (tests and an operator run by hand).</summary>
    public static readonly DataPlanePolicy Any = new([AnyValue], ["/"], [AnyValue], [AnyValue]);

    /// <summary>The data plane runs as a non-root user without capabilities, which cannot bind ports below this.</summary>
    public const int FirstUnprivilegedPort = 1024;

    /// <summary>Why <paramref name="dp"/> is not allowed, or null.</summary>
    public string? Refusal(DataPlaneSpec? dp)
    {
        if (dp is null || !dp.Enabled) return null;
        var problems = new List<string>();
        if (!Images.Any(p => Glob(p, dp.Image ?? "")))
            problems.Add($"image '{dp.Image}' is not in the data-plane image allow-list ({Listed(Images)})");
        if (dp.Mode == DataPlaneMode.StaticFiles && dp.StaticFiles?.HostPath is { } path && !HostPaths.Any(root => Below(root, path)))
            problems.Add($"hostPath '{path}' is not below an allowed folder ({Listed(HostPaths)})");
        if (dp.Port < FirstUnprivilegedPort || dp.AdminPort < FirstUnprivilegedPort)
            problems.Add($"ports below {FirstUnprivilegedPort} (port {dp.Port}, adminPort {dp.AdminPort}) need root, and the data plane runs unprivileged");
        if (dp.PriorityClassName is { Length: > 0 } priority && !PriorityClasses.Any(p => Glob(p, priority)))
            problems.Add($"priorityClassName '{priority}' is not in the allow-list ({Listed(PriorityClasses)})");
        if (dp.Mode == DataPlaneMode.Proxy)
            foreach (var upstream in dp.Proxy?.Upstreams ?? [])
                if (UpstreamRefusal(upstream) is { } why) problems.Add($"upstream '{upstream}': {why}");
        return problems.Count == 0 ? null : "spec.dataPlane: " + string.Join("; ", problems);
    }

    private string? UpstreamRefusal(string upstream)
    {
        var host = Host(upstream);
        if (host is null) return "not host:port";
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
            return UpstreamNetworks.Contains(AnyValue) ? null : "localhost is the node itself (allow it with an upstream network of '*')";
        // Other names resolve when the data plane connects; only addresses can be judged here.
        if (!IPAddress.TryParse(host, out var address)) return null;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        var kind = IPAddress.IsLoopback(address) ? "loopback (the node's own services)"
            : address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) ? "unspecified (the node itself)"
            : address.IsIPv6LinkLocal || IPNetwork.Parse("169.254.0.0/16").Contains(address) ? "link-local (the cloud metadata service lives there)"
            : null;
        if (kind is null) return null;
        return UpstreamNetworks.Any(n => n == AnyValue || (IPNetwork.TryParse(n, out var network) && network.Contains(address)))
            ? null : $"{kind} addresses are refused unless an allowed upstream network covers them ({Listed(UpstreamNetworks)})";
    }

    /// <summary>The host of host:port or [v6]:port, or null.</summary>
    private static string? Host(string upstream)
    {
        if (upstream.StartsWith('['))
        {
            var end = upstream.IndexOf(']');
            return end > 1 && upstream.Length > end + 1 && upstream[end + 1] == ':' ? upstream[1..end] : null;
        }
        var colon = upstream.LastIndexOf(':');
        return colon > 0 ? upstream[..colon] : null;
    }

    private static string Listed(IReadOnlyList<string> list) => list.Count == 0 ? "empty: nothing is allowed" : string.Join(", ", list);

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
