using System.Diagnostics;
using NetTune.Http;
using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>What a connection needs from its engine next.</summary>
internal enum SessionNext : byte
{
    Recv, Send, Stream, Close,
    /// <summary>
    /// Input is waiting to be parsed, but the response-head area is still referenced by zero-copy sends
    /// whose completion notices have not arrived: the engine resumes the session when they have.
    /// </summary>
    AwaitZeroCopy,
}

/// <summary>
/// One client connection's protocol state, independent of the I/O engine. Owns a native block laid
/// out as [receive buffer | response-head area | iovec array | msghdr]; responses are gathered as
/// iovecs (heads from the head area, bodies straight from the memory cache) and leave in one sendmsg,
/// so pipelined requests are answered with one syscall and nothing is allocated per request.
/// </summary>
internal sealed unsafe class HttpSession
{
    public const int MaxIov = 64;
    private const int HeadAreaBytes = 8192;
    // Leave room for the biggest head we write (status, Date, per-file block, Content-Range, Connection).
    private const int HeadReserve = 1024;

    public readonly int Slot;
    public int Fd = -1;
    public bool PeerIsLoopback;
    public readonly byte* Recv;
    public readonly int RecvCapacity;
    public int RecvLength;
    private readonly byte* _head;
    private int _headUsed;
    public readonly IoVec* Iov;
    private int _iovStart, _iovEnd;
    public readonly MsgHdr* Msg;
    private readonly FileEntry?[] _pinned = new FileEntry?[MaxIov];
    private int _pinnedCount;

    /// <summary>Whether this connection may send cached bodies zero-copy (mode, peer and engine allow it).</summary>
    public bool CanZeroCopySend;
    /// <summary>Zero-copy bodies in the queued output: while non-zero the engine sends it all zero-copy.</summary>
    private int _zeroCopyBodies;
    /// <summary>
    /// Zero-copy sends whose data the kernel may still read (no completion notice yet). While non-zero the
    /// head area is only appended to, never rewound, and the entries of finished output wait in
    /// <see cref="_retired"/>: the kernel reads those pages until the notice, not just until the send completes.
    /// </summary>
    public int ZeroCopyNoticesPending;
    private readonly List<FileEntry> _retired = new(MaxIov);

    /// <summary>A body streamed from a file (too big for the memory cache), sent after the queued output.</summary>
    public FileEntry? StreamFile;
    public long StreamOffset, StreamRemaining;
    public bool StreamZeroCopy;
    public byte* Chunk;
    /// <summary>io_uring splice path: a per-connection pipe and how many bytes sit in it.</summary>
    public int PipeRead = -1, PipeWrite = -1;
    public long PipeBytes;
    public int PipeCapacity;

    /// <summary>
    /// io_uring multishot receive: whether it is armed, and provided buffers whose bytes did not fit in
    /// <see cref="Recv"/> yet (held, not recycled, until the parser makes room: that is the back-pressure).
    /// </summary>
    public bool RecvArmed;
    public const int MaxStash = 16;
    public readonly ushort[] StashBuffer = new ushort[MaxStash];
    public readonly int[] StashOffset = new int[MaxStash];
    public readonly int[] StashLength = new int[MaxStash];
    public int StashCount;

    public bool CloseAfterFlush;
    /// <summary>
    /// An error answer ends the connection while the client may still be sending (a body we refused): the engine
    /// closes by lingering, shutting down its side and reading what comes until the client closes or
    /// <see cref="LingeringTimeoutMs"/> passes, so that unread bytes do not turn the close into a reset that
    /// destroys the answer on its way.
    /// </summary>
    public bool LingerOnClose;
    public bool Lingering;
    public long LingerSinceMs;
    public const int LingeringTimeoutMs = 5000;
    /// <summary>Largest request body the static server reads and discards (GET/HEAD with a body, 405s); larger ones get 413/405 and a close.</summary>
    public const long DiscardBodyMaxBytes = 64 * 1024;
    /// <summary>Bytes of the current request's body still to be read and dropped before the next request head.</summary>
    private long _discardRemaining;
    /// <summary>
    /// The client half-closed (its FIN was read): the requests already received are still answered and every
    /// queued byte sent, then the connection closes instead of waiting for more input.
    /// </summary>
    public bool PeerClosed;
    public SessionNext Waiting;
    public long HeadStartMs, IdleSinceMs, LastProgressMs;
    /// <summary>How fast the client takes the responses (see --min-response-rate).</summary>
    public ResponseRateWindow ResponseRate;
    /// <summary>Stopwatch time of the receive that delivered the oldest unparsed byte in <see cref="Recv"/>; bytes appended later share it.</summary>
    private long _firstByteTicks;
    /// <summary>Responses queued by the last parse and not yet fully handed to the kernel, and when their requests arrived.</summary>
    private int _unsentResponses;
    private long _unsentSinceTicks;
    /// <summary>io_uring operations still owned by the kernel; the session is recycled only at zero.</summary>
    public int InFlight;
    public bool Closing;

