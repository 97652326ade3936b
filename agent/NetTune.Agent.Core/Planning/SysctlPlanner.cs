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
            var target = KnobValues.NormalizeSysctl(raw);
            if (key == RpsSockFlowEntries && long.TryParse(target, CultureInfo.InvariantCulture, out var n))
                target = KnobValues.RoundUpPowerOfTwo(n).ToString(CultureInfo.InvariantCulture);
            knobs.Add(new DesiredKnob(knob, KnobKind.Sysctl, SysctlAllowList.ProcPath(key), current, target));
        }
        return (knobs, notes);
    }
}
