using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace NetTune.Http;

/// <summary>
/// A stateless HTTP/1.1 request-head parser. It re-parses from the start of the buffer on every call:
/// heads are small (bounded by <see cref="HttpLimits.MaxHeaderBytes"/>), and statelessness keeps the
/// I/O engines simple and makes every input independently testable.
/// </summary>
public static class HttpParser
{
    // Controls other than HTAB, and DEL (RFC 9110 §5.5): one vectorized scan of a long value instead of three.
    private static readonly SearchValues<byte> InvalidValueBytes = SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Where(b => b != '\t').Select(b => (byte)b), (byte)0x7f]);

    private const byte Tchar = 1, InvalidInValue = 2, RegNameChar = 4;
    /// <summary>
    /// Byte classes, for the scalar scans of the short pieces of a head (methods, header names, short values,
    /// Host), where a table lookup per byte beats setting up a vector search: RFC 9110 tchar; a control other
    /// than HTAB, or DEL; a byte of a reg-name (unreserved, pct-encoded, sub-delims) without ':' and brackets.
    /// </summary>
    private static ReadOnlySpan<byte> ByteClass =>
    [
        2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        0, 5, 0, 1, 5, 5, 5, 5, 4, 4, 5, 5, 4, 5, 5, 0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 4, 0, 4, 0, 0,
        0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 0, 1, 5,
        1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 1, 0, 5, 2,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// <summary>Values this long or longer are checked by <see cref="InvalidValueBytes"/>, shorter ones byte by byte.</summary>
    private const int VectorValueBytes = 32;

    /// <summary>
    /// Where a header line's name ends: the index of its colon when the name is one or more tchars (RFC 9110 §5.6.2)
    /// right up to it, else -1 (obs-fold, whitespace before the colon, no colon). Both directions take names this
    /// way. One table lookup per byte of a short name costs less than finding the colon and then checking the name
    /// with a vector search (callgrind, a proxied 1 KiB request from nginx: about 760 instructions for all its names
    /// against 1,000).
    /// </summary>
    public static int HeaderNameEnd(ReadOnlySpan<byte> line)
    {
        var classes = ByteClass;
        int colon = 0;
        while (colon < line.Length && (classes[line[colon]] & Tchar) != 0) colon++;
        return colon > 0 && colon < line.Length && line[colon] == ':' ? colon : -1;
    }

    public static ParseStatus TryParse(ReadOnlySpan<byte> buffer, HttpLimits limits, out HttpRequest request)
    {
        request = default;
        request.Range = request.IfRange = request.IfNoneMatch = request.IfModifiedSince = default;

        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
        int start = 0;
        while (start + 1 < buffer.Length && buffer[start] == '\r' && buffer[start + 1] == '\n' && start < 8)
            start += 2;

        int lineEnd = buffer[start..].IndexOf((byte)'\n');
        if (lineEnd < 0)
        {
            if (buffer.Length - start > limits.MaxRequestLineBytes) return Fail(ref request, 414);
            return buffer.Length >= limits.MaxHeaderBytes ? Fail(ref request, 431) : ParseStatus.Incomplete;
        }
        if (lineEnd > limits.MaxRequestLineBytes) return Fail(ref request, 414);
        if (lineEnd == 0 || buffer[start + lineEnd - 1] != '\r') return Fail(ref request, 400);

        var line = buffer.Slice(start, lineEnd - 1);
        // The two methods a static server lives on are recognised without a search.
        int sp1;
        var kind = HttpMethodKind.Other;
        if (line.StartsWith("GET "u8)) { sp1 = 3; kind = HttpMethodKind.Get; }
        else if (line.StartsWith("HEAD "u8)) { sp1 = 4; kind = HttpMethodKind.Head; }
        else
        {
            sp1 = line.IndexOf((byte)' ');
            if (sp1 <= 0 || !AllOfClass(line[..sp1], Tchar)) return Fail(ref request, 400);
        }
        var rest = line[(sp1 + 1)..];
        // Only visible ASCII may appear in a request-target, so its end is the first byte that is not, which must be SP.
        int sp2 = rest.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7e);
        if (sp2 <= 0 || rest[sp2] != ' ') return Fail(ref request, 400);
        var target = rest[..sp2];
        var version = rest[(sp2 + 1)..];

        if (version.Length != 8 || !version.StartsWith("HTTP/"u8) || !IsDigit(version[5]) || version[6] != '.' || !IsDigit(version[7]))
            return Fail(ref request, 400);
        // RFC 9110 §6.2: a 1.x minor version we do not know is answered as the highest 1.x we speak (1.1).
        if (version[5] != '1') return Fail(ref request, 505);
        request.IsHttp11 = version[7] != '0';
        var method = line[..sp1];

        request.MethodToken = new TextSlice(start, sp1);
        request.Method = kind;

        // Tunnels (authority-form targets) are neither served nor proxied.
        if (kind == HttpMethodKind.Other && method.SequenceEqual("CONNECT"u8)) return Fail(ref request, 405);

        int targetStart = start + sp1 + 1;
        if (target[0] != '/')
        {
            // Absolute-form (RFC 9112 §3.2.2) must be accepted; we serve one site, so drop the authority.
            int schemeEnd = target.IndexOf("://"u8);
            if (schemeEnd <= 0) return Fail(ref request, 400);
            int pathStart = target[(schemeEnd + 3)..].IndexOf((byte)'/');
            if (pathStart < 0) { return Fail(ref request, 400); }
            var authority = target.Slice(schemeEnd + 3, pathStart);
            if (authority.IsEmpty || !IsValidHost(authority)) return Fail(ref request, 400);
            request.Authority = new TextSlice(targetStart + schemeEnd + 3, pathStart);
            targetStart += schemeEnd + 3 + pathStart;
            target = buffer.Slice(targetStart, target.Length - (schemeEnd + 3 + pathStart));
        }
        request.Target = new TextSlice(targetStart, target.Length);

        bool connectionClose = false, connectionKeepAlive = false, chunkedLast = false;
        int hostCount = 0, headerCount = 0;
        long contentLength = -1;
        int pos = start + lineEnd + 1;
        while (true)
        {
            if (pos - start > limits.MaxHeaderBytes) return Fail(ref request, 431);
            // The blank line that ends the head, without a search.
            if (pos + 1 < buffer.Length && buffer[pos] == '\r' && buffer[pos + 1] == '\n')
            {
                pos += 2;
                if (pos - start > limits.MaxHeaderBytes) return Fail(ref request, 431);
                break;
            }
            int nl = buffer[pos..].IndexOf((byte)'\n');
            if (nl < 0)
            {
                return buffer.Length - start >= limits.MaxHeaderBytes ? Fail(ref request, 431) : ParseStatus.Incomplete;
            }
            if (pos + nl + 1 - start > limits.MaxHeaderBytes) return Fail(ref request, 431);
            if (nl == 0 || buffer[pos + nl - 1] != '\r') return Fail(ref request, 400);
            var header = buffer.Slice(pos, nl - 1);
            int headerStart = pos;
            pos += nl + 1;
            if (header.IsEmpty) break;
            if (++headerCount > limits.MaxHeaderCount) return Fail(ref request, 431);

            // Obsolete line folding and whitespace before the colon are request-smuggling vectors (RFC 9112 §5).
            int colon = HeaderNameEnd(header);
            if (colon < 0) return Fail(ref request, 400);
            var name = header[..colon];
            int lead = colon + 1, end = header.Length;
            while (lead < end && header[lead] is (byte)' ' or (byte)'\t') lead++;
            while (end > lead && header[end - 1] is (byte)' ' or (byte)'\t') end--;
            var value = header[lead..end];
            // Host is checked below against a narrower set.
            bool isHost = name.Length == 4 && Ascii.EqualsIgnoreCase(name, "Host"u8);
            if (!isHost && (value.Length >= VectorValueBytes ? value.IndexOfAny(InvalidValueBytes) >= 0 : AnyOfClass(value, InvalidInValue)))
                return Fail(ref request, 400);
            var slice = new TextSlice(headerStart + lead, value.Length);

            switch (name.Length)
            {
                case 4 when isHost:
                    // RFC 9112 §3.2: a Host that is not a valid uri-host[:port] gets 400.
                    if (!IsValidHost(value)) return Fail(ref request, 400);
                    hostCount++;
                    break;
                case 5 when Ascii.EqualsIgnoreCase(name, "Range"u8):
                    request.Range = slice;
                    break;
                case 8 when Ascii.EqualsIgnoreCase(name, "If-Range"u8):
                    request.IfRange = slice;
                    break;
                case 10 when Ascii.EqualsIgnoreCase(name, "Connection"u8):
                    if (!ScanConnectionTokens(value, ref connectionClose, ref connectionKeepAlive)) return Fail(ref request, 400);
                    break;
                case 13 when Ascii.EqualsIgnoreCase(name, "If-None-Match"u8):
                    request.IfNoneMatch = slice;
                    break;
                case 14 when Ascii.EqualsIgnoreCase(name, "Content-Length"u8):
                    if (!Utf8Parser.TryParse(value, out long cl, out int used) || used != value.Length || cl < 0 || !AllDigits(value))
                        return Fail(ref request, 400);
                    if (contentLength >= 0 && contentLength != cl) return Fail(ref request, 400);
                    contentLength = cl;
                    break;
                case 17 when Ascii.EqualsIgnoreCase(name, "If-Modified-Since"u8):
                    request.IfModifiedSince = slice;
                    break;
                case 17 when Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8):
                    // Only "chunked" alone is framed by us; any other coding (or chunked twice) is refused below.
                    request.IsChunked = !request.HasTransferEncoding && Ascii.EqualsIgnoreCase(value, "chunked"u8);
                    request.HasTransferEncoding = true;
                    // RFC 9112 §6.3: when chunked is not the final coding (of all Transfer-Encoding lines together)
                    // the body's length cannot be known: 400 and close, not 501, whatever comes before it.
                    chunkedLast = EndsWithChunked(value);
                    break;
                case 6 when Ascii.EqualsIgnoreCase(name, "Expect"u8):
                    if (!Ascii.EqualsIgnoreCase(value, "100-continue"u8)) return Fail(ref request, 417);
                    // RFC 9110 §10.1.1: an HTTP/1.0 client's 100-continue is ignored (it would not understand 100).
                    request.ExpectsContinue = request.IsHttp11;
                    break;
            }
        }

        request.HeadLength = pos;
        request.HasHost = hostCount > 0;
        request.ContentLength = contentLength < 0 ? 0 : contentLength;
        if (request.IsHttp11 && hostCount != 1) return Fail(ref request, 400);
        if (hostCount > 1) return Fail(ref request, 400);
        if (request.HasTransferEncoding)
        {
            // Both framing headers at once is the classic smuggling shape (RFC 9112 §6.3, §11.2); refuse it outright,
            // as nginx does. So is Transfer-Encoding in HTTP/1.0, whose framing RFC 9112 §6.1 calls faulty; and a
            // chunked that is not the final coding leaves the length unknown (§6.3: 400 and close).
            if (contentLength >= 0 || !request.IsHttp11 || !chunkedLast) return Fail(ref request, 400);
            // chunked last but after another coding (or twice): a coding we do not implement (RFC 9112 §6.1).
            if (!request.IsChunked) return Fail(ref request, 501);
        }
        // With MaxBodyBytes 0 (a static-file server) the caller decides what a body means for its method.
        if (limits.MaxBodyBytes > 0 && request.ContentLength > limits.MaxBodyBytes) return Fail(ref request, 413);

        request.KeepAlive = request.IsHttp11 ? !connectionClose : connectionKeepAlive && !connectionClose;
        return ParseStatus.Complete;
    }

    /// <summary>
    /// Notes close / keep-alive; false when the list names a header whose meaning cannot be hop-by-hop. A proxy drops
    /// the headers named in Connection (RFC 9110 §7.6.1) but frames the body by Content-Length / Transfer-Encoding
    /// and routes by Host: forwarding the body without its framing header makes the upstream read it as a new
    /// request (smuggling), so such a request is refused instead.
    /// </summary>
    private static bool ScanConnectionTokens(ReadOnlySpan<byte> value, ref bool close, ref bool keepAlive)
    {
        foreach (var range in value.Split((byte)','))
        {
            var token = value[range].Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(token, "close"u8)) close = true;
            else if (Ascii.EqualsIgnoreCase(token, "keep-alive"u8)) keepAlive = true;
            else if (NamesFramingHeader(token) || token.Length == 4 && Ascii.EqualsIgnoreCase(token, "Host"u8)) return false;
        }
        return true;
    }

    /// <summary>Whether a Connection token is Content-Length or Transfer-Encoding, which say where a message ends.</summary>
    public static bool NamesFramingHeader(ReadOnlySpan<byte> token) =>
        token.Length == 14 && Ascii.EqualsIgnoreCase(token, "Content-Length"u8)
        || token.Length == 17 && Ascii.EqualsIgnoreCase(token, "Transfer-Encoding"u8);

    /// <summary>Whether the last coding of a Transfer-Encoding list is chunked (later lines continue the list).</summary>
    private static bool EndsWithChunked(ReadOnlySpan<byte> value)
    {
        int comma = value.LastIndexOf((byte)',');
        return Ascii.EqualsIgnoreCase(value[(comma + 1)..].Trim(" \t"u8), "chunked"u8);
    }

    /// <summary>Whether a Host value (or an absolute-form authority) is uri-host [":" port]; empty is allowed (RFC 9112 §3.2).</summary>
    public static bool IsValidHost(ReadOnlySpan<byte> host)
    {
        if (!host.IsEmpty && host[0] == '[')
        {
            // IP-literal: reg-name bytes and colons inside one pair of brackets.
            int close = host.IndexOf((byte)']');
            if (close < 0) return false;
            foreach (byte b in host[1..close])
                if (b != ':' && (ByteClass[b] & RegNameChar) == 0) return false;
            return close + 1 == host.Length || host[close + 1] == ':' && OnlyDigits(host[(close + 2)..]);
        }
        // reg-name or IPv4, then an optional ":" and digits.
        int i = 0;
        while (i < host.Length && (ByteClass[host[i]] & RegNameChar) != 0) i++;
        return i == host.Length || host[i] == ':' && OnlyDigits(host[(i + 1)..]);
    }

    // A port may be empty (RFC 3986 §3.2.3: port = *DIGIT).
    private static bool OnlyDigits(ReadOnlySpan<byte> s) => s.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0;

    private static bool AllOfClass(ReadOnlySpan<byte> s, byte cls)
    {
        var classes = ByteClass;
        foreach (byte b in s)
            if ((classes[b] & cls) == 0) return false;
        return true;
    }

    private static bool AnyOfClass(ReadOnlySpan<byte> s, byte cls)
    {
        var classes = ByteClass;
        foreach (byte b in s)
            if ((classes[b] & cls) != 0) return true;
        return false;
    }

    private static bool AllDigits(ReadOnlySpan<byte> s) => !s.IsEmpty && OnlyDigits(s);

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

    private static ParseStatus Fail(ref HttpRequest request, int status)
    {
        request.ErrorStatus = status;
        request.KeepAlive = false;
        return ParseStatus.Error;
    }
}