    public static int BlockSizeFor(HttpLimits limits) =>
        (limits.MaxHeaderBytes + HeadAreaBytes + MaxIov * sizeof(IoVec) + 64 + 4095) & ~4095;

    public HttpSession(int slot, byte* block, HttpLimits limits)
    {
        Slot = slot;
        Recv = block;
        RecvCapacity = limits.MaxHeaderBytes;
        _head = block + RecvCapacity;
        Iov = (IoVec*)(_head + HeadAreaBytes);
        Msg = (MsgHdr*)((byte*)Iov + MaxIov * sizeof(IoVec));
    }

    public bool HasOutput => _iovEnd > _iovStart;
    public long OutputBytes
    {
        get
        {
            long total = 0;
            for (int i = _iovStart; i < _iovEnd; i++) total += (long)Iov[i].Length;
            return total;
        }
    }

    public void Open(int fd, long nowMs, bool peerIsLoopback)
    {
        Fd = fd;
        PeerIsLoopback = peerIsLoopback;
        RecvLength = 0;
        _headUsed = _iovStart = _iovEnd = _pinnedCount = _zeroCopyBodies = ZeroCopyNoticesPending = 0;
        CanZeroCopySend = false;
        StreamFile = null;
        StreamRemaining = StreamOffset = PipeBytes = 0;
        CloseAfterFlush = Closing = RecvArmed = PeerClosed = LingerOnClose = Lingering = false;
        _discardRemaining = 0;
        StashCount = 0;
        InFlight = 0;
        _unsentResponses = 0;
        Waiting = SessionNext.Recv;
        IdleSinceMs = LastProgressMs = HeadStartMs = nowMs;
        ResponseRate.Reset();
    }

    /// <summary>Prepares <see cref="Msg"/> to send everything queued.</summary>
    public MsgHdr* PrepareSend()
    {
        *Msg = default;
        Msg->Iov = Iov + _iovStart;
        Msg->IovLength = (nuint)(_iovEnd - _iovStart);
        return Msg;
    }

    /// <summary>Consumes <paramref name="sent"/> bytes of queued output; true when all of it is gone.</summary>
    public bool AdvanceOutput(long sent)
    {
        if (!IoVecs.Consume(Iov, ref _iovStart, _iovEnd, sent)) return false;
        _iovStart = _iovEnd = 0;
        _zeroCopyBodies = 0;
        bool kernelStillReads = ZeroCopyNoticesPending > 0;
        if (!kernelStillReads) _headUsed = 0;
        for (int i = 0; i < _pinnedCount; i++)
        {
            if (kernelStillReads) _retired.Add(_pinned[i]!);
            else _pinned[i]!.Release();
            _pinned[i] = null;
        }
        _pinnedCount = 0;
        return true;
    }

    /// <summary>Whether the queued output holds a body chosen for a zero-copy send.</summary>
    public bool WantsZeroCopySend => _zeroCopyBodies > 0;

    /// <summary>
    /// <paramref name="notices"/> zero-copy sends have been released by the kernel. True when none is left:
    /// retired bodies are released and the head area can be rewound.
    /// </summary>
    public bool OnZeroCopyNotices(int notices)
    {
        ZeroCopyNoticesPending -= notices;
        if (ZeroCopyNoticesPending > 0) return false;
        ZeroCopyNoticesPending = 0;
        foreach (var entry in _retired) entry.Release();
        _retired.Clear();
        if (!HasOutput) _headUsed = 0;
        return true;
    }

    public void QueueChunk(byte* data, int length)
    {
        Iov[_iovEnd++] = new IoVec { Base = data, Length = (nuint)length };
    }

