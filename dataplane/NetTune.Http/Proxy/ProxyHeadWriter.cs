using System.Text;

namespace NetTune.Http.Proxy;

/// <summary>
/// Rewrites heads as they cross the proxy. Hop-by-hop headers (RFC 9110 §7.6.1) describe one
/// connection, not the message, so they are dropped and the proxy states its own; everything else
/// passes through byte for byte. Both methods return the bytes written, or -1 if the span is too small.
/// </summary>
public static class ProxyHeadWriter
{
    /// <summary>
    /// The request as the upstream sees it: the client's request line and end-to-end headers, then
    /// <c>X-Forwarded-For</c> with the client's address: appended to any the client sent when
    /// <paramref name="trustForwarded"/> (a trusted proxy's), else alone, and then the client's X-Forwarded-Host,
    /// X-Forwarded-Proto and Forwarded are dropped too, so an untrusted client cannot forge them. Headers the client named
    /// in <c>Connection</c> are hop-by-hop too (RFC 9110 §7.6.1). With <paramref name="originTarget"/> (the path of an
    /// absolute-form target) the request line carries that instead (RFC 9112 §3.2.2); with <paramref name="host"/> the
    /// client's Host lines are replaced by that one (the absolute-form's authority, or the upstream's name for an
    /// HTTP/1.0 request that had none).
    /// </summary>
    public static int WriteRequest(ReadOnlySpan<byte> head, Span<byte> destination, ReadOnlySpan<byte> clientAddress,
        ReadOnlySpan<byte> originTarget = default, ReadOnlySpan<byte> host = default, bool trustForwarded = false)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        if (lineEnd < 0 || head.Length < lineEnd + 4) return -1;
        // The parser allows empty lines before the request line; they are not forwarded.
        int start = 0;
        while (lineEnd == start) { start += 2; lineEnd = start + head[start..].IndexOf("\r\n"u8); }
        var w = new SpanWriter(destination);
        var requestLine = head[start..lineEnd];
        if (originTarget.IsEmpty) w.Write(requestLine);
        else
        {
            int sp1 = requestLine.IndexOf((byte)' '), sp2 = requestLine.LastIndexOf((byte)' ');
            w.Write(requestLine[..(sp1 + 1)]);
            w.Write(originTarget);
            w.Write(requestLine[sp2..]);
        }
        w.Write("\r\n"u8);
        bool forwardedList = false;
        var headers = head[(lineEnd + 2)..^2];
        bool connectionNames = HasConnectionNames(headers);
        var rest = headers;
        while (!rest.IsEmpty)
        {
            int nl = rest.IndexOf("\r\n"u8);
            var line = rest[..(nl + 2)];
            rest = rest[(nl + 2)..];
            var name = line[..line.IndexOf((byte)':')];
            if (IsHopByHop(name) || name.Length == 6 && Ascii.EqualsIgnoreCase(name, "Expect"u8)) continue;
            if (connectionNames && NamedInConnection(headers, name)) continue;
            if (!host.IsEmpty && name.Length == 4 && Ascii.EqualsIgnoreCase(name, "Host"u8)) continue;
            if (name.Length == 15 && Ascii.EqualsIgnoreCase(name, "X-Forwarded-For"u8))
            {
                forwardedList |= trustForwarded;
                continue;
            }
            if (!trustForwarded && IsForwardedDetail(name)) continue;
            w.Write(line);
        }
        if (!host.IsEmpty)
        {
            w.Write("Host: "u8);
            w.Write(host);
            w.Write("\r\n"u8);
        }
        w.Write("X-Forwarded-For: "u8);
        // A trusted proxy's list goes on: several lines form one list, in order (RFC 9110 §5.3).
        for (var list = forwardedList ? headers : default; !list.IsEmpty;)
        {
            int nl = list.IndexOf("\r\n"u8);
            var line = list[..nl];
            list = list[(nl + 2)..];
            int colon = line.IndexOf((byte)':');
            if (colon != 15 || !Ascii.EqualsIgnoreCase(line[..colon], "X-Forwarded-For"u8)) continue;
            var value = line[(colon + 1)..].Trim(" \t"u8);
            if (value.IsEmpty) continue;
            w.Write(value);
            w.Write(", "u8);
        }
        w.Write(clientAddress);
        w.Write("\r\n\r\n"u8);
        return w.Failed ? -1 : w.Position;
    }

    private static bool IsForwardedDetail(ReadOnlySpan<byte> name) =>
        name.Length == 16 && Ascii.EqualsIgnoreCase(name, "X-Forwarded-Host"u8)
        || name.Length == 17 && Ascii.EqualsIgnoreCase(name, "X-Forwarded-Proto"u8)
        || name.Length == 9 && Ascii.EqualsIgnoreCase(name, "Forwarded"u8);

    /// <summary>
    /// The upstream's status line and end-to-end headers, then the proxy's own Connection header. Headers the
    /// upstream named in Connection are dropped (never a framing header: <see cref="UpstreamResponseParser"/> refuses
    /// such a head, as it does Content-Length beside Transfer-Encoding). With <paramref name="dechunk"/> (a chunked
    /// body relayed decoded to an HTTP/1.0 client, delimited by the close) both framing headers go, and Trailer too:
    /// the trailer fields it announces are not relayed.
    /// </summary>
    public static int WriteResponse(ReadOnlySpan<byte> head, Span<byte> destination, ConnectionHeader connection, bool dechunk = false)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        if (lineEnd < 0 || head.Length < lineEnd + 4) return -1;
        var w = new SpanWriter(destination);
        w.Write(head[..(lineEnd + 2)]);
        var headers = head[(lineEnd + 2)..^2];
        bool connectionNames = HasConnectionNames(headers);
        var rest = headers;
        while (!rest.IsEmpty)
        {
            int nl = rest.IndexOf("\r\n"u8);
            var line = rest[..(nl + 2)];
            rest = rest[(nl + 2)..];
            var name = line[..line.IndexOf((byte)':')];
            if (IsHopByHop(name) || connectionNames && NamedInConnection(headers, name)) continue;
            if (dechunk && (HttpParser.NamesFramingHeader(name) || name.Length == 7 && Ascii.EqualsIgnoreCase(name, "Trailer"u8))) continue;
            w.Write(line);
        }
        return EndResponse(ref w, connection);
    }

    /// <summary>
    /// As <see cref="WriteResponse(ReadOnlySpan{byte}, Span{byte}, ConnectionHeader, bool)"/>, for a head
    /// <see cref="UpstreamResponseParser"/> parsed into <paramref name="response"/>: in the common case (at most two
    /// hop-by-hop lines, no headers named in Connection, nothing to decode) the lines to drop
    /// are known from the parse, and the head is copied in at most three pieces around them instead of being
    /// searched again line by line. Otherwise it takes the general way.
    /// </summary>
    public static int WriteResponse(in UpstreamResponse response, ReadOnlySpan<byte> head, Span<byte> destination,
        ConnectionHeader connection, bool dechunk = false)
    {
        if (dechunk || response.ConnectionNamesHeaders || response.HopByHopLines > 2)
            return WriteResponse(head, destination, connection, dechunk);
        var w = new SpanWriter(destination);
        int end = head.Length - 2; // the blank line
        if (response.HopByHopLines == 0) w.Write(head[..end]);
        else
        {
            w.Write(head[..response.Drop0Start]);
            if (response.HopByHopLines == 1) w.Write(head[response.Drop0End..end]);
            else
            {
                w.Write(head[response.Drop0End..response.Drop1Start]);
                w.Write(head[response.Drop1End..end]);
            }
        }
        return EndResponse(ref w, connection);
    }

    /// <summary>The proxy's own Connection header and the blank line; the head's length, or -1 if it did not fit.</summary>
    private static int EndResponse(ref SpanWriter w, ConnectionHeader connection)
    {
        if (connection == ConnectionHeader.Close) w.Write("Connection: close\r\n"u8);
        else if (connection == ConnectionHeader.KeepAlive) w.Write("Connection: keep-alive\r\n"u8);
        w.Write("\r\n"u8);
        return w.Failed ? -1 : w.Position;
    }

    /// <summary>Whether some Connection header names more than close / keep-alive (both handled already).</summary>
    private static bool HasConnectionNames(ReadOnlySpan<byte> headers)
    {
        while (!headers.IsEmpty)
        {
            int nl = headers.IndexOf("\r\n"u8);
            var line = headers[..nl];
            headers = headers[(nl + 2)..];
            if (line.Length < 11 || line[10] != ':' || !Ascii.EqualsIgnoreCase(line[..10], "Connection"u8)) continue;
            var value = line[11..];
            foreach (var range in value.Split((byte)','))
            {
                var token = value[range].Trim(" \t"u8);
                if (!token.IsEmpty && !Ascii.EqualsIgnoreCase(token, "close"u8) && !Ascii.EqualsIgnoreCase(token, "keep-alive"u8)) return true;
            }
        }
        return false;
    }

    private static bool NamedInConnection(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> name)
    {
        while (!headers.IsEmpty)
        {
            int nl = headers.IndexOf("\r\n"u8);
            var line = headers[..nl];
            headers = headers[(nl + 2)..];
            if (line.Length < 11 || line[10] != ':' || !Ascii.EqualsIgnoreCase(line[..10], "Connection"u8)) continue;
            var value = line[11..];
            foreach (var range in value.Split((byte)','))
                if (Ascii.EqualsIgnoreCase(value[range].Trim(" \t"u8), name)) return true;
        }
        return false;
    }

    /// <summary>
    /// Connection-scoped headers. Transfer-Encoding is hop-by-hop in principle, but the proxy relays
    /// chunked bodies unchanged, so it stays with them.
    /// </summary>
    internal static bool IsHopByHop(ReadOnlySpan<byte> name) => name.Length switch
    {
        2 => Ascii.EqualsIgnoreCase(name, "TE"u8),
        7 => Ascii.EqualsIgnoreCase(name, "Upgrade"u8),
        10 => Ascii.EqualsIgnoreCase(name, "Connection"u8) || Ascii.EqualsIgnoreCase(name, "Keep-Alive"u8),
        16 => Ascii.EqualsIgnoreCase(name, "Proxy-Connection"u8),
        _ => false,
    };
}
