using System.Globalization;

namespace NetTune.Agent;

public static class DurationParser
{
    /// <summary>"30s", "2m", "1h", "500ms" or plain seconds.</summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        (string num, double scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1) : text.EndsWith('m') ? (text[..^1], 60) : text.EndsWith('h') ? (text[..^1], 3600) : (text, 1);
        if (!double.TryParse(num, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n <= 0) return false;
        value = TimeSpan.FromSeconds(n * scale);
        return true;
    }
}
