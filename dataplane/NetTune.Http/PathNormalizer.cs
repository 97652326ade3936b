namespace NetTune.Http;

public enum PathStatus : byte
{
    Ok,
    /// <summary>Malformed: bad percent-encoding, NUL, or not an origin path. Answer 400.</summary>
    BadRequest,
    /// <summary>A ".." segment (after decoding). Answer 403: we never resolve upwards.</summary>
    Traversal,
    /// <summary>
    /// A segment that starts with a dot (after decoding): ".env", ".git", ".htpasswd". Answer 404, as if it were not
    /// there, unless hidden names are allowed.
    /// </summary>
    Hidden,
}

/// <summary>
/// Turns a request-target into a root-relative file path ("a/b.html", "" for the root). The result is
/// only half of the defence: the server opens it with openat2(RESOLVE_BENEATH), so symlinks that leave
/// the root are refused by the kernel, which a string check cannot see.
/// </summary>
public static class PathNormalizer
{
    /// <param name="destination">At least <paramref name="target"/>.Length bytes; decoding only shrinks.</param>
    /// <param name="allowHidden">Serve names that start with a dot; otherwise they are <see cref="PathStatus.Hidden"/>.</param>
    public static PathStatus Normalize(ReadOnlySpan<byte> target, Span<byte> destination, out int length, bool allowHidden = false)
    {
        length = 0;
        bool plain = ScanPath(target, out int end);
        target = target[..end];
        if (target.IsEmpty || target[0] != '/') return PathStatus.BadRequest;
        if (destination.Length < target.Length) throw new ArgumentException("destination is shorter than the target", nameof(destination));

        if (plain)
        {
            // Nothing to decode and no segment to drop: the path is the target without its leading slash.
            target[1..].CopyTo(destination);
            length = target.Length - 1;
            return PathStatus.Ok;
        }

        // Decode first, then split: "%2e%2e%2f" must be judged as the "../" it becomes.
        int decoded = 0;
        for (int i = 0; i < target.Length; i++)
        {
            byte b = target[i];
            if (b == '%')
            {
                if (i + 2 >= target.Length) return PathStatus.BadRequest;
                int hi = HexValue(target[i + 1]), lo = HexValue(target[i + 2]);
                if (hi < 0 || lo < 0) return PathStatus.BadRequest;
                b = (byte)(hi << 4 | lo);
                i += 2;
            }
            if (b == 0) return PathStatus.BadRequest;
            destination[decoded++] = b;
        }

        // Collapse in place: drop empty and "." segments, refuse "..".
        var path = destination[..decoded];
        int write = 0, read = 0;
        while (read < path.Length)
        {
            int slash = path[read..].IndexOf((byte)'/');
            int segEnd = slash < 0 ? path.Length : read + slash;
            var segment = path[read..segEnd];
            if (segment.Length == 2 && segment[0] == '.' && segment[1] == '.') return PathStatus.Traversal;
            if (segment.Length > 1 && segment[0] == '.' && !allowHidden) return PathStatus.Hidden;
            if (!segment.IsEmpty && !(segment.Length == 1 && segment[0] == '.'))
            {
                if (write > 0) path[write++] = (byte)'/';
                segment.CopyTo(path[write..]);
                write += segment.Length;
            }
            read = segEnd + 1;
        }
        // A trailing slash names a directory: kept, so "file.txt/" fails to open (ENOTDIR, 404) instead of serving the file.
        if (write > 0 && path[^1] == '/') path[write++] = (byte)'/';
        length = write;
        return PathStatus.Ok;
    }

    /// <summary>
    /// Where the path ends (at '?' or '#'), and whether it is plain: no percent-escape, NUL, empty segment or
    /// segment starting with a dot ("." and ".." are among those). One pass; request targets are short.
    /// </summary>
    private static bool ScanPath(ReadOnlySpan<byte> target, out int end)
    {
        bool plain = true;
        byte previous = 0;
        int i = 0;
        for (; i < target.Length; i++)
        {
            byte b = target[i];
            if (b is (byte)'?' or (byte)'#') break;
            if (b is (byte)'%' or 0 || previous == '/' && b is (byte)'/' or (byte)'.') plain = false;
            previous = b;
        }
        end = i;
        return plain;
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
