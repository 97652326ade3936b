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

/// <summary>Reads and sets the NIC settings other than channels: rings, coalescing, pause frames and features.</summary>
public interface INicSettingsControl
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
