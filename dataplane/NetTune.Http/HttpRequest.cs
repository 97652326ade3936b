namespace NetTune.Http;

public enum HttpMethodKind : byte
{
    Get,
    Head,
    /// <summary>A well-formed method token we do not serve (answered with 405).</summary>
    Other,
}

public enum ParseStatus : byte
{
    /// <summary>The buffer holds no complete request head yet; read more.</summary>
    Incomplete,
    Complete,
    /// <summary>The request is bad; <see cref="HttpRequest.ErrorStatus"/> says how to answer.</summary>
    Error,
}

/// <summary>
/// A parsed request head. Header values are offsets into the buffer the parser saw, not copies, so
/// parsing allocates nothing and the struct stays valid exactly as long as that buffer is unchanged.
/// </summary>
public struct HttpRequest
{
    public HttpMethodKind Method;
    public bool IsHttp11;
    public bool KeepAlive;
    /// <summary>Bytes of the request head including the blank line; the next pipelined request starts here.</summary>
    public int HeadLength;
    public int ErrorStatus;
    public TextSlice Target;
    public TextSlice Range;
    public TextSlice IfRange;
    public TextSlice IfNoneMatch;
    public TextSlice IfModifiedSince;
    public long ContentLength;
    public bool HasTransferEncoding;
}

/// <summary>An offset/length pair into a request buffer; Length 0 means "absent".</summary>
public readonly record struct TextSlice(int Start, int Length)
{
    public bool IsPresent => Length > 0;
    public ReadOnlySpan<byte> Of(ReadOnlySpan<byte> buffer) => buffer.Slice(Start, Length);
}

public sealed record HttpLimits(int MaxRequestLineBytes = 8192, int MaxHeaderBytes = 16384, int MaxHeaderCount = 100)
{
    public static readonly HttpLimits Default = new();
}