    /// <summary>Called by the engine when bytes were appended at Recv + RecvLength.</summary>
    public void OnReceived(int count, long nowMs)
    {
        if (RecvLength == 0)
        {
            HeadStartMs = nowMs;
            _firstByteTicks = Stopwatch.GetTimestamp();
        }
        RecvLength += count;
    }

    /// <summary>
    /// Decides the next step after a receive or a completed send; parses and queues responses. After the client's
    /// FIN, a wish to receive more becomes a close once no received byte is held elsewhere (<paramref name="inputHeld"/>).
    /// </summary>
    public SessionNext Next(Worker worker, bool inputHeld = false)
    {
        var next = NextStep(worker);
        return next == SessionNext.Recv && PeerClosed && !inputHeld ? SessionNext.Close : next;
    }

    private SessionNext NextStep(Worker worker)
    {
        if (HasOutput) return SessionNext.Send;
        if (StreamFile != null)
        {
            if (StreamRemaining > 0 || PipeBytes > 0) return SessionNext.Stream;
            EndStream(worker);
        }
        if (_unsentResponses > 0)
        {
            // Everything queued has been handed to the kernel: one clock read times the whole batch.
            worker.Stats.RecordDuration(Stopwatch.GetTimestamp() - _unsentSinceTicks, _unsentResponses);
            _unsentResponses = 0;
        }
        if (CloseAfterFlush) return SessionNext.Close;
        if (RecvLength > 0)
        {
            // New heads go after the ones the kernel may still be reading; past half the area, wait for it.
            if (ZeroCopyNoticesPending > 0 && _headUsed > HeadAreaBytes / 2) return SessionNext.AwaitZeroCopy;
            ProcessInput(worker);
            if (HasOutput) return SessionNext.Send;
            if (StreamFile != null) return SessionNext.Stream;
            if (CloseAfterFlush) return SessionNext.Close;
        }
        if (worker.Draining && RecvLength == 0) return SessionNext.Close;
        if (RecvLength == 0) IdleSinceMs = worker.NowMs;
        return SessionNext.Recv;
    }

    public void EndStream(Worker worker)
    {
        StreamFile?.Release();
        StreamFile = null;
        StreamRemaining = 0;
        if (Chunk != null)
        {
            worker.ChunkPool.Return(Chunk);
            Chunk = null;
        }
    }

    /// <summary>Releases everything the session holds; the engine closes the socket.</summary>
    public void Reset(Worker worker)
    {
        AdvanceOutput(long.MaxValue);
        ZeroCopyNoticesPending = 0;
        foreach (var entry in _retired) entry.Release();
        _retired.Clear();
        EndStream(worker);
        if (PipeRead >= 0) { Libc.close(PipeRead); Libc.close(PipeWrite); PipeRead = PipeWrite = -1; }
        PipeBytes = 0;
        RecvLength = 0;
        _unsentResponses = 0; // the connection ended before they were all sent: no duration to report
        Fd = -1;
    }

    private void ProcessInput(Worker worker)
    {
        int consumed = 0;
        var limits = worker.Options.Limits;
        // Every request in the buffer arrived no later than its first byte; leftovers keep that time too.
        _unsentSinceTicks = _firstByteTicks;
        while (!CloseAfterFlush && StreamFile == null && consumed < RecvLength
               && _iovEnd + 2 <= MaxIov && HeadAreaBytes - _headUsed >= HeadReserve)
        {
            if (_discardRemaining > 0)
            {
                int dropped = (int)Math.Min(_discardRemaining, RecvLength - consumed);
                consumed += dropped;
                _discardRemaining -= dropped;
                continue;
            }
            var buffer = new ReadOnlySpan<byte>(Recv + consumed, RecvLength - consumed);
            var status = HttpParser.TryParse(buffer, limits, out var request);
            if (status == ParseStatus.Incomplete) break;
            if (status == ParseStatus.Error)
            {
                // After a framing error we cannot find the next request: answer and close.
                QueueError(worker, request.ErrorStatus, keepAlive: false, withBody: true);
                _unsentResponses++;
                consumed = RecvLength;
                break;
            }
            HandleRequest(worker, buffer, in request);
            _unsentResponses++;
            consumed += request.HeadLength;
        }
        if (consumed == 0) return;
        RecvLength -= consumed;
        if (RecvLength > 0)
        {
            Buffer.MemoryCopy(Recv + consumed, Recv, RecvCapacity, RecvLength);
            HeadStartMs = worker.NowMs;
        }
    }

