using System.Globalization;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Planning;

/// <summary>Allow-listed sysctls, plus net.core.rps_sock_flow_entries when RFS asks for a flow table.</summary>
public static class SysctlPlanner
{
    public const string RpsSockFlowEntries = "net.core.rps_sock_flow_entries";

    public static (IReadOnlyList<DesiredKnob> Knobs, IReadOnlyList<PlanNote> Notes) Plan(HostSnapshot host, IReadOnlyDictionary<string, string>? sysctls, int? rfsFlowEntries)
    {
        var wanted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (rfsFlowEntries is { } flows) wanted[RpsSockFlowEntries] = flows.ToString(CultureInfo.InvariantCulture);
        foreach (var (k, v) in sysctls ?? new Dictionary<string, string>()) wanted[k] = v; // an explicit sysctl wins over RFS

        var knobs = new List<DesiredKnob>();
        var notes = new List<PlanNote>();
        foreach (var (key, raw) in wanted)
        {
            var knob = $"sysctl/{key}";
            if (!SysctlAllowList.IsAllowed(key))
            {
                notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"{key} is not in the sysctl allow-list"));
                continue;
            }
            if (!host.Sysctls.TryGetValue(key, out var current))
            {
                notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"{key} does not exist on this kernel"));
                continue;
            }
            if (Refusal(host, key, raw) is { } reason)
            {
                notes.Add(new PlanNote(knob, KnobOutcome.Failed, $"{key} refused: {reason}"));
                continue;
            }
            var target = KnobValues.NormalizeSysctl(raw);
            if (key == RpsSockFlowEntries && long.TryParse(target, CultureInfo.InvariantCulture, out var n))
                target = KnobValues.RoundUpPowerOfTwo(n).ToString(CultureInfo.InvariantCulture);
            knobs.Add(new DesiredKnob(knob, KnobKind.Sysctl, SysctlAllowList.ProcPath(key), current, target));
        }
        return (knobs, notes);
    }

    /// <summary>Most of vm.min_free_kbytes may take of the node's memory: the kernel keeps that much free for itself.</summary>
    public const int MinFreeKbytesMaxPercent = 5;

    /// <summary>Why the agent will not write <paramref name="value"/> to <paramref name="key"/> on this host, or null.</summary>
    public static string? Refusal(HostSnapshot host, string key, string value)
    {
        // The API's checks again: an old API server ignores CEL and a NodeState can be written by hand.
        if (SysctlAllowList.Check(key, value) is { } invalid) return invalid;
        if (key.StartsWith("net.", StringComparison.Ordinal) && host.NetNamespace.SameAsHost != true)
            return $"{host.NetNamespace.Detail}; a net sysctl written from here would not tune the host";
        var normalized = KnobValues.NormalizeSysctl(value);
        if (key == "net.ipv4.tcp_congestion_control" && host.AvailableCongestionControl is { } available && !available.Contains(normalized, StringComparer.Ordinal))
            return $"'{normalized}' is not offered by this kernel (tcp_available_congestion_control: {string.Join(' ', available)}); load its module first";
        if (key == "vm.min_free_kbytes" && long.TryParse(normalized, CultureInfo.InvariantCulture, out var kb) && host.MemoryBytes > 0
            && kb * 1024 > host.MemoryBytes * MinFreeKbytesMaxPercent / 100)
            return $"{kb} kB is more than {MinFreeKbytesMaxPercent}% of the node's {host.MemoryBytes / 1024} kB of memory";
        return null;
    }
}
