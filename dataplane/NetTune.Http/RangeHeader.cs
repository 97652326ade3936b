using System.Buffers.Text;

namespace NetTune.Http;

public enum RangeKind : byte
{
    /// <summary>No usable Range: absent, malformed, multi-range, or not "bytes". Serve the whole file.</summary>
    None,
    Satisfiable,
    Unsatisfiable,
}

public readonly record struct ByteRange(RangeKind Kind, long Start, long Length);

public static class RangeHeader
{
    /// <summary>
    /// Parses a single-range "bytes=" header against a file size. RFC 9110 §14.2 lets a server ignore a
    /// Range it does not understand, so malformed and multi-range values yield <see cref="RangeKind.None"/>.
    /// </summary>
    public static ByteRange Parse(ReadOnlySpan<byte> value, long size)
    {
        value = value.Trim(" \t"u8);
        // Range units are case-insensitive (RFC 9110 §14.1).
        if (value.Length < 6 || !System.Text.Ascii.EqualsIgnoreCase(value[..6], "bytes="u8)) return default;
        var spec = value[6..].Trim(" \t"u8);
        if (spec.Contains((byte)',')) return default;
        int dash = spec.IndexOf((byte)'-');
        if (dash < 0) return default;
        var first = spec[..dash].Trim(" \t"u8);
        var last = spec[(dash + 1)..].Trim(" \t"u8);

        if (first.IsEmpty)
        {
            // Suffix form "-N": the last N bytes.
            if (!TryParseDigits(last, out long suffix)) return default;
            if (suffix == 0 || size == 0) return new ByteRange(RangeKind.Unsatisfiable, 0, 0);
            long len = Math.Min(suffix, size);
            return new ByteRange(RangeKind.Satisfiable, size - len, len);
        }
        if (!TryParseDigits(first, out long start)) return default;
        long end;
        if (last.IsEmpty) end = size - 1;
        else
        {
            if (!TryParseDigits(last, out end)) return default;
            if (end < start) return default;
            end = Math.Min(end, size - 1);
        }
        if (start >= size) return new ByteRange(RangeKind.Unsatisfiable, 0, 0);
        return new ByteRange(RangeKind.Satisfiable, start, end - start + 1);
    }

    private static bool TryParseDigits(ReadOnlySpan<byte> s, out long value)
    {
        value = 0;
        if (s.IsEmpty || s.Length > 18 || s.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0) return false;
        return Utf8Parser.TryParse(s, out value, out int used) && used == s.Length;
    }
}
