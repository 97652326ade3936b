namespace NetTune.Http.Proxy;

/// <summary>
/// Finds where a chunked message body ends (RFC 9112 §7.1) without decoding it: a proxy relays the
/// chunks unchanged, but must know which of the bytes it holds still belong to this message and which
/// start the next one. Feed it bytes in any split; it keeps its place between calls.
/// </summary>
public struct ChunkedBodyReader
{
    private enum State : byte { Size, ExtensionStart, Extension, SizeLf, Data, DataCr, DataLf, TrailerStart, TrailerLine, TrailerLf, FinalLf, Done, Invalid }

    /// <summary>Chunk sizes over 2^60 are refused: nothing legitimate is that big, and it keeps the arithmetic safe.</summary>
    private const int MaxSizeDigits = 15;
    private const int MaxTrailerBytes = 16 * 1024;

    private State _state;
    private int _digits;
    private long _remaining;
    private int _trailerBytes;

    /// <summary>Payload bytes seen so far (chunk data only, not framing).</summary>
    public long PayloadBytes { get; private set; }
    /// <summary>Payload bytes announced so far: those seen plus the rest of the chunk being read, known as soon as its size line is.</summary>
    public long DeclaredBytes { get; private set; }
    public readonly bool IsDone => _state == State.Done;
    public readonly bool IsInvalid => _state == State.Invalid;

    /// <summary>
    /// Consumes the bytes of <paramref name="data"/> that belong to the body; returns how many that was
    /// (less than the span only when the body ended inside it), or -1 if the framing is malformed.
    /// </summary>
    public int Consume(ReadOnlySpan<byte> data)
    {
        int ignored = 0;
        return Run(data, default, decode: false, ref ignored);
    }

    /// <summary>
    /// As <see cref="Consume"/>, and also decodes in place: the chunk data among the consumed bytes is moved to the
    /// front of <paramref name="data"/>, <paramref name="payload"/> bytes of it (for a client that cannot take chunks).
    /// </summary>
    public int Decode(Span<byte> data, out int payload)
    {
        payload = 0;
        return Run(data, data, decode: true, ref payload);
    }

    private int Run(ReadOnlySpan<byte> data, Span<byte> output, bool decode, ref int written)
    {
        int i = 0;
        while (i < data.Length && _state != State.Done)
        {
            byte b = data[i];
            switch (_state)
            {
                case State.Size:
                    int hex = HexValue(b);
                    if (hex >= 0)
                    {
                        if (++_digits > MaxSizeDigits) return Invalid();
                        _remaining = _remaining << 4 | (uint)hex;
                    }
                    else if (_digits == 0) return Invalid();
                    else if (b == ';') _state = State.Extension;
                    else if (b == ' ' || b == '\t') _state = State.ExtensionStart;
                    else if (b == '\r') _state = State.SizeLf;
                    else return Invalid();
                    i++;
                    break;
                case State.ExtensionStart:
                    // Whitespace after the size leads to an extension (RFC 9112 §7.1.1: BWS ";" ...) or the line's end,
                    // nothing else: "ADD /x HTTP/1.1" is not a chunk-size line, however a lenient reader takes it.
                    if (b == ';') _state = State.Extension;
                    else if (b == '\r') _state = State.SizeLf;
                    else if (b != ' ' && b != '\t') return Invalid();
                    i++;
                    break;
                case State.Extension:
                    if (b == '\r') _state = State.SizeLf;
                    else if (b == '\n' || b < 0x20 && b != '\t' || b == 0x7f) return Invalid();
                    i++;
                    break;
                case State.SizeLf:
                    if (b != '\n') return Invalid();
                    _state = _remaining == 0 ? State.TrailerStart : State.Data;
                    DeclaredBytes += _remaining;
                    i++;
                    break;
                case State.Data:
                    int take = (int)Math.Min(_remaining, data.Length - i);
                    // Overlapping moves towards the front are safe: CopyTo handles overlap.
                    if (decode) data.Slice(i, take).CopyTo(output[written..]);
                    written += take;
                    _remaining -= take;
                    PayloadBytes += take;
                    i += take;
                    if (_remaining == 0) _state = State.DataCr;
                    break;
                case State.DataCr:
                    if (b != '\r') return Invalid();
                    _state = State.DataLf;
                    i++;
                    break;
                case State.DataLf:
                    if (b != '\n') return Invalid();
                    _state = State.Size;
                    _digits = 0;
                    i++;
                    break;
                case State.TrailerStart:
                    _state = b == '\r' ? State.FinalLf : State.TrailerLine;
                    if (_state == State.TrailerLine && ++_trailerBytes > MaxTrailerBytes) return Invalid();
                    i++;
                    break;
                case State.TrailerLine:
                    if (b == '\r') _state = State.TrailerLf;
                    else if (b == '\n' || ++_trailerBytes > MaxTrailerBytes) return Invalid();
                    i++;
                    break;
                case State.TrailerLf:
                    if (b != '\n') return Invalid();
                    _state = State.TrailerStart;
                    i++;
                    break;
                case State.FinalLf:
                    if (b != '\n') return Invalid();
                    _state = State.Done;
                    i++;
                    break;
                default:
                    return -1;
            }
        }
        return i;
    }

    private int Invalid()
    {
        _state = State.Invalid;
        return -1;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
