using System.Globalization;
using System.Text;

namespace NetTune.Agent.Core.Host;

/// <summary>A NIC setting read and written as one ethtool structure (ethtool -g/-G, -c/-C, -a/-A).</summary>
public enum NicSettingGroup { Rings, Coalesce, Pause }

/// <summary>
/// Named fields of one <see cref="NicSettingGroup"/> in a fixed order, printed as "rx=1024,tx=512" (switches as on/off)
/// so a value is readable in status and restorable from the journal byte for byte.
/// </summary>
public sealed class NicSettingValues : IEquatable<NicSettingValues>
{
    private readonly SortedDictionary<int, uint> _byIndex = new();

    private NicSettingValues(NicSettingGroup group) => Group = group;

    public NicSettingGroup Group { get; }

    /// <summary>The fields of each group, in the order they print; a subset of the kernel structure's (see the ethtool backends).</summary>
    public static IReadOnlyList<string> Fields(NicSettingGroup group) => group switch
    {
        NicSettingGroup.Rings => ["rx", "rx-mini", "rx-jumbo", "tx"],
        NicSettingGroup.Coalesce => ["adaptive-rx", "adaptive-tx", "rx-usecs", "rx-frames", "tx-usecs", "tx-frames"],
        _ => ["autoneg", "rx", "tx"],
    };

    /// <summary>Fields that are switches (0 off, 1 on) rather than numbers.</summary>
    public static bool IsSwitch(NicSettingGroup group, string field) => group switch
    {
        NicSettingGroup.Coalesce => field.StartsWith("adaptive-", StringComparison.Ordinal),
        NicSettingGroup.Pause => true,
        _ => false,
    };

    public static NicSettingValues Empty(NicSettingGroup group) => new(group);

    public IEnumerable<string> Names => _byIndex.Keys.Select(i => Fields(Group)[i]);

    public uint? this[string field] => Index(field) is { } i && _byIndex.TryGetValue(i, out var v) ? v : null;

    public NicSettingValues With(string field, uint value)
    {
        var i = Index(field) ?? throw new ArgumentException($"{Group} has no field '{field}'", nameof(field));
        var copy = Copy();
        copy._byIndex[i] = value;
        return copy;
    }

    /// <summary>These values with every field of <paramref name="other"/> put over them.</summary>
    public NicSettingValues Over(NicSettingValues other)
    {
        var copy = other.Copy();
        foreach (var (i, v) in _byIndex) copy._byIndex[i] = v;
        return copy;
    }

    /// <summary>Only the fields named in <paramref name="fields"/>.</summary>
    public NicSettingValues Only(IEnumerable<string> fields)
    {
        var copy = new NicSettingValues(Group);
        foreach (var f in fields)
            if (Index(f) is { } i && _byIndex.TryGetValue(i, out var v)) copy._byIndex[i] = v;
        return copy;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var (i, v) in _byIndex)
        {
            if (sb.Length > 0) sb.Append(',');
            var name = Fields(Group)[i];
            sb.Append(name).Append('=');
            if (IsSwitch(Group, name)) sb.Append(v != 0 ? "on" : "off");
            else sb.Append(v.ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    public static bool TryParse(NicSettingGroup group, string? text, out NicSettingValues values)
    {
        values = new NicSettingValues(group);
        if (text is null) return false;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0 || values.Index(part[..eq]) is not { } i) return false;
            var raw = part[(eq + 1)..];
            uint v;
            if (raw == "on") v = 1;
            else if (raw == "off") v = 0;
            else if (!uint.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out v)) return false;
            values._byIndex[i] = v;
        }
        return true;
    }

    public static NicSettingValues Parse(NicSettingGroup group, string text) =>
        TryParse(group, text, out var v) ? v : throw new FormatException($"'{text}' is not {group} values such as {string.Join(",", Fields(group).Select(f => f + "=0"))}");

    public bool Equals(NicSettingValues? other) => other is not null && other.Group == Group && other._byIndex.SequenceEqual(_byIndex);

    public override bool Equals(object? obj) => Equals(obj as NicSettingValues);

    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);

    private int? Index(string field)
    {
        var fields = Fields(Group);
        for (var i = 0; i < fields.Count; i++)
            if (fields[i] == field) return i;
        return null;
    }

    private NicSettingValues Copy()
    {
        var copy = new NicSettingValues(Group);
        foreach (var (i, v) in _byIndex) copy._byIndex[i] = v;
        return copy;
    }
}

