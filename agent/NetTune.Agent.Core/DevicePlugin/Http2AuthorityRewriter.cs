using System.Buffers;
using System.Buffers.Binary;

namespace NetTune.Agent.Core.DevicePlugin;

/// <summary>
/// Empties the <c>:authority</c> of HTTP/2 requests read from a client, frame by frame, for a server that refuses an
/// authority that is not a host. Kubelets before 1.26 (grpc-go dialled with a bare socket path, kubernetes#112597)
/// send the device plugin's socket path, such as <c>/var/lib/kubelet/device-plugins/x.sock</c>, as <c>:authority</c>,
/// and Kestrel resets every such stream (PROTOCOL_ERROR, "Invalid Host header"; dotnet/aspnetcore#18522, #47043).
/// An empty authority is valid, and nothing here reads it.
/// <para>
/// Only header blocks change: a HEADERS frame (with its CONTINUATION frames) is re-emitted as one HEADERS frame with
/// END_HEADERS, without padding, in which every literal field whose name is the static table's <c>:authority</c>
/// (index 1) carries an empty value. The field keeps its representation, so with incremental indexing it still enters
/// the server's dynamic table, only smaller: the server's table then keeps at least every entry the client's encoder
/// still counts on, and the indices the client sends stay right. Every other frame passes through unchanged. Input
/// that is not a well-formed header block passes unchanged too, for the server to refuse as it would.
/// </para>
/// </summary>
public sealed class Http2AuthorityRewriter
{
    /// <summary>The client connection preface (RFC 9113 section 3.4), passed through.</summary>
    public const int PrefaceLength = 24;

    /// <summary>SETTINGS_MAX_FRAME_SIZE as servers start (Kestrel's default): longer frames are split at it.</summary>
    public const int MaxFrameSize = 16384;

    /// <summary>The most header block bytes held while CONTINUATION frames arrive; more passes the connection through as is.</summary>
    public const int MaxHeaderBlock = 64 * 1024;

    private const int FrameHeaderLength = 9;
    private const byte Headers = 0x1, Continuation = 0x9;
    private const byte EndHeaders = 0x4, Padded = 0x8, Priority = 0x20;

    private int _prefaceLeft = PrefaceLength;
    private long _copyLeft;
    private bool _passThrough;
    private ArrayBufferWriter<byte>? _block;
    private byte _blockFlags;
    private uint _blockStream;
    private byte[] _blockPriority = [];

    /// <summary>
    /// Consumes what it can of <paramref name="input"/> (whole frames, and the rest of a frame being copied), writing
    /// the result to <paramref name="output"/>; returns how many bytes it consumed. Call again with the unconsumed rest
    /// and more input.
    /// </summary>
    public int Process(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        var at = 0;
        while (at < input.Length)
        {
            if (_passThrough)
            {
                output.Write(input[at..]);
                return input.Length;
            }
            if (_prefaceLeft > 0 || _copyLeft > 0)
            {
                var n = (int)Math.Min(input.Length - at, _prefaceLeft > 0 ? _prefaceLeft : _copyLeft);
                output.Write(input.Slice(at, n));
                at += n;
                if (_prefaceLeft > 0) _prefaceLeft -= n;
                else _copyLeft -= n;
                continue;
            }
            if (input.Length - at < FrameHeaderLength) break;
            var header = input.Slice(at, FrameHeaderLength);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var type = header[3];
            var flags = header[4];
            var stream = BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7FFF_FFFF;
            var isHeaderBlock = type == Headers || (type == Continuation && _block is not null);
            if (!isHeaderBlock || length > MaxFrameSize || (_block is not null && type != Continuation))
            {
                if (_block is not null || isHeaderBlock)
                {
                    // A frame other than CONTINUATION inside a header block, or one too long: a protocol error the
                    // server reports; from here on it sees the bytes as sent.
                    FlushPendingAsIs(output);
                    _passThrough = true;
                    continue;
                }
                output.Write(header);
                at += FrameHeaderLength;
                _copyLeft = length;
                continue;
            }
            if (input.Length - at < FrameHeaderLength + length) break;
            var payload = input.Slice(at + FrameHeaderLength, length);
            at += FrameHeaderLength + length;
            if (type == Headers && !StartBlock(flags, stream, payload, output, header)) continue;
            if (type == Continuation)
            {
                if (stream != _blockStream || _block!.WrittenCount + payload.Length > MaxHeaderBlock)
                {
                    FlushPendingAsIs(output);
                    output.Write(header);
                    output.Write(payload);
                    _passThrough = true;
                    continue;
                }
                _block.Write(payload);
                flags = (byte)(_blockFlags | (flags & EndHeaders));
            }
            if ((flags & EndHeaders) != 0) EmitBlock(output);
        }
        return at;
    }

