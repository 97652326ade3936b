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
    /// <summary>The body is framed by chunked transfer coding (only accepted when bodies are, see <see cref="HttpLimits.MaxBodyBytes"/>).</summary>
    public bool IsChunked;
    /// <summary>The client sent <c>Expect: 100-continue</c> and waits for an interim answer before its body.</summary>
    public bool ExpectsContinue;
    public TextSlice MethodToken;
    /// <summary>The authority of an absolute-form target (<c>GET http://host:port/path</c>); <see cref="Target"/> is then its path.</summary>
    public TextSlice Authority;
    public bool HasHost;
}

/// <summary>An offset/length pair into a request buffer; Length 0 means "absent".</summary>
public readonly record struct TextSlice(int Start, int Length)
{
    public bool IsPresent => Length > 0;
    public ReadOnlySpan<byte> Of(ReadOnlySpan<byte> buffer) => buffer.Slice(Start, Length);
}

/// <param name="MaxBodyBytes">Largest request body accepted (413 above); 0 leaves bodies to the caller (the static-file server answers by method and discards small ones).</param>
public sealed record HttpLimits(int MaxRequestLineBytes = 8192, int MaxHeaderBytes = 16384, int MaxHeaderCount = 100, long MaxBodyBytes = 0)
{
    public static readonly HttpLimits Default = new();
}