/// <summary>What a NIC reports for one group: the values, and for rings the maximum of each field (0: not supported).</summary>
public sealed record NicSetting(NicSettingValues Current, NicSettingValues? Max = null);

/// <summary>One kernel feature (ethtool -k): whether it was asked for, whether it is on, and whether it can change at all.</summary>
public sealed record NicFeature(string Name, bool Requested, bool Active, bool Changeable);

/// <summary>Reads and sets the NIC settings other than channels: rings, coalescing, pause frames, features and RSS.</summary>
public interface INicSettingsControl : IRssControl
{
    /// <summary>The group's values, or the errno (EOPNOTSUPP when the driver does not implement it).</summary>
    (NicSetting? Setting, int Errno) Get(string ifName, NicSettingGroup group);

    /// <summary>
    /// Sets the fields named in <paramref name="values"/>, keeping every other field of the kernel structure as the
    /// driver reports it (read, change, write). Returns 0 or the errno.
    /// </summary>
    int Set(string ifName, NicSettingValues values);

    /// <summary>Every feature of the device, or the errno.</summary>
    (IReadOnlyList<NicFeature>? Features, int Errno) GetFeatures(string ifName);

    /// <summary>Asks for one feature on or off; returns 0 or the errno. Whether it is on afterwards is for the caller to read back.</summary>
    int SetFeature(string ifName, string feature, bool on);
}

/// <summary>
/// An RSS indirection table (ethtool -x) as text: "SIZE:PATTERN", the shortest run of queue indexes that repeats over
/// the whole table ("128:0,1,2,3" is ethtool -X equal 4 on a 128-entry table), prefixed "default " when it is the
/// kernel's default spread over the receive rings (entry i on ring i mod rings; ethtool_rxfh_indir_default), which is
/// also what a reset (ethtool -X default) gives back.
/// </summary>
public static class RssIndirection
{
    public const string DefaultPrefix = "default ";

    public static string Format(IReadOnlyList<uint> table, int rxRings)
    {
        var period = 1;
        while (period < table.Count && !Repeats(table, period)) period++;
        var text = $"{table.Count}:{string.Join(',', table.Take(period))}";
        return IsDefault(table, rxRings) ? DefaultPrefix + text : text;
    }

    public static bool IsDefault(IReadOnlyList<uint> table, int rxRings) =>
        rxRings > 0 && table.Count > 0 && table.Select((q, i) => q == (uint)(i % rxRings)).All(x => x);

    public static bool TryParse(string? text, out uint[] table, out bool isDefault)
    {
        table = [];
        isDefault = false;
        if (text is null) return false;
        if (text.StartsWith(DefaultPrefix, StringComparison.Ordinal))
        {
            isDefault = true;
            text = text[DefaultPrefix.Length..];
        }
        var colon = text.IndexOf(':');
        if (colon <= 0 || !int.TryParse(text[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out var size) || size is <= 0 or > 65536) return false;
        var pattern = new List<uint>();
        foreach (var part in text[(colon + 1)..].Split(','))
        {
            if (!uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var q)) return false;
            pattern.Add(q);
        }
        if (pattern.Count == 0 || pattern.Count > size) return false;
        table = new uint[size];
        for (var i = 0; i < size; i++) table[i] = pattern[i % pattern.Count];
        return true;
    }

    /// <summary>ethtool -X equal N: entry i on queue i mod N.</summary>
    public static uint[] Equal(int size, int queues)
    {
        var table = new uint[size];
        for (var i = 0; i < size; i++) table[i] = (uint)(i % queues);
        return table;
    }

