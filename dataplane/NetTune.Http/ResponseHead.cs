using System.Buffers.Text;

namespace NetTune.Http;

/// <summary>Writes response heads into caller-owned spans; returns -1 when the span is too small.</summary>
public static class ResponseHead
{
    public static ReadOnlySpan<byte> StatusLine(int status) => status switch
    {
        200 => "HTTP/1.1 200 OK\r\n"u8,
        206 => "HTTP/1.1 206 Partial Content\r\n"u8,
        304 => "HTTP/1.1 304 Not Modified\r\n"u8,
        400 => "HTTP/1.1 400 Bad Request\r\n"u8,
        403 => "HTTP/1.1 403 Forbidden\r\n"u8,
        404 => "HTTP/1.1 404 Not Found\r\n"u8,
        405 => "HTTP/1.1 405 Method Not Allowed\r\n"u8,
        408 => "HTTP/1.1 408 Request Timeout\r\n"u8,
        413 => "HTTP/1.1 413 Content Too Large\r\n"u8,
        414 => "HTTP/1.1 414 URI Too Long\r\n"u8,
        416 => "HTTP/1.1 416 Range Not Satisfiable\r\n"u8,
        417 => "HTTP/1.1 417 Expectation Failed\r\n"u8,
        431 => "HTTP/1.1 431 Request Header Fields Too Large\r\n"u8,
        500 => "HTTP/1.1 500 Internal Server Error\r\n"u8,
        501 => "HTTP/1.1 501 Not Implemented\r\n"u8,
        502 => "HTTP/1.1 502 Bad Gateway\r\n"u8,
        503 => "HTTP/1.1 503 Service Unavailable\r\n"u8,
        504 => "HTTP/1.1 504 Gateway Timeout\r\n"u8,
        505 => "HTTP/1.1 505 HTTP Version Not Supported\r\n"u8,
        _ => "HTTP/1.1 500 Internal Server Error\r\n"u8,
    };

    /// <summary>The interim answer to <c>Expect: 100-continue</c>.</summary>
    public static ReadOnlySpan<byte> Continue => "HTTP/1.1 100 Continue\r\n\r\n"u8;

    /// <summary>The small plain-text body sent with an error status.</summary>
    public static ReadOnlySpan<byte> ErrorBody(int status) => status switch
    {
        400 => "400 Bad Request\n"u8,
        403 => "403 Forbidden\n"u8,
        404 => "404 Not Found\n"u8,
        405 => "405 Method Not Allowed\n"u8,
        408 => "408 Request Timeout\n"u8,
        413 => "413 Content Too Large\n"u8,
        414 => "414 URI Too Long\n"u8,
        416 => "416 Range Not Satisfiable\n"u8,
        417 => "417 Expectation Failed\n"u8,
        431 => "431 Request Header Fields Too Large\n"u8,
        501 => "501 Not Implemented\n"u8,
        502 => "502 Bad Gateway\n"u8,
        503 => "503 Service Unavailable\n"u8,
        504 => "504 Gateway Timeout\n"u8,
        505 => "505 HTTP Version Not Supported\n"u8,
        _ => "500 Internal Server Error\n"u8,
    };

    /// <summary>
    /// Head for a file response. <paramref name="fileHeaders"/> is the per-file block (Content-Type,
    /// Last-Modified, ETag, Accept-Ranges) built once when the file was cached. A 200 is
    /// <see cref="WriteStart"/> followed by <see cref="WriteFullEnd"/>, which servers may keep per file.
    /// </summary>
    public static int WriteFile(Span<byte> d, ResponsePlan plan, long size, ReadOnlySpan<byte> date,
        ReadOnlySpan<byte> fileHeaders, ConnectionHeader connection)
    {
        int status = plan.Kind switch
        {
            ResponseKind.Full => 200,
            ResponseKind.Partial => 206,
            ResponseKind.NotModified => 304,
            _ => 416,
        };
        int start = WriteStart(d, status, date, connection);
        if (start < 0) return -1;
        if (plan.Kind == ResponseKind.Full)
        {
            int end = WriteFullEnd(d[start..], fileHeaders, plan.Length);
            return end < 0 ? -1 : start + end;
        }
        var w = new SpanWriter(d[start..]);
        if (plan.Kind == ResponseKind.RangeNotSatisfiable)
        {
            var body = ErrorBody(416);
            w.Write("Content-Type: text/plain\r\nContent-Range: bytes */"u8);
            w.Write(size);
            w.Write("\r\nContent-Length: "u8);
            w.Write(body.Length);
            w.Write("\r\n"u8);
        }
        else
        {
            w.Write(fileHeaders);
            if (plan.Kind == ResponseKind.Partial)
            {
                w.Write("Content-Range: bytes "u8);
                w.Write(plan.Start);
                w.Write((byte)'-');
                w.Write(plan.Start + plan.Length - 1);
                w.Write((byte)'/');
                w.Write(size);
                w.Write("\r\nContent-Length: "u8);
                w.Write(plan.Length);
                w.Write("\r\n"u8);
            }
        }
        w.Write("\r\n"u8);
        return w.Failed ? -1 : start + w.Position;
    }

