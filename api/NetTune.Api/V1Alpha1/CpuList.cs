namespace NetTune.Api.V1Alpha1;

/// <summary>The kernel's cpulist format ("0-3,8,10-11"), used wherever the API names a set of CPUs.</summary>
public static class CpuList
{
    public const string Pattern = @"^$|^[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*$";

    /// <summary>Parses a cpulist into sorted, distinct CPU ids. Throws <see cref="FormatException"/> on bad input.</summary>
    public static IReadOnlyList<int> Parse(string? text)
    {
        var cpus = new SortedSet<int>();
        if (string.IsNullOrWhiteSpace(text)) return [];
        foreach (var part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-');
            if (dash < 0)
            {
                cpus.Add(ParseId(part, text));
                continue;
            }
            int first = ParseId(part[..dash], text), last = ParseId(part[(dash + 1)..], text);
            if (last < first) throw new FormatException($"cpulist '{text}': range {part} runs backwards");
            for (var cpu = first; cpu <= last; cpu++) cpus.Add(cpu);
        }
        return [.. cpus];
    }

    public static bool TryParse(string? text, out IReadOnlyList<int> cpus)
    {
        try
        {
            cpus = Parse(text);
            return true;
        }
        catch (FormatException)
        {
            cpus = [];
            return false;
        }
    }

    /// <summary>Formats CPU ids as a compact cpulist with ranges.</summary>
    public static string Format(IEnumerable<int> cpus)
    {
        var sorted = cpus.Distinct().Order().ToArray();
        var parts = new List<string>();
        for (var i = 0; i < sorted.Length;)
        {
            var j = i;
            while (j + 1 < sorted.Length && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? $"{sorted[i]}" : $"{sorted[i]}-{sorted[j]}");
            i = j + 1;
        }
        return string.Join(',', parts);
    }

    private static int ParseId(string s, string whole)
    {
        if (!int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) || id > 8191)
            throw new FormatException($"cpulist '{whole}': '{s}' is not a CPU id");
        return id;
    }
}