    /// <summary>Starts a header block from a HEADERS frame; false when the frame was passed through as sent.</summary>
    private bool StartBlock(byte flags, uint stream, ReadOnlySpan<byte> payload, IBufferWriter<byte> output, ReadOnlySpan<byte> header)
    {
        var start = 0;
        var end = payload.Length;
        if ((flags & Padded) != 0)
        {
            if (payload.Length < 1 || payload[0] >= payload.Length) return PassFrame(output, header, payload);
            end -= payload[0];
            start = 1;
        }
        var priority = (flags & Priority) != 0 ? 5 : 0;
        if (end - start < priority) return PassFrame(output, header, payload);
        _blockPriority = payload.Slice(start, priority).ToArray();
        _block = new ArrayBufferWriter<byte>(Math.Max(256, end - start - priority));
        _block.Write(payload[(start + priority)..end]);
        _blockFlags = (byte)(flags & ~Padded);
        _blockStream = stream;
        return true;
    }

    private static bool PassFrame(IBufferWriter<byte> output, ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        output.Write(header);
        output.Write(payload);
        return false;
    }

    private void EmitBlock(IBufferWriter<byte> output)
    {
        var block = RewriteHeaderBlock(_block!.WrittenSpan);
        var first = true;
        var at = 0;
        do
        {
            var room = MaxFrameSize - (first ? _blockPriority.Length : 0);
            var n = Math.Min(room, block.Length - at);
            var last = at + n == block.Length;
            var flags = first ? (byte)(_blockFlags & ~EndHeaders) : (byte)0;
            if (last) flags |= EndHeaders;
            WriteFrameHeader(output, n + (first ? _blockPriority.Length : 0), first ? Headers : Continuation, flags, _blockStream);
            if (first) output.Write(_blockPriority);
            output.Write(block.AsSpan(at, n));
            at += n;
            first = false;
        } while (at < block.Length);
        _block = null;
    }

    /// <summary>A header block cut short by a protocol error goes out as it came, in one HEADERS frame without END_HEADERS.</summary>
    private void FlushPendingAsIs(IBufferWriter<byte> output)
    {
        if (_block is null) return;
        WriteFrameHeader(output, _blockPriority.Length + _block.WrittenCount, Headers, (byte)(_blockFlags & ~EndHeaders), _blockStream);
        output.Write(_blockPriority);
        output.Write(_block.WrittenSpan);
        _block = null;
    }

    private static void WriteFrameHeader(IBufferWriter<byte> output, int length, byte type, byte flags, uint stream)
    {
        Span<byte> h = stackalloc byte[FrameHeaderLength];
        h[0] = (byte)(length >> 16);
        h[1] = (byte)(length >> 8);
        h[2] = (byte)length;
        h[3] = type;
        h[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(h[5..], stream);
        output.Write(h);
    }

    /// <summary>
    /// The HPACK block (RFC 7541) with the value of every literal field named by static index 1 (:authority) emptied;
    /// the block unchanged when it does not parse.
    /// </summary>
    public static byte[] RewriteHeaderBlock(ReadOnlySpan<byte> block)
    {
        var output = new ArrayBufferWriter<byte>(block.Length);
        var at = 0;
        while (at < block.Length)
        {
            var first = block[at];
            var start = at;
            int prefixBits;
            if ((first & 0x80) != 0) prefixBits = 7;          // indexed field
            else if ((first & 0xC0) == 0x40) prefixBits = 6;  // literal, incremental indexing
            else if ((first & 0xE0) == 0x20) prefixBits = 5;  // dynamic table size update
            else prefixBits = 4;                              // literal without indexing / never indexed
            if (!TryReadInteger(block, ref at, prefixBits, out var index)) return block.ToArray();
            if (prefixBits is 7 or 5)
            {
                output.Write(block[start..at]);
                continue;
            }
            if (index == 0 && !TrySkipString(block, ref at)) return block.ToArray();
            var nameEnd = at;
            if (!TrySkipString(block, ref at)) return block.ToArray();
            output.Write(block[start..nameEnd]);
            if (index == 1) output.Write([(byte)0]);
            else output.Write(block[nameEnd..at]);
        }
        return output.WrittenSpan.ToArray();
    }

    private static bool TryReadInteger(ReadOnlySpan<byte> block, ref int at, int prefixBits, out long value)
    {
        var max = (1 << prefixBits) - 1;
        value = block[at++] & max;
        if (value < max) return true;
        var shift = 0;
        while (at < block.Length)
        {
            var b = block[at++];
            value += (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value <= int.MaxValue;
            shift += 7;
            if (shift > 28) return false;
        }
        return false;
    }

    private static bool TrySkipString(ReadOnlySpan<byte> block, ref int at)
    {
        if (at >= block.Length || !TryReadInteger(block, ref at, 7, out var length)) return false;
        if (length > block.Length - at) return false;
        at += (int)length;
        return true;
    }
}
