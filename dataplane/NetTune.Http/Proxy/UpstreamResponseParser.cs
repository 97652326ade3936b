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
}

/// <summary>
/// Parses the status line and headers an upstream sent. Stateless, like <see cref="HttpParser"/>: the
/// head is re-parsed from the start of the buffer until it is complete. Upstreams are trusted to speak
/// HTTP but not to be well-behaved, so conflicting framing is an error (502), never a guess.
/// </summary>
public static class UpstreamResponseParser
{
    private static bool HasBareCr(ReadOnlySpan<byte> head)
    {
        for (int i = head.IndexOf((byte)'\r'); i >= 0; )
        {
            if (i + 1 >= head.Length || head[i + 1] != '\n') return true;
            int next = head[(i + 1)..].IndexOf((byte)'\r');
            i = next < 0 ? -1 : i + 1 + next;
        }
        return false;
    }

    public static ParseStatus TryParse(ReadOnlySpan<byte> buffer, int maxHeadBytes, bool requestWasHead, out UpstreamResponse response)
    {
        response = default;
        int end = buffer.IndexOf("\r\n\r\n"u8);
        if (end < 0) return buffer.Length >= maxHeadBytes ? ParseStatus.Error : ParseStatus.Incomplete;
        if (end + 4 > maxHeadBytes) return ParseStatus.Error;
        response.HeadLength = end + 4;

        int lineEnd = buffer.IndexOf("\r\n"u8);
        var line = buffer[..lineEnd];
        // A CR not followed by LF (RFC 9112 §2.2) would be relayed for the client to split differently: refuse it.
        if (HasBareCr(buffer[..(end + 2)])) return ParseStatus.Error;
        // "HTTP/1.x SSS" optionally followed by " reason".
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[8] != ' ' || (line.Length > 12 && line[12] != ' ')) return ParseStatus.Error;
        bool http11 = line[7] == '1';
        if (!http11 && line[7] != '0') return ParseStatus.Error;
        if (!Utf8Parser.TryParse(line.Slice(9, 3), out int status, out int used) || used != 3 || status < 100) return ParseStatus.Error;
        response.Status = status;

        bool close = false, keepAlive = false, chunked = false, otherCoding = false;
        long contentLength = -1;
        var headers = buffer[(lineEnd + 2)..(end + 2)];
        while (!headers.IsEmpty)
        {
            int nl = headers.IndexOf("\r\n"u8);
            var header = headers[..nl];
            headers = headers[(nl + 2)..];
            int colon = header.IndexOf((byte)':');
            // obs-fold (a line starting with SP/HTAB continues the previous one, RFC 9112 §5.2): refused rather than relayed.
            if (colon <= 0 || header.IndexOf((byte)'\n') >= 0 || header[0] is (byte)' ' or (byte)'\t') return ParseStatus.Error;
            var name = header[..colon];
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
                }
            }
        }

        response.Reusable = http11 ? !close : keepAlive && !close;
        if (requestWasHead || status < 200 || status == 204 || status == 304)
        {
            response.Framing = BodyFraming.None;
        }
        else if (chunked || otherCoding)
        {
            response.Framing = chunked && !otherCoding ? BodyFraming.Chunked : BodyFraming.UntilClose;
            // A Content-Length beside Transfer-Encoding is ignored, but such an upstream is not trusted again.
            if (contentLength >= 0 || otherCoding) response.Reusable = false;
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
