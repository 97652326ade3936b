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

    /// <summary>
    /// Parses the three forms RFC 9110 §5.6.7 obliges recipients to accept: IMF-fixdate, the obsolete RFC 850 form
    /// ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994"). Anything else is treated as absent.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out long unixSeconds) => TryParse(s, DateTime.UtcNow.Year, out unixSeconds);

    /// <param name="currentYear">For RFC 850's two-digit years: one more than 50 years ahead means the century before.</param>
    public static bool TryParse(ReadOnlySpan<byte> s, int currentYear, out long unixSeconds)
    {
        unixSeconds = 0;
        if (s.Length == Length && s[3] == ',')
        {
            // Sun, 06 Nov 1994 08:49:37 GMT
            if (s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || !s[25..].SequenceEqual(" GMT"u8)) return false;
            return TwoDigits(s[5..], out int day) && Month(s.Slice(8, 3), out int month) && TwoDigits(s[12..], out int yHi)
                && TwoDigits(s[14..], out int yLo) && Time(s.Slice(17, 8), out int h, out int m, out int sec)
                && Build(yHi * 100 + yLo, month, day, h, m, sec, out unixSeconds);
        }
        if (s.Length == 24 && s[3] == ' ')
        {
            // Sun Nov  6 08:49:37 1994 (the day is space-padded)
            if (s[7] != ' ' || s[10] != ' ' || s[19] != ' ') return false;
            int day;
            if (s[8] == ' ') { if (!IsDigit(s[9])) return false; day = s[9] - '0'; }
            else if (!TwoDigits(s[8..], out day)) return false;
            return Month(s.Slice(4, 3), out int month) && Time(s.Slice(11, 8), out int h, out int m, out int sec)
                && TwoDigits(s[20..], out int yHi) && TwoDigits(s[22..], out int yLo)
                && Build(yHi * 100 + yLo, month, day, h, m, sec, out unixSeconds);
        }
        int comma = s.IndexOf((byte)',');
        if (comma >= 6 && s.Length == comma + 24)
        {
            // Sunday, 06-Nov-94 08:49:37 GMT
            var r = s[(comma + 1)..];
            if (r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' || !r[19..].SequenceEqual(" GMT"u8)) return false;
            if (!TwoDigits(r[1..], out int day) || !Month(r.Slice(4, 3), out int month) || !TwoDigits(r[8..], out int yy)
                || !Time(r.Slice(11, 8), out int h, out int m, out int sec))
                return false;
            int year = currentYear / 100 * 100 + yy;
            if (year > currentYear + 50) year -= 100;
            return Build(year, month, day, h, m, sec, out unixSeconds);
        }
        return false;
    }

    private static bool Month(ReadOnlySpan<byte> s, out int month)
    {
        for (int m = 0; m < 12; m++)
            if (s.SequenceEqual(Months.Slice(m * 3, 3))) { month = m + 1; return true; }
        month = 0;
        return false;
    }

    private static bool Time(ReadOnlySpan<byte> s, out int hour, out int minute, out int second)
    {
        minute = second = 0;
        return TwoDigits(s, out hour) & s[2] == ':' & TwoDigits(s[3..], out minute) & s[5] == ':' & TwoDigits(s[6..], out second);
    }

    private static bool Build(int year, int month, int day, int hour, int minute, int second, out long unixSeconds)
    {
        unixSeconds = 0;
        if (year < 1 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) return false;
        var dt = new DateTime(year, month, day, hour, minute, Math.Min(second, 59), DateTimeKind.Utc);
        unixSeconds = new DateTimeOffset(dt).ToUnixTimeSeconds();
        return true;
    }

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

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
