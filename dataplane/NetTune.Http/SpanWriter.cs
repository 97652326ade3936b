using System.Buffers.Text;

namespace NetTune.Http;

/// <summary>Appends to a fixed span; remembers overflow instead of throwing, so callers check once at the end.</summary>
internal ref struct SpanWriter(Span<byte> destination)
{
    private readonly Span<byte> _d = destination;
    public int Position;
    public bool Failed;

    public void Write(ReadOnlySpan<byte> s)
    {
        if (Failed || !s.TryCopyTo(_d[Position..])) { Failed = true; return; }
        Position += s.Length;
    }

    public void Write(byte b)
    {
        if (Failed || Position >= _d.Length) { Failed = true; return; }
        _d[Position++] = b;
    }

    public void Write(long v)
    {
        if (Failed || !Utf8Formatter.TryFormat(v, _d[Position..], out int n)) { Failed = true; return; }
        Position += n;
    }
}