    private void HandleRequest(Worker worker, ReadOnlySpan<byte> buffer, in HttpRequest request)
    {
        bool keepAlive = request.KeepAlive && !worker.Draining;
        bool head = request.Method == HttpMethodKind.Head;
        if (request.HasTransferEncoding || request.ContentLength > 0)
        {
            // No method here takes a body: a small one is read and dropped and the request answered as usual
            // (405 for methods we do not serve); one we cannot or will not read ends the connection.
            if (request.HasTransferEncoding || request.ContentLength > DiscardBodyMaxBytes)
            {
                QueueError(worker, request.Method == HttpMethodKind.Other ? 405 : 413, keepAlive: false, withBody: !head);
                return;
            }
            _discardRemaining = request.ContentLength;
        }
        if (request.Method == HttpMethodKind.Other)
        {
            QueueError(worker, 405, keepAlive, withBody: true);
            return;
        }
        var target = request.Target.Of(buffer);
        if (!worker.Files.TryRecent(target, worker.NowMs, out var file))
        {
            Span<byte> path = stackalloc byte[target.Length];
            var pathStatus = PathNormalizer.Normalize(target, path, out int pathLength, worker.Options.AllowDotfiles);
            if (pathStatus != PathStatus.Ok)
            {
                QueueError(worker, pathStatus switch { PathStatus.Traversal => 403, PathStatus.Hidden => 404, _ => 400 }, keepAlive, !head);
                return;
            }
            int lookup = worker.Files.Lookup(path[..pathLength], worker.NowMs, out file);
            if (lookup != 0)
            {
                QueueError(worker, lookup, keepAlive, !head);
                return;
            }
            worker.Files.Remember(target, file!);
        }

        var plan = ResponsePlanner.Plan(buffer, in request, file!.Etag, file.MtimeSeconds, file.Size);
        var connection = !keepAlive ? ConnectionHeader.Close : request.IsHttp11 ? ConnectionHeader.None : ConnectionHeader.KeepAlive;
        worker.Stats.CountStatus(plan.Kind switch
        {
            ResponseKind.Full => 200,
            ResponseKind.Partial => 206,
            ResponseKind.NotModified => 304,
            _ => 416,
        });
        if (!keepAlive) CloseAfterFlush = true;
        if (plan.Kind == ResponseKind.Full && file.FullHeadEnd != null)
        {
            QueueFull(worker, file, connection, head);
            return;
        }
        var area = new Span<byte>(_head + _headUsed, HeadAreaBytes - _headUsed);
        int n = ResponseHead.WriteFile(area, plan, file.Size, worker.Date, file.HeaderBlock, connection);
        if (n < 0)
        {
            QueueError(worker, 500, keepAlive: false, withBody: true);
            return;
        }
        Queue(_head + _headUsed, n);
        _headUsed += n;
        if (head) return;

        if (plan.Kind == ResponseKind.RangeNotSatisfiable)
        {
            QueueStatic(ResponseHead.ErrorBody(416));
            return;
        }
        if (plan.Kind is not (ResponseKind.Full or ResponseKind.Partial) || plan.Length == 0) return;
        QueueBody(file, plan.Start, plan.Length, BodySourceOf(worker, file, plan.Length), headEndBefore: 0);
    }

    /// <summary>
    /// A 200 for a whole file: the start of the head (the same for every file this second) is copied into the head
    /// area, and the file's prebuilt head end goes out with the cached body as one piece, or is copied too.
    /// </summary>
    private void QueueFull(Worker worker, FileEntry file, ConnectionHeader connection, bool head)
    {
        var area = new Span<byte>(_head + _headUsed, HeadAreaBytes - _headUsed);
        int n;
        if (connection == ConnectionHeader.None)
        {
            worker.OkStart.CopyTo(area);
            n = worker.OkStart.Length;
        }
        else n = ResponseHead.WriteStart(area, 200, worker.Date, connection);
        Queue(_head + _headUsed, n);
        _headUsed += n;
        var body = head || file.Size == 0 ? BodySource.None : BodySourceOf(worker, file, file.Size);
        if (body is BodySource.Memory or BodySource.MemoryZeroCopySend)
        {
            QueueBody(file, 0, file.Size, body, headEndBefore: file.FullHeadEndLength);
            return;
        }
        // Adjacent to the start just queued, so the two merge into one iovec.
        new ReadOnlySpan<byte>(file.FullHeadEnd, file.FullHeadEndLength).CopyTo(area[n..]);
        Queue(_head + _headUsed, file.FullHeadEndLength);
        _headUsed += file.FullHeadEndLength;
        if (body != BodySource.None) QueueBody(file, 0, file.Size, body, headEndBefore: 0);
    }

