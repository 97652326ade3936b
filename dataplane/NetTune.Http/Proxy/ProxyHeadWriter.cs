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
    /// <c>X-Forwarded-For</c> with the client's address appended to any the client sent.
    /// </summary>
    public static int WriteRequest(ReadOnlySpan<byte> head, Span<byte> destination, ReadOnlySpan<byte> clientAddress)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        if (lineEnd < 0 || head.Length < lineEnd + 4) return -1;
        // The parser allows empty lines before the request line; they are not forwarded.
        int start = 0;
        while (lineEnd == start) { start += 2; lineEnd = start + head[start..].IndexOf("\r\n"u8); }
        var w = new SpanWriter(destination);
        w.Write(head[start..(lineEnd + 2)]);
        ReadOnlySpan<byte> forwardedFor = default;
        var headers = head[(lineEnd + 2)..^2];
        while (!headers.IsEmpty)
        {
            int nl = headers.IndexOf("\r\n"u8);
            var line = headers[..(nl + 2)];
            headers = headers[(nl + 2)..];
            var name = line[..line.IndexOf((byte)':')];
            if (IsHopByHop(name) || name.Length == 6 && Ascii.EqualsIgnoreCase(name, "Expect"u8)) continue;
            if (name.Length == 15 && Ascii.EqualsIgnoreCase(name, "X-Forwarded-For"u8))
            {
                // Several X-Forwarded-For lines form one list; the last one carries it on.
                forwardedFor = line[(name.Length + 1)..^2].Trim(" \t"u8);
                continue;
            }
            w.Write(line);
        }
        w.Write("X-Forwarded-For: "u8);
        if (!forwardedFor.IsEmpty)
        {
            w.Write(forwardedFor);
            w.Write(", "u8);
        }
        w.Write(clientAddress);
        w.Write("\r\n\r\n"u8);
        return w.Failed ? -1 : w.Position;
    }

    /// <summary>The upstream's status line and end-to-end headers, then the proxy's own Connection header.</summary>
    public static int WriteResponse(ReadOnlySpan<byte> head, Span<byte> destination, ConnectionHeader connection)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        if (lineEnd < 0 || head.Length < lineEnd + 4) return -1;
        var w = new SpanWriter(destination);
        w.Write(head[..(lineEnd + 2)]);
        var headers = head[(lineEnd + 2)..^2];
        while (!headers.IsEmpty)
        {
            int nl = headers.IndexOf("\r\n"u8);
            var line = headers[..(nl + 2)];
            headers = headers[(nl + 2)..];
            if (!IsHopByHop(line[..line.IndexOf((byte)':')])) w.Write(line);
        }
        if (connection == ConnectionHeader.Close) w.Write("Connection: close\r\n"u8);
        else if (connection == ConnectionHeader.KeepAlive) w.Write("Connection: keep-alive\r\n"u8);
        w.Write("\r\n"u8);
        return w.Failed ? -1 : w.Position;
    }

    /// <summary>
    /// Connection-scoped headers. Transfer-Encoding is hop-by-hop in principle, but the proxy relays
    /// chunked bodies unchanged, so it stays with them.
    /// </summary>
    private static bool IsHopByHop(ReadOnlySpan<byte> name) => name.Length switch
    {
        2 => Ascii.EqualsIgnoreCase(name, "TE"u8),
        7 => Ascii.EqualsIgnoreCase(name, "Upgrade"u8),
        10 => Ascii.EqualsIgnoreCase(name, "Connection"u8) || Ascii.EqualsIgnoreCase(name, "Keep-Alive"u8),
        16 => Ascii.EqualsIgnoreCase(name, "Proxy-Connection"u8),
        _ => false,
    };
}
