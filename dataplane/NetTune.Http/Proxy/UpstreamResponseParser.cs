using System.Buffers.Text;
using System.Text;

namespace NetTune.Http.Proxy;

/// <summary>How the end of an upstream response body is found (RFC 9112 §6.3).</summary>
public enum BodyFraming : byte
{
    /// <summary>No body: HEAD, 1xx, 204, 304.</summary>
    None,
    ContentLength,
    Chunked,
    /// <summary>The body runs until the upstream closes; neither side can be reused afterwards.</summary>
    UntilClose,
}

/// <summary>A parsed upstream response head; the header bytes themselves stay in the caller's buffer.</summary>
public struct UpstreamResponse
{
    public int Status;
    public int HeadLength;
    public BodyFraming Framing;
    public long ContentLength;
    /// <summary>Whether the upstream connection may carry another request after this response.</summary>
    public bool Reusable;

    // What the head rewrite needs to know, found by the same pass (see ProxyHeadWriter.WriteResponse).
    /// <summary>A Connection header names more than close / keep-alive: those headers are dropped too.</summary>
    public bool ConnectionNamesHeaders;
    /// <summary>How many lines are hop-by-hop by name (TE, Upgrade, Connection, Keep-Alive, Proxy-Connection).</summary>
    public int HopByHopLines;
    /// <summary>The first two of those lines, [start, end) with their CRLF, in the head.</summary>
    public int Drop0Start, Drop0End, Drop1Start, Drop1End;
}

/// <summary>
/// Parses the status line and headers an upstream sent. Stateless, like <see cref="HttpParser"/>: the
/// head is re-parsed from the start of the buffer until it is complete. Upstreams are trusted to speak
/// HTTP but not to be well-behaved, so conflicting framing is an error (502), never a guess.
/// One pass over the head: each line ends at its first CR or LF, which must be a CRLF (a bare CR or LF,
/// RFC 9112 §2.2, would be relayed for the client to split differently, so it is refused).
/// </summary>
public static class UpstreamResponseParser
{
    /// <summary>
    /// Where the line starting at <paramref name="start"/> ends (its CR), -1 if not yet known, -2 if it ends badly.
    /// A NUL ends it badly too: RFC 9110 §5.5 makes a recipient refuse (or blank) CR, LF and NUL in a field value,
    /// and a third byte in the same vectorized search costs a little less than searching the whole head for it.
    /// </summary>
    private static int LineEnd(ReadOnlySpan<byte> buffer, int start)
    {
        int i = buffer[start..].IndexOfAny((byte)'\r', (byte)'\n', (byte)0);
        if (i < 0) return -1;
        i += start;
        if (buffer[i] != '\r') return -2;
        if (i + 1 == buffer.Length) return -1;
        return buffer[i + 1] == '\n' ? i : -2;
    }

    public static ParseStatus TryParse(ReadOnlySpan<byte> buffer, int maxHeadBytes, bool requestWasHead, out UpstreamResponse response)
    {
        response = default;
        var incomplete = buffer.Length >= maxHeadBytes ? ParseStatus.Error : ParseStatus.Incomplete;
        int lineEnd = LineEnd(buffer, 0);
        if (lineEnd == -1) return incomplete;
        if (lineEnd < 0) return ParseStatus.Error;
        var line = buffer[..lineEnd];
        // "HTTP/1.x SSS" optionally followed by " reason".
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[8] != ' ' || (line.Length > 12 && line[12] != ' ')) return ParseStatus.Error;
        bool http11 = line[7] == '1';
        if (!http11 && line[7] != '0') return ParseStatus.Error;
        if (!Utf8Parser.TryParse(line.Slice(9, 3), out int status, out int used) || used != 3 || status < 100) return ParseStatus.Error;