    /// <summary>
    /// What a response head starts with: the status line, Server, Date and the Connection header. It is all that
    /// changes from one 200 of a file to the next (the date once a second), so it comes first.
    /// </summary>
    public static int WriteStart(Span<byte> d, int status, ReadOnlySpan<byte> date, ConnectionHeader connection)
    {
        var w = new SpanWriter(d);
        w.Write(StatusLine(status));
        w.Write("Server: nettune\r\nDate: "u8);
        w.Write(date);
        w.Write("\r\n"u8);
        WriteConnection(ref w, connection);
        return w.Failed ? -1 : w.Position;
    }

    /// <summary>The rest of a 200 for a whole file: its header block, Content-Length and the blank line.</summary>
    public static int WriteFullEnd(Span<byte> d, ReadOnlySpan<byte> fileHeaders, long length)
    {
        var w = new SpanWriter(d);
        w.Write(fileHeaders);
        w.Write("Content-Length: "u8);
        w.Write(length);
        w.Write("\r\n\r\n"u8);
        return w.Failed ? -1 : w.Position;
    }

    public static int WriteError(Span<byte> d, int status, ReadOnlySpan<byte> date, ConnectionHeader connection)
    {
        int start = WriteStart(d, status, date, connection);
        if (start < 0) return -1;
        var w = new SpanWriter(d[start..]);
        w.Write("Content-Type: text/plain\r\nContent-Length: "u8);
        w.Write(ErrorBody(status).Length);
        w.Write("\r\n"u8);
        if (status == 405) w.Write("Allow: GET, HEAD\r\n"u8);
        w.Write("\r\n"u8);
        return w.Failed ? -1 : start + w.Position;
    }

    private static void WriteConnection(ref SpanWriter w, ConnectionHeader connection)
    {
        if (connection == ConnectionHeader.Close) w.Write("Connection: close\r\n"u8);
        else if (connection == ConnectionHeader.KeepAlive) w.Write("Connection: keep-alive\r\n"u8);
    }

    /// <summary>The per-file header block: built once per cached file, copied into every response head.</summary>
    public static byte[] BuildFileHeaders(string contentType, long mtimeUnixSeconds, ReadOnlySpan<byte> etag)
    {
        Span<byte> buf = stackalloc byte[512];
        var w = new SpanWriter(buf);
        w.Write("Content-Type: "u8);
        foreach (char c in contentType) w.Write((byte)c);
        w.Write("\r\nLast-Modified: "u8);
        Span<byte> date = stackalloc byte[HttpDate.Length];
        HttpDate.Format(DateTimeOffset.FromUnixTimeSeconds(mtimeUnixSeconds), date);
        w.Write(date);
        w.Write("\r\nETag: "u8);
        w.Write(etag);
        w.Write("\r\nAccept-Ranges: bytes\r\n"u8);
        if (w.Failed) throw new InvalidOperationException("file header block does not fit in 512 bytes");
        return buf[..w.Position].ToArray();
    }

    /// <summary>nginx-style validator: hex mtime and size. Cheap and stable across restarts.</summary>
    public static byte[] BuildEtag(long mtimeUnixSeconds, long size) =>
        System.Text.Encoding.ASCII.GetBytes($"\"{mtimeUnixSeconds:x}-{size:x}\"");
}

/// <summary>Which Connection header a response carries: none (HTTP/1.1 default), close, or keep-alive (HTTP/1.0).</summary>
public enum ConnectionHeader : byte
{
    None,
    Close,
    KeepAlive,
}