    private enum BodySource : byte { None, Memory, MemoryZeroCopySend, FileCopied, FileZeroCopy }

    private BodySource BodySourceOf(Worker worker, FileEntry file, long length)
    {
        var options = worker.Options;
        // A cached body the kernel can take without copying beats splicing it from the page cache.
        if (file.Content != null && CanZeroCopySend && length >= options.ZeroCopySendMinBytes) return BodySource.MemoryZeroCopySend;
        // Zero-copy (sendfile/splice) is chosen per response. Measured here over loopback: for 64 KiB
        // bodies splice/sendfile beat copying from memory, but for multi-MiB streams read+send is faster
        // (the receiver copies anyway and drains linear data quicker), so auto copies those on loopback.
        bool zeroCopy = length >= options.ZeroCopyMinBytes && options.ZeroCopy switch
        {
            ZeroCopyMode.On => true,
            ZeroCopyMode.Off => false,
            _ => !PeerIsLoopback || length < options.LoopbackCopyMinBytes,
        };
        if (zeroCopy) return BodySource.FileZeroCopy;
        return file.Content != null ? BodySource.Memory : BodySource.FileCopied;
    }

    /// <summary>
    /// Queues a body: from the memory cache by iovec (with the <paramref name="headEndBefore"/> bytes of head that sit
    /// right before it), or as a stream from the file.
    /// </summary>
    private void QueueBody(FileEntry file, long start, long length, BodySource source, int headEndBefore)
    {
        file.AddRef();
        if (source is BodySource.Memory or BodySource.MemoryZeroCopySend)
        {
            _pinned[_pinnedCount++] = file;
            Queue(file.Content + start - headEndBefore, (int)length + headEndBefore);
            if (source == BodySource.MemoryZeroCopySend) _zeroCopyBodies++;
            return;
        }
        StreamFile = file;
        StreamOffset = start;
        StreamRemaining = length;
        StreamZeroCopy = source == BodySource.FileZeroCopy;
    }

    /// <summary>Whether the queued output is only the head of a zero-copy body that follows it.</summary>
    public bool OutputPrecedesZeroCopyStream => StreamFile != null && StreamZeroCopy && StreamRemaining > 0 && PipeBytes == 0;

    private void QueueError(Worker worker, int status, bool keepAlive, bool withBody)
    {
        var area = new Span<byte>(_head + _headUsed, HeadAreaBytes - _headUsed);
        int n = ResponseHead.WriteError(area, status, worker.Date, keepAlive ? ConnectionHeader.None : ConnectionHeader.Close);
        Queue(_head + _headUsed, n);
        _headUsed += n;
        if (withBody) QueueStatic(ResponseHead.ErrorBody(status));
        worker.Stats.CountStatus(status);
        if (!keepAlive) CloseAfterFlush = LingerOnClose = true;
    }

    /// <summary>Starts a lingering close (the engine has shut down its sending side): what arrives from now on is dropped.</summary>
    public void BeginLingering(long nowMs)
    {
        Lingering = true;
        LingerSinceMs = nowMs;
        RecvLength = 0;
        Waiting = SessionNext.Recv;
    }

    // The bodies from ResponseHead are u8 literals: they live in the image's read-only data, never move,
    // and so can be handed to the kernel by address.
    private void QueueStatic(ReadOnlySpan<byte> body)
    {
        fixed (byte* p = body) Queue(p, body.Length);
    }

    private void Queue(byte* data, int length)
    {
        if (length <= 0) return;
        // Adjacent pieces (e.g. a head right after the previous head) merge into one iovec.
        if (_iovEnd > _iovStart && (byte*)Iov[_iovEnd - 1].Base + Iov[_iovEnd - 1].Length == data)
        {
            Iov[_iovEnd - 1].Length += (nuint)length;
            return;
        }
        Iov[_iovEnd++] = new IoVec { Base = data, Length = (nuint)length };
    }
}
