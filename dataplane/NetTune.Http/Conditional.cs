namespace NetTune.Http;

public enum ResponseKind : byte
{
    Full,
    Partial,
    NotModified,
    RangeNotSatisfiable,
}

public readonly record struct ResponsePlan(ResponseKind Kind, long Start, long Length);

/// <summary>The decision between 200, 206, 304 and 416 for a file, kept apart from I/O so it is testable.</summary>
public static class ResponsePlanner
{
    public static ResponsePlan Plan(ReadOnlySpan<byte> buffer, in HttpRequest request, ReadOnlySpan<byte> etag, long mtimeUnixSeconds, long size)
    {
        // RFC 9110 §13.2.2: If-None-Match takes precedence; If-Modified-Since is only consulted without it.
        if (request.IfNoneMatch.IsPresent)
        {
            if (EtagListMatches(request.IfNoneMatch.Of(buffer), etag))
                return new ResponsePlan(ResponseKind.NotModified, 0, 0);
        }
        else if (request.IfModifiedSince.IsPresent
                 && HttpDate.TryParse(request.IfModifiedSince.Of(buffer), out long since)
                 && mtimeUnixSeconds <= since)
        {
            return new ResponsePlan(ResponseKind.NotModified, 0, 0);
        }

        if (request.Range.IsPresent && (!request.IfRange.IsPresent || IfRangeHolds(request.IfRange.Of(buffer), etag, mtimeUnixSeconds)))
        {
            var range = RangeHeader.Parse(request.Range.Of(buffer), size);
            if (range.Kind == RangeKind.Satisfiable) return new ResponsePlan(ResponseKind.Partial, range.Start, range.Length);
            if (range.Kind == RangeKind.Unsatisfiable) return new ResponsePlan(ResponseKind.RangeNotSatisfiable, 0, 0);
        }
        return new ResponsePlan(ResponseKind.Full, 0, size);
    }

    /// <summary>Weak comparison, as If-None-Match requires: "W/" prefixes are ignored.</summary>
    public static bool EtagListMatches(ReadOnlySpan<byte> list, ReadOnlySpan<byte> etag)
    {
        var ours = StripWeak(etag);
        foreach (var r in list.Split((byte)','))
        {
            var candidate = list[r].Trim(" \t"u8);
            if (candidate.Length == 1 && candidate[0] == '*') return true;
            if (StripWeak(candidate).SequenceEqual(ours)) return true;
        }
        return false;
    }

    // If-Range needs a strong validator: an exact ETag, or the exact Last-Modified date.
    private static bool IfRangeHolds(ReadOnlySpan<byte> value, ReadOnlySpan<byte> etag, long mtime)
    {
        value = value.Trim(" \t"u8);
        if (value.StartsWith("\""u8)) return value.SequenceEqual(etag);
        return HttpDate.TryParse(value, out long date) && date == mtime;
    }

    private static ReadOnlySpan<byte> StripWeak(ReadOnlySpan<byte> tag) => tag.StartsWith("W/"u8) ? tag[2..] : tag;
}