    /// <summary>
    /// ethtool -X weight W0 W1 ...: queue j takes a run of entries in proportion to its weight, as ethtool's own
    /// fill_indir_table lays them out, so the table matches what the ethtool program would set. Null when the weights
    /// add up to 0 or to more than the table has entries (ethtool refuses both).
    /// </summary>
    public static uint[]? Weights(int size, IReadOnlyList<int> weights)
    {
        long sum = weights.Sum(w => (long)w);
        if (sum <= 0 || sum > size) return null;
        var table = new uint[size];
        long partial = 0;
        var j = -1;
        for (var i = 0; i < size; i++)
        {
            while (i >= size * partial / sum)
            {
                j++;
                partial += weights[j];
            }
            table[i] = (uint)j;
        }
        return table;
    }

    private static bool Repeats(IReadOnlyList<uint> table, int period)
    {
        for (var i = period; i < table.Count; i++)
            if (table[i] != table[i % period]) return false;
        return true;
    }
}

/// <summary>
/// The header fields a flow type is hashed on (ethtool -n DEV rx-flow-hash TYPE), as ethtool's letters in a fixed
/// order: m (L2 destination), v (VLAN), t (L3 protocol), s, d (IP source, destination), f, n (L4 bytes 0-1, 2-3).
/// </summary>
public static class RxFlowHashFields
{
    // RXH_* bits of linux/ethtool.h, in the order ethtool prints them.
    private static readonly (char Letter, uint Bit)[] Bits = [('m', 1u << 1), ('v', 1u << 2), ('t', 1u << 3), ('s', 1u << 4), ('d', 1u << 5), ('f', 1u << 6), ('n', 1u << 7)];

    /// <summary>RXH_DISCARD: drop the flow type. Never set by NetTune; shown as r when a device has it.</summary>
    public const uint Discard = 1u << 31;

    /// <summary>The ethtool flow types NetTune sets and their ETHTOOL flow type numbers (TCP_V4_FLOW and so on).</summary>
    public static readonly IReadOnlyList<(string Name, uint FlowType)> FlowTypes =
        [("tcp4", 0x01), ("udp4", 0x02), ("sctp4", 0x03), ("tcp6", 0x05), ("udp6", 0x06), ("sctp6", 0x07)];

    public static string Format(uint bits)
    {
        var sb = new StringBuilder();
        foreach (var (letter, bit) in Bits)
            if ((bits & bit) != 0) sb.Append(letter);
        if ((bits & Discard) != 0) sb.Append('r');
        return sb.Length == 0 ? "none" : sb.ToString();
    }

    public static bool TryParse(string? text, out uint bits)
    {
        bits = 0;
        if (text is null) return false;
        if (text == "none") return true;
        foreach (var c in text)
        {
            if (c == 'r') bits |= Discard;
            else if (Bits.FirstOrDefault(b => b.Letter == c) is { Bit: not 0 } b) bits |= b.Bit;
            else return false;
        }
        return text.Length > 0;
    }

    public static uint? FlowType(string name) => FlowTypes.FirstOrDefault(f => f.Name == name) is { Name: not null } f ? f.FlowType : null;
}

/// <summary>A device's RSS indirection table and the receive rings it spreads over (ethtool -x).</summary>
public sealed record RssTable(int RxRings, uint[] Indirection)
{
    public override string ToString() => RssIndirection.Format(Indirection, RxRings);
}

/// <summary>RSS indirection and hash fields (ethtool -x/-X, -n/-N rx-flow-hash).</summary>
public interface IRssControl
{
    /// <summary>The table and the receive ring count, or the errno (EOPNOTSUPP: the device has no indirection table).</summary>
    (RssTable? Table, int Errno) GetRss(string ifName);

    /// <summary>Writes the whole table; null resets it to the driver's default spread (ethtool -X default). 0 or the errno.</summary>
    int SetRss(string ifName, uint[]? indirection);

    /// <summary>The RXH_* bits one flow type is hashed on, or the errno.</summary>
    (uint? Fields, int Errno) GetFlowHash(string ifName, string flowType);

    /// <summary>Sets the RXH_* bits of one flow type; 0 or the errno.</summary>
    int SetFlowHash(string ifName, string flowType, uint fields);
}
