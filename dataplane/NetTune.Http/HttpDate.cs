namespace NetTune.Http;

/// <summary>IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the only date form we emit (RFC 9110 §5.6.7).</summary>
public static class HttpDate
{
    public const int Length = 29;
    private static ReadOnlySpan<byte> Days => "SunMonTueWedThuFriSat"u8;
    private static ReadOnlySpan<byte> Months => "JanFebMarAprMayJunJulAugSepOctNovDec"u8;

    public static void Format(DateTimeOffset time, Span<byte> destination)
    {
        var t = time.UtcDateTime;
        Days.Slice((int)t.DayOfWeek * 3, 3).CopyTo(destination);
        destination[3] = (byte)',';
        destination[4] = (byte)' ';
        Two(destination[5..], t.Day);
        destination[7] = (byte)' ';
        Months.Slice((t.Month - 1) * 3, 3).CopyTo(destination[8..]);
        destination[11] = (byte)' ';
        Two(destination[12..], t.Year / 100);
        Two(destination[14..], t.Year % 100);
        destination[16] = (byte)' ';
        Two(destination[17..], t.Hour);
        destination[19] = (byte)':';
        Two(destination[20..], t.Minute);
        destination[22] = (byte)':';
        Two(destination[23..], t.Second);
        " GMT"u8.CopyTo(destination[25..]);
    }

    /// <summary>Parses IMF-fixdate only; other legacy forms are treated as absent (the condition is ignored).</summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out long unixSeconds)
    {
        unixSeconds = 0;
        if (s.Length != Length || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' '
            || s[19] != ':' || s[22] != ':' || !s[25..].SequenceEqual(" GMT"u8))
            return false;
        int month = -1;
        for (int m = 0; m < 12; m++)
            if (s.Slice(8, 3).SequenceEqual(Months.Slice(m * 3, 3))) { month = m + 1; break; }
        if (month < 0) return false;
        if (!TwoDigits(s[5..], out int day) || !TwoDigits(s[12..], out int yHi) || !TwoDigits(s[14..], out int yLo)
            || !TwoDigits(s[17..], out int hour) || !TwoDigits(s[20..], out int minute) || !TwoDigits(s[23..], out int second))
            return false;
        int year = yHi * 100 + yLo;
        if (day < 1 || day > DateTime.DaysInMonth(Math.Max(1, year), month) || hour > 23 || minute > 59 || second > 60 || year < 1)
            return false;
        var dt = new DateTime(year, month, day, hour, minute, Math.Min(second, 59), DateTimeKind.Utc);
        unixSeconds = new DateTimeOffset(dt).ToUnixTimeSeconds();
        return true;
    }

    private static void Two(Span<byte> d, int v)
    {
        d[0] = (byte)('0' + v / 10);
        d[1] = (byte)('0' + v % 10);
    }

    private static bool TwoDigits(ReadOnlySpan<byte> s, out int v)
    {
        v = 0;
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') return false;
        v = (s[0] - '0') * 10 + (s[1] - '0');
        return true;
    }
}
