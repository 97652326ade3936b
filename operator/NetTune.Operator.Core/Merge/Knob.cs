using k8s;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Merge;

/// <summary>
/// One tunable setting of a node, the unit of the priority merge. NIC settings carry the interface selector they
/// apply to, because a channel count means nothing without the interfaces it is for.
/// </summary>
/// <param name="Id">nic.interfaces, nic.channels, nic.irqAffinity, nic.rps, nic.xps, nic.rings, nic.coalesce, nic.offloads, nic.pause, nic.rss, nic.txQueueLength, hugepages/2Mi, sysctl/net.core.somaxconn...</param>
/// <param name="Value">The setting: a ChannelsSpec, IrqAffinitySpec, RpsSpec, XpsSpec, RingsSpec, CoalesceSpec, OffloadsSpec, PauseSpec, RssSpec, InterfaceSelector, the transmit queue length, HugepagesSpec, or the housekeeping cpulist or sysctl string.</param>
/// <param name="Canonical">The value as canonical JSON, to compare values.</param>
public sealed record Knob(string Id, object Value, string Canonical)
{
    public const string NicInterfaces = "nic.interfaces";
    public const string NicChannels = "nic.channels";
    public const string NicIrqAffinity = "nic.irqAffinity";
    public const string NicRps = "nic.rps";
    public const string NicXps = "nic.xps";
    public const string NicHousekeepingCpus = "nic.housekeepingCpus";
    public const string NicRings = "nic.rings";
    public const string NicCoalesce = "nic.coalesce";
    public const string NicOffloads = "nic.offloads";
    public const string NicPause = "nic.pause";
    public const string NicRss = "nic.rss";
    public const string NicTxQueueLength = "nic.txQueueLength";

    /// <summary>The NIC knobs besides the interfaces, each merged on its own among tunings that select the same interfaces.</summary>
    public static readonly IReadOnlyList<string> NicSettings = [NicChannels, NicIrqAffinity, NicRps, NicXps, NicHousekeepingCpus, NicRings, NicCoalesce, NicOffloads, NicPause, NicRss, NicTxQueueLength];
    public const string HugepagesPrefix = "hugepages/";
    public const string SysctlPrefix = "sysctl/";

    public bool IsNic => Id.StartsWith("nic.", StringComparison.Ordinal);

    public static Knob Of(string id, object value) => new(id, value, KubernetesJson.Serialize(value));
}

/// <summary>Splits specs into knobs and puts knobs back together into a NodeState spec.</summary>
public static class KnobSet
{
    public static IReadOnlyDictionary<string, Knob> From(NetworkTuningSpec spec) => From(spec.Nic, spec.Hugepages, spec.Sysctls);

    public static IReadOnlyDictionary<string, Knob> From(NodeStateSpec spec) => From(spec.Nic, spec.Hugepages, spec.Sysctls);

    private static Dictionary<string, Knob> From(NicSpec? nic, List<HugepagesSpec>? hugepages, Dictionary<string, string>? sysctls)
    {
        var knobs = new Dictionary<string, Knob>(StringComparer.Ordinal);
        if (nic?.Interfaces is { } interfaces)
        {
            void Add(string id, object? value)
            {
                if (value is not null) knobs[id] = Knob.Of(id, value);
            }
            Add(Knob.NicChannels, nic.Channels);
            Add(Knob.NicIrqAffinity, nic.IrqAffinity);
            Add(Knob.NicRps, nic.Rps);
            Add(Knob.NicXps, nic.Xps);
            Add(Knob.NicHousekeepingCpus, nic.HousekeepingCpus);
            Add(Knob.NicRings, nic.Rings);
            Add(Knob.NicCoalesce, nic.Coalesce);
            Add(Knob.NicOffloads, nic.Offloads);
            Add(Knob.NicPause, nic.Pause);
            Add(Knob.NicRss, nic.Rss);
            Add(Knob.NicTxQueueLength, nic.TxQueueLength);
            // Interfaces alone tune nothing; they only count as a knob next to a setting.
            if (knobs.Count > 0) knobs[Knob.NicInterfaces] = Knob.Of(Knob.NicInterfaces, interfaces);
        }
        foreach (var pages in hugepages ?? [])
            knobs[Knob.HugepagesPrefix + pages.Size] = Knob.Of(Knob.HugepagesPrefix + pages.Size, pages);
        foreach (var (key, value) in sysctls ?? [])
            knobs[Knob.SysctlPrefix + key] = Knob.Of(Knob.SysctlPrefix + key, value);
        return knobs;
    }

    /// <summary>Writes the knobs into <paramref name="target"/>'s nic, hugepages and sysctls (replacing them).</summary>
    public static void WriteTo(NodeStateSpec target, IEnumerable<Knob> knobs)
    {
        target.Nic = null;
        target.Hugepages = null;
        target.Sysctls = null;
        var list = knobs.ToList();
        var interfaces = list.FirstOrDefault(k => k.Id == Knob.NicInterfaces)?.Value as InterfaceSelector;
        if (interfaces is not null && list.Any(k => k.IsNic && k.Id != Knob.NicInterfaces))
        {
            target.Nic = new NicSpec
            {
                Interfaces = interfaces,
                Channels = list.FirstOrDefault(k => k.Id == Knob.NicChannels)?.Value as ChannelsSpec,
                IrqAffinity = list.FirstOrDefault(k => k.Id == Knob.NicIrqAffinity)?.Value as IrqAffinitySpec,
                Rps = list.FirstOrDefault(k => k.Id == Knob.NicRps)?.Value as RpsSpec,
                Xps = list.FirstOrDefault(k => k.Id == Knob.NicXps)?.Value as XpsSpec,
                HousekeepingCpus = list.FirstOrDefault(k => k.Id == Knob.NicHousekeepingCpus)?.Value as string,
                Rings = list.FirstOrDefault(k => k.Id == Knob.NicRings)?.Value as RingsSpec,
                Coalesce = list.FirstOrDefault(k => k.Id == Knob.NicCoalesce)?.Value as CoalesceSpec,
                Offloads = list.FirstOrDefault(k => k.Id == Knob.NicOffloads)?.Value as OffloadsSpec,
                Pause = list.FirstOrDefault(k => k.Id == Knob.NicPause)?.Value as PauseSpec,
                Rss = list.FirstOrDefault(k => k.Id == Knob.NicRss)?.Value as RssSpec,
                TxQueueLength = list.FirstOrDefault(k => k.Id == Knob.NicTxQueueLength)?.Value as int?,
            };
        }
        var pages = list.Where(k => k.Id.StartsWith(Knob.HugepagesPrefix, StringComparison.Ordinal))
            .OrderBy(k => k.Id, StringComparer.Ordinal).Select(k => (HugepagesSpec)k.Value).ToList();
        if (pages.Count > 0) target.Hugepages = pages;
        var sysctls = list.Where(k => k.Id.StartsWith(Knob.SysctlPrefix, StringComparison.Ordinal))
            .ToDictionary(k => k.Id[Knob.SysctlPrefix.Length..], k => (string)k.Value, StringComparer.Ordinal);
        if (sysctls.Count > 0) target.Sysctls = new Dictionary<string, string>(sysctls.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }
}
