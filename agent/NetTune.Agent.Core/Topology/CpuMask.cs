using System.Globalization;
using System.Text;

namespace NetTune.Agent.Core;

/// <summary>
/// The kernel's hex CPU mask format (rps_cpus, xps_cpus, smp_affinity): 32-bit groups of eight hex digits, most
/// significant first, separated by commas; the first group is as wide as the CPU count needs (nr_cpu_ids).
/// </summary>
public static class CpuMask
{
    /// <summary>Formats CPUs as a mask for a machine with <paramref name="cpuIds"/> possible CPU ids (nr_cpu_ids).</summary>
    public static string Format(IEnumerable<int> cpus, int cpuIds)
    {
        var set = cpus.ToHashSet();
        if (cpuIds < 1) cpuIds = 1;
        var max = set.Count == 0 ? 0 : set.Max() + 1;
        if (max > cpuIds) cpuIds = max;
        var groups = (cpuIds + 31) / 32;
        var sb = new StringBuilder();
        for (var g = groups - 1; g >= 0; g--)
        {
            uint word = 0;
            for (var bit = 0; bit < 32; bit++)
                if (set.Contains(g * 32 + bit)) word |= 1u << bit;
            if (g == groups - 1)
            {
                var bitsInTop = cpuIds - g * 32;
                var digits = (bitsInTop + 3) / 4;
                sb.Append(word.ToString("x", CultureInfo.InvariantCulture).PadLeft(digits, '0'));
            }
            else
            {
                sb.Append(',').Append(word.ToString("x8", CultureInfo.InvariantCulture));
            }
        }
        return sb.ToString();
    }

    public static bool TryParse(string? text, out IReadOnlyList<int> cpus)
    {
        cpus = [];
        if (text is null) return false;
        var groups = text.Trim().Split(',');
        var result = new List<int>();
        for (var i = 0; i < groups.Length; i++)
        {
            var g = groups[groups.Length - 1 - i];
            if (g.Length is 0 or > 8 || !uint.TryParse(g, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var word)) return false;
            for (var bit = 0; bit < 32; bit++)
                if ((word & (1u << bit)) != 0) result.Add(i * 32 + bit);
        }
        result.Sort();
        cpus = result;
        return true;
    }

    public static IReadOnlyList<int> Parse(string text) =>
        TryParse(text, out var cpus) ? cpus : throw new FormatException($"'{text}' is not a CPU mask such as 000000ff,ffffffff");

    /// <summary>nr_cpu_ids from sys/devices/system/cpu/possible ("0-255" → 256).</summary>
    public static int GroupWidthFromPossible(string? possible) =>
        NetTune.Api.V1Alpha1.CpuList.TryParse(possible, out var ids) && ids.Count > 0 ? ids[^1] + 1 : 1;
}