        bool close = false, keepAlive = false, transferEncoding = false, chunked = false, otherCoding = false;
        long contentLength = -1;
        int at = lineEnd + 2;
        while (true)
        {
            lineEnd = LineEnd(buffer, at);
            if (lineEnd == -1) return incomplete;
            if (lineEnd < 0) return ParseStatus.Error;
            if (lineEnd == at) break; // the blank line
            var header = buffer[at..lineEnd];
            int lineStart = at;
            at = lineEnd + 2;
            // The name is tchars up to the colon, nothing else: obs-fold (a line starting with SP/HTAB continues the
            // previous one, RFC 9112 §5.2) and whitespace before the colon (§5.1: "Content-Length : 5", which we
            // would relay as an unknown header and a lenient client would frame by) are refused rather than relayed.
            int colon = HttpParser.HeaderNameEnd(header);
            if (colon < 0) return ParseStatus.Error;
            var name = header[..colon];
            if (ProxyHeadWriter.IsHopByHop(name))
            {
                if (response.HopByHopLines == 0) (response.Drop0Start, response.Drop0End) = (lineStart, at);
                else if (response.HopByHopLines == 1) (response.Drop1Start, response.Drop1End) = (lineStart, at);
                response.HopByHopLines++;
            }
            if (name.Length is not (14 or 17 or 10)) continue;
            var value = header[(colon + 1)..].Trim(" \t"u8);
            if (name.Length == 14 && Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (value.IsEmpty || value.IndexOfAnyExceptInRange((byte)'0', (byte)'9') >= 0
                    || !Utf8Parser.TryParse(value, out long cl, out int n) || n != value.Length) return ParseStatus.Error;
                if (contentLength >= 0 && contentLength != cl) return ParseStatus.Error;
                contentLength = cl;
            }
            else if (name.Length == 17 && Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                transferEncoding = true;
                // Only a final "chunked" frames the body; anything after it means the body runs to close.
                foreach (var range in value.Split((byte)','))
                {
                    var coding = value[range].Trim(" \t"u8);
                    if (coding.IsEmpty) continue;
                    if (Ascii.EqualsIgnoreCase(coding, "chunked"u8)) { chunked = true; otherCoding = false; }
                    else otherCoding = true;
                }
            }
            else if (name.Length == 10 && Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                foreach (var range in value.Split((byte)','))
                {
                    var token = value[range].Trim(" \t"u8);
                    if (Ascii.EqualsIgnoreCase(token, "close"u8)) close = true;
                    else if (Ascii.EqualsIgnoreCase(token, "keep-alive"u8)) keepAlive = true;
                    // Dropping a framing header the body is still framed by would hand the client a body it splits
                    // differently from us (RFC 9110 §7.6.1, RFC 9112 §11.2): such an upstream is not believed at all.
                    else if (HttpParser.NamesFramingHeader(token)) return ParseStatus.Error;
                    else if (!token.IsEmpty) response.ConnectionNamesHeaders = true;
                }
            }
        }
        // Both framing headers: RFC 9112 §6.3 calls it a likely smuggling or splitting attempt "ought to be handled as
        // an error"; nginx answers 502 ("upstream sent Content-Length and Transfer-Encoding headers at the same
        // time"), and so do we. Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 §6.1), whatever it says.
        // An empty coding list frames nothing anyone agrees on either.
        if (transferEncoding && (contentLength >= 0 || !http11 || !chunked && !otherCoding)) return ParseStatus.Error;
        response.HeadLength = at + 2;
        if (response.HeadLength > maxHeadBytes) return ParseStatus.Error;
        response.Status = status;

        response.Reusable = http11 ? !close : keepAlive && !close;
        if (requestWasHead || status < 200 || status == 204 || status == 304)
        {
            response.Framing = BodyFraming.None;
        }
        else if (chunked || otherCoding)
        {
            response.Framing = chunked && !otherCoding ? BodyFraming.Chunked : BodyFraming.UntilClose;
            if (otherCoding) response.Reusable = false;
        }
        else if (contentLength >= 0)
        {
            response.Framing = BodyFraming.ContentLength;
            response.ContentLength = contentLength;
        }
        else
        {
            response.Framing = BodyFraming.UntilClose;
            response.Reusable = false;
        }
        return ParseStatus.Complete;
    }
}
