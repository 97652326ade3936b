using NetTune.IoUring;
using static NetTune.IoUring.IoUringConstants;

namespace NetTune.DataPlane;

/// <summary>
/// The completion-based engine. One ring per worker; every loop iteration is a single io_uring_enter
/// that both submits everything queued (sends, receives, reads, splices) and waits for completions,
/// so with many connections the syscall cost is shared across many requests.
/// </summary>
internal sealed unsafe partial class IoUringWorker(int index, int cpu, ServerOptions options, int listenFd, int rootFd)
    : Worker(index, cpu, options, listenFd, rootFd)
{
    private enum Op : byte { Accept = 1, Recv, Send, Read, SpliceIn, SpliceOut, CancelAccept, RecvMulti, CancelRecv, Wake, ProxyIo, CancelProxy, SendZeroCopy, PollOut }

    /// <summary>Where the ring writes the eventfd counter; native so the kernel's pointer stays valid.</summary>
    private readonly ulong* _wakeBuffer = (ulong*)System.Runtime.InteropServices.NativeMemory.Alloc(8);

    private const ushort RecvBufferGroup = 1;
    private Ring _ring = null!;
    private ProvidedBufferRing? _buffers;
    private bool _multishotAccept = true;
    private bool _acceptArmed;
    private bool _listening;
    /// <summary>After EMFILE/ENFILE at accept: no accept is armed before this time.</summary>
    private long _acceptResumeMs;
    /// <summary>
    /// Completions moved out of the CQ ring while the SQ ring was full (see Ring.ConsumeCompletionsWhenFull);
    /// dispatched by the loop, never from inside the code that was asking for an SQE.
    /// </summary>
    private readonly Cqe[] _deferred = new Cqe[4096];
    private int _deferredCount;
    private bool _haveSplice;
    /// <summary>Ask zero-copy sends to report whether the kernel copied (6.2+; dropped if the kernel refuses it).</summary>
    private bool _zeroCopyReportUsage = true;
    private string _engineName = "iouring";

    public override string EngineName => _engineName;

    private static ulong Tag(Op op, int slot) => (ulong)slot << 8 | (byte)op;

    protected override void Run()
    {
        _ring = Ring.Create(4096, 16384, preferSingleIssuer: Options.DeferTaskrun);
        _ring.ConsumeCompletionsWhenFull = DeferCompletions;
        var probe = _ring.ProbeOpcodes();
        _haveSplice = probe[(int)IoUringOp.Splice];
        ZeroCopySendAvailable = probe[(int)IoUringOp.SendmsgZc];
        if (!ZeroCopySendAvailable && Options.ZeroCopySend == ZeroCopySendMode.On)
            Console.Error.WriteLine($"worker {Index}: kernel lacks IORING_OP_SENDMSG_ZC; --zero-copy-send on falls back to copying");
        if (!_ring.HasExtArg) throw new IoUringException("kernel lacks IORING_FEAT_EXT_ARG (needs 5.11+); use --io-engine epoll", Libc.ENOSYS);
        _engineName = (_ring.SetupFlags & SetupDeferTaskrun) != 0 ? "iouring(defer_taskrun)"
            : (_ring.SetupFlags & SetupCoopTaskrun) != 0 ? "iouring(coop_taskrun)" : "iouring";
        if (Options.MultishotRecv && probe[(int)IoUringOp.Recv] && !IsProxy)
        {
            _buffers = ProvidedBufferRing.TryCreate(_ring, RecvBufferGroup, 2048, 4096, out int errno);
            if (_buffers == null) Console.Error.WriteLine($"worker {Index}: no provided-buffer ring (errno {errno}); one recv per request");
        }
        if (_buffers != null) _engineName += "+multishot";
        _listening = true;
        ArmAccept();
        ArmWake();
        MarkReady();

        long lastScan = NowMs;
        bool leftBehind = false;
        while (true)
        {
            _buffers?.Publish();
            // Under load, wait briefly for a batch of completions rather than waking for each one.
            uint batch = (uint)Math.Clamp(ActiveSessions / 2, 1, 64);
            // SQEs the kernel left behind (a short submit) or completions it holds back (CQ overflow): no sleeping.
            if (leftBehind || _ring.CqOverflowed) batch = 0;
            int waitMs = _acceptResumeMs > NowMs ? (int)Math.Min(_acceptResumeMs - NowMs, 1000) : 1000;
            _ring.SubmitAndWait(batch, waitMs, Options.EffectiveBatchWaitUsec);
            leftBehind = _ring.PendingSubmissions > 0;
            Stats.EnterCalls = _ring.EnterCalls;
            Stats.SubmittedSqes = _ring.SubmittedSqes;
            Tick();
            for (int i = 0; i < _deferredCount; i++) Dispatch(in _deferred[i]);
            _deferredCount = 0;
            while (_ring.TryPeek(out var cqe))
            {
                _ring.Advance();
                Dispatch(in cqe);
            }
            Stats.ReapedCqes = _ring.ReapedCqes;
            if (_listening && !_acceptArmed && NowMs >= _acceptResumeMs) ArmAccept();
            if (NowMs - lastScan >= 1000 || Draining)
            {
                lastScan = NowMs;
                ScanTimeouts();
            }
            if (Draining && ActiveSessions == 0 && !_acceptArmed) break;
            if (Draining && NowMs > DrainDeadlineMs + 2000) break;
        }
        foreach (var s in Sessions)
            if (s.Fd >= 0) { Libc.close(s.Fd); s.Fd = -1; }
        foreach (var p in ProxySessions) p.Reset(this);
        _buffers?.Dispose();
        _ring.Dispose();
    }

    /// <summary>The SQ ring is full and the kernel wants completions consumed first: set them aside for the loop.</summary>
    private void DeferCompletions()
    {
        while (_deferredCount < _deferred.Length && _ring.TryPeek(out var cqe))
        {
            _ring.Advance();
            _deferred[_deferredCount++] = cqe;
        }
    }

    protected override void Abandon()
    {
        // Closing the ring cancels everything in it, the armed accept included, which holds the listener open.
        _ring?.Dispose();
        foreach (var s in Sessions)
            if (s.Fd >= 0) { Libc.close(s.Fd); s.Fd = -1; }
        foreach (var p in ProxySessions)
        {
            if (p.ClientFd >= 0) Libc.close(p.ClientFd);
            if (p.UpstreamFd >= 0) Libc.close(p.UpstreamFd);
        }
    }

    private void ArmWake()
    {
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.Read;
        sqe->Fd = WakeFd;
        sqe->Addr = (ulong)_wakeBuffer;
        sqe->Len = 8;
        sqe->UserData = Tag(Op.Wake, 0);
    }

    private void ArmAccept()
    {
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.Accept;
        sqe->Fd = ListenFd;
        sqe->OpFlags = (uint)(Libc.SOCK_CLOEXEC);
        if (_multishotAccept) sqe->IoPrio = AcceptMultishot;
        sqe->UserData = Tag(Op.Accept, 0);
        _acceptArmed = true;
    }

    protected override void BeginDrain()
    {
        if (!_listening) return;
        _listening = false;
        if (_acceptArmed)
        {
            var sqe = _ring.GetSqe();
            sqe->Opcode = IoUringOp.AsyncCancel;
            sqe->Addr = Tag(Op.Accept, 0);
            sqe->UserData = Tag(Op.CancelAccept, 0);
        }
        CloseListener();
    }

    private void Dispatch(in Cqe cqe)
    {
        var op = (Op)(cqe.UserData & 0xff);
        int slot = (int)(cqe.UserData >> 8);
        switch (op)
        {
            case Op.Accept:
                OnAccept(cqe.Res, (cqe.Flags & CqeFMore) != 0);
                return;
            case Op.CancelAccept:
                return;
            case Op.RecvMulti:
                OnMultishotRecv(Sessions[slot], in cqe);
                return;
            case Op.CancelRecv:
            case Op.CancelProxy:
            case Op.Wake: // the drain itself is noticed by Tick()
                return;
            case Op.ProxyIo:
                OnProxyCompletion(ProxySessions[slot], cqe.Res);
                return;
            case Op.SendZeroCopy when (cqe.Flags & CqeFNotif) != 0:
                OnZeroCopyNotice(Sessions[slot], cqe.Res);
                return;
        }
        var s = Sessions[slot];
        s.InFlight--;
        // A zero-copy send's first completion says whether a notice follows; until it does, the kernel
        // may still read the buffers (retransmits), so they stay pinned and the session stays allocated.
        if (op == Op.SendZeroCopy && (cqe.Flags & CqeFMore) != 0) s.ZeroCopyNoticesPending++;
        if (s.Closing)
        {
            if (op == Op.SpliceIn && cqe.Res > 0) s.PipeBytes += cqe.Res;
            MaybeRecycle(s);
            return;
        }
        switch (op)
        {
            case Op.Recv:
                if (s.Lingering)
                {
                    // Dropped: we only wait for the client to finish sending and close.
                    if (cqe.Res > 0) { s.RecvLength = 0; PostRecv(s); }
                    else BeginClose(s);
                    return;
                }
                if (cqe.Res < 0) { BeginClose(s); return; }
                // A FIN: answer what was received, then close (s.Next turns the next receive into a close).
                if (cqe.Res == 0) s.PeerClosed = true;
                else s.OnReceived(cqe.Res, NowMs);
                Drive(s, s.Next(this));
                return;
            case Op.SendZeroCopy when cqe.Res is -Libc.EINVAL or -Libc.EOPNOTSUPP && (cqe.Flags & CqeFMore) == 0:
                // Refused before anything was sent (an older kernel without usage reports, or a socket
                // that cannot do zero-copy): retry the same output without the feature.
                if (_zeroCopyReportUsage) _zeroCopyReportUsage = false;
                else ZeroCopySendAvailable = s.CanZeroCopySend = false;
                PostSend(s);
                return;
            case Op.Send:
            case Op.SendZeroCopy:
                // The socket is non-blocking for inline sendfile, so a full socket buffer fails the send with
                // EAGAIN instead of parking it in the kernel: wait for POLLOUT and send again.
                if (cqe.Res is -Libc.EAGAIN or -Libc.EINTR) { ArmPollOut(s); return; }
                if (cqe.Res < 0 && cqe.Res != -Libc.ECANCELED || cqe.Res == 0 && s.HasOutput) { BeginClose(s); return; }
                if (cqe.Res > 0)
                {
                    if (op == Op.SendZeroCopy) Stats.BytesZeroCopy += cqe.Res;
                    else Stats.BytesCopied += cqe.Res;
                    s.LastProgressMs = NowMs;
                    s.AdvanceOutput(cqe.Res);
                }
                // A head linked to splices: wait for the chain to finish before deciding what is next.
                if (InFlightExceptRecv(s) == 0) Drive(s, NextAfterDrainingStash(s));
                return;
            case Op.Read:
                // A short or failed file read means the file changed under us; the length promised in
                // the head cannot be kept, so the connection must end.
                if (cqe.Res <= 0) { BeginClose(s); return; }
                s.StreamOffset += cqe.Res;
                s.StreamRemaining -= cqe.Res;
                s.QueueChunk(s.Chunk, cqe.Res);
                Drive(s, SessionNext.Send);
                return;
            case Op.SpliceIn:
                if (cqe.Res > 0)
                {
                    s.PipeBytes += cqe.Res;
                    s.StreamOffset += cqe.Res;
                    s.StreamRemaining -= cqe.Res;
                }
                else if (cqe.Res < 0 && cqe.Res != -Libc.ECANCELED || cqe.Res == 0) { BeginClose(s); return; }
                if (InFlightExceptRecv(s) == 0) Drive(s, NextAfterDrainingStash(s));
                return;
            case Op.PollOut:
                // Writable again: a ring send that met EAGAIN is resubmitted, an inline stream goes on.
                if (s.Waiting == SessionNext.Send) PostSend(s);
                else if (Options.IoUringInlineSendfile && s.StreamZeroCopy) SendInline(s);
                else Drive(s, NextAfterDrainingStash(s));
                return;
            case Op.SpliceOut:
                if (cqe.Res > 0)
                {
                    s.PipeBytes -= cqe.Res;
                    Stats.BytesZeroCopy += cqe.Res;
                    s.LastProgressMs = NowMs;
                }
                else if (cqe.Res is -Libc.EAGAIN or -Libc.EINTR) { ArmPollOut(s); return; }
                else if (cqe.Res != -Libc.ECANCELED) { BeginClose(s); return; }
                if (InFlightExceptRecv(s) == 0) Drive(s, NextAfterDrainingStash(s));
                return;
        }
    }

    /// <summary>The kernel no longer references a zero-copy send's buffers.</summary>
    private void OnZeroCopyNotice(HttpSession s, int res)
    {
        if (((uint)res & NotifUsageZcCopied) != 0) Stats.ZeroCopySendCopied++;
        else Stats.ZeroCopySendUncopied++;
        if (!s.OnZeroCopyNotices(1)) return;
        if (s.Closing) MaybeRecycle(s);
        else if (s.Waiting == SessionNext.AwaitZeroCopy) Drive(s, NextAfterDrainingStash(s));
    }

    private void OnAccept(int res, bool more)
    {
        if (!more) _acceptArmed = false;
        if (res < 0)
        {
            // Old kernels reject the multishot flag; fall back to one accept per SQE.
            if (res == -Libc.EINVAL && _multishotAccept) _multishotAccept = false;
            if (res is -Libc.EMFILE or -Libc.ENFILE) PauseAccepting();
            return; // re-armed by the loop while still listening
        }
        if (!_listening) { Libc.close(res); return; }
        CountAccept();
        if (IsProxy)
        {
            AcceptProxy(res);
            return;
        }
        var s = AllocateSession(res);
        if (s == null)
        {
            Stats.RejectedConnections++;
            Libc.close(res);
            return;
        }
        Platform.SetNoDelay(res);
        // Inline sendfile must not block the worker; io_uring's own socket operations are unaffected by it.
        if (Options.IoUringInlineSendfile) Platform.SetNonBlocking(res);
        PostRecv(s);
    }

    /// <summary>Out of fds: stop accepting for a moment (the queue keeps the connections) rather than re-arming at once.</summary>
    private void PauseAccepting()
    {
        Stats.AcceptErrors++;
        _acceptResumeMs = NowMs + AcceptBackoffMs;
        if (_acceptArmed && _multishotAccept)
        {
            var sqe = _ring.GetSqe();
            sqe->Opcode = IoUringOp.AsyncCancel;
            sqe->Addr = Tag(Op.Accept, 0);
            sqe->UserData = Tag(Op.CancelAccept, 0);
        }
    }

    private void Drive(HttpSession s, SessionNext next)
    {
        switch (next)
        {
            case SessionNext.Recv: PostRecv(s); break;
            case SessionNext.Send: PostSend(s); break;
            case SessionNext.Stream: PostStream(s); break;
            case SessionNext.Close when s.LingerOnClose && !s.PeerClosed && !s.Lingering: StartLingering(s); break;
            case SessionNext.Close: BeginClose(s); break;
            case SessionNext.AwaitZeroCopy: s.Waiting = next; break; // resumed by OnZeroCopyNotice
        }
    }

    /// <summary>After an error answer: FIN our side, then drop what the client still sends until it closes (or the lingering timeout).</summary>
    private void StartLingering(HttpSession s)
    {
        Libc.shutdown(s.Fd, Libc.SHUT_WR);
        for (int i = 0; i < s.StashCount; i++) _buffers!.Recycle(s.StashBuffer[i]);
        s.StashCount = 0;
        s.BeginLingering(NowMs);
        PostRecv(s);
    }

    private static int InFlightExceptRecv(HttpSession s) => s.InFlight - (s.RecvArmed ? 1 : 0);

    /// <summary>
    /// One multishot completion: copy the bytes out of the provided buffer into the session's own
    /// buffer (a request head is small, so this is cheap) and give the buffer straight back. Bytes that
    /// arrive while a response is still being written just accumulate for the next parse.
    /// </summary>
    private void OnMultishotRecv(HttpSession s, in Cqe cqe)
    {
        bool more = (cqe.Flags & CqeFMore) != 0;
        bool hasBuffer = (cqe.Flags & CqeFBuffer) != 0;
        ushort bid = (ushort)(cqe.Flags >> 16);
        if (!more)
        {
            s.InFlight--;
            s.RecvArmed = false;
        }
        if (s.Closing)
        {
            if (hasBuffer) _buffers!.Recycle(bid);
            MaybeRecycle(s);
            return;
        }
        if (s.Lingering)
        {
            if (hasBuffer) _buffers!.Recycle(bid);
            if (cqe.Res > 0 || cqe.Res == -Libc.ENOBUFS || cqe.Res == -Libc.ECANCELED) { if (!s.RecvArmed) PostRecv(s); }
            else BeginClose(s);
            return;
        }
        if (cqe.Res == 0)
        {
            // A FIN ends the multishot: what was received (held or parsed) is still answered, every queued
            // byte sent, and only then the connection closed; if the session was waiting for input, that is now.
            s.PeerClosed = true;
            if (s.Waiting == SessionNext.Recv) Drive(s, NextAfterDrainingStash(s));
            return;
        }
        if (cqe.Res < 0)
        {
            // Out of provided buffers ends the multishot but not the connection: re-arm when needed.
            if (cqe.Res == -Libc.ENOBUFS || cqe.Res == -Libc.ECANCELED)
            {
                if (s.Waiting == SessionNext.Recv && s.StashCount == 0) PostRecv(s);
                return;
            }
            BeginClose(s);
            return;
        }
        if (!hasBuffer) { BeginClose(s); return; }
        // The connection ends after the answer being sent (an error): what the client sends meanwhile is dropped,
        // not held, or a client still sending a refused body would overflow the stash and cut that answer.
        if (s.CloseAfterFlush) { _buffers!.Recycle(bid); return; }
        int room = s.RecvCapacity - s.RecvLength;
        if (s.StashCount == 0 && room >= cqe.Res)
        {
            Buffer.MemoryCopy(_buffers!.Buffer(bid), s.Recv + s.RecvLength, room, cqe.Res);
            _buffers.Recycle(bid);
            s.OnReceived(cqe.Res, NowMs);
        }
        else
        {
            if (s.StashCount == HttpSession.MaxStash) { _buffers!.Recycle(bid); BeginClose(s); return; }
            s.StashBuffer[s.StashCount] = bid;
            s.StashOffset[s.StashCount] = 0;
            s.StashLength[s.StashCount] = cqe.Res;
            s.StashCount++;
            // Back-pressure: stop receiving until the parser has consumed what is held.
            if (s.StashCount == HttpSession.MaxStash / 4 && s.RecvArmed) CancelRecv(s);
        }
        if (s.Waiting == SessionNext.Recv) Drive(s, NextAfterDrainingStash(s));
    }

    private SessionNext NextAfterDrainingStash(HttpSession s)
    {
        while (true)
        {
            DrainStash(s);
            var next = s.Next(this, inputHeld: s.StashCount > 0);
            // Next() may have parsed and freed room; keep feeding held bytes while the parser wants more.
            if (next != SessionNext.Recv || s.StashCount == 0) return next;
            if (s.RecvLength == s.RecvCapacity) return next;
        }
    }

    private void DrainStash(HttpSession s)
    {
        if (_buffers == null) return;
        int moved = 0;
        while (moved < s.StashCount)
        {
            int room = s.RecvCapacity - s.RecvLength;
            if (room == 0) break;
            int n = Math.Min(room, s.StashLength[moved] - s.StashOffset[moved]);
            Buffer.MemoryCopy(_buffers.Buffer(s.StashBuffer[moved]) + s.StashOffset[moved], s.Recv + s.RecvLength, room, n);
            s.OnReceived(n, NowMs);
            s.StashOffset[moved] += n;
            if (s.StashOffset[moved] < s.StashLength[moved]) break;
            _buffers.Recycle(s.StashBuffer[moved]);
            moved++;
        }
        if (moved == 0) return;
        for (int i = moved; i < s.StashCount; i++)
        {
            s.StashBuffer[i - moved] = s.StashBuffer[i];
            s.StashOffset[i - moved] = s.StashOffset[i];
            s.StashLength[i - moved] = s.StashLength[i];
        }
        s.StashCount -= moved;
    }

    private void CancelRecv(HttpSession s)
    {
        Stats.RecvPauses++;
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.AsyncCancel;
        sqe->Addr = Tag(Op.RecvMulti, s.Slot);
        sqe->UserData = Tag(Op.CancelRecv, s.Slot);
    }

    private void PostRecv(HttpSession s)
    {
        s.Waiting = SessionNext.Recv;
        if (_buffers != null)
        {
            if (s.RecvArmed || s.StashCount > 0) return;
            var m = _ring.GetSqe();
            m->Opcode = IoUringOp.Recv;
            m->Fd = s.Fd;
            m->IoPrio = RecvMultishot;
            m->Flags = SqeBufferSelect;
            m->BufIndexOrGroup = RecvBufferGroup;
            m->UserData = Tag(Op.RecvMulti, s.Slot);
            s.RecvArmed = true;
            s.InFlight++;
            return;
        }
        int room = s.RecvCapacity - s.RecvLength;
        if (room <= 0) { BeginClose(s); return; }
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.Recv;
        sqe->Fd = s.Fd;
        sqe->Addr = (ulong)(s.Recv + s.RecvLength);
        sqe->Len = (uint)room;
        sqe->UserData = Tag(Op.Recv, s.Slot);
        s.InFlight++;
    }

    private void PostSend(HttpSession s)
    {
        // Bodies chosen for SENDMSG_ZC leave through the ring; the stream behind them follows inline.
        if (Options.IoUringInlineSendfile && s.OutputPrecedesZeroCopyStream && !s.WantsZeroCopySend)
        {
            SendInline(s);
            return;
        }
        s.Waiting = SessionNext.Send;
        // Head and zero-copy body in one submission: sendmsg(head, MSG_MORE) → splice in → splice out,
        // linked. If the head goes out short the chain breaks (-ECANCELED) and the next turn resumes.
        bool chain = !Options.IoUringInlineSendfile && s.OutputPrecedesZeroCopyStream && _haveSplice && EnsurePipe(s);
        var sqe = _ring.GetSqe();
        if (chain)
        {
            sqe->Flags = SqeIoLink;
        }
        bool zeroCopy = s.WantsZeroCopySend && s.CanZeroCopySend && ZeroCopySendAvailable;
        sqe->Opcode = zeroCopy ? IoUringOp.SendmsgZc : IoUringOp.Sendmsg;
        if (zeroCopy && _zeroCopyReportUsage) sqe->IoPrio = SendZcReportUsage;
        sqe->Fd = s.Fd;
        sqe->Addr = (ulong)s.PrepareSend();
        // MSG_WAITALL makes io_uring itself retry a short send on a stream socket, instead of handing
        // us a partial count and costing a round trip through this loop per socket-buffer refill.
        sqe->OpFlags = (uint)(Libc.MSG_NOSIGNAL | Libc.MSG_WAITALL | (chain ? Libc.MSG_MORE : 0));
        sqe->UserData = Tag(zeroCopy ? Op.SendZeroCopy : Op.Send, s.Slot);
        s.InFlight++;
        if (chain) PostSplice(s);
    }

    /// <summary>
    /// Zero-copy as the epoll engine does it, from inside the ring's loop: the head by sendmsg(MSG_MORE) and
    /// the body by sendfile, synchronously on the non-blocking socket. io_uring's own splice always runs on
    /// an io-wq thread (measured: ≈ 0.6 context switches per 64 KiB response); sendfile runs right here.
    /// When the socket is full, a POLLOUT in the ring brings the session back.
    /// </summary>
    private void SendInline(HttpSession s)
    {
        s.Waiting = SessionNext.Stream;
        long budget = StreamSliceBytes;
        while (true)
        {
            if (s.HasOutput)
            {
                int flags = Libc.MSG_NOSIGNAL | (s.OutputPrecedesZeroCopyStream ? Libc.MSG_MORE : 0);
                nint n = Libc.sendmsg(s.Fd, s.PrepareSend(), flags);
                if (n < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR) { ArmPollOut(s); return; }
                if (n <= 0) { BeginClose(s); return; }
                Stats.BytesCopied += n;
                s.LastProgressMs = NowMs;
                s.AdvanceOutput(n);
                continue;
            }
            if (s.StreamFile == null || !s.StreamZeroCopy || s.StreamRemaining == 0) break;
            // Past its slice a download waits for the next turn, so one connection cannot starve the rest.
            if (budget <= 0) { ArmPollOut(s); return; }
            long sent = SendFileSlice(s, budget);
            if (sent == 0) { ArmPollOut(s); return; }
            if (sent < 0) { BeginClose(s); return; }
            budget -= sent;
        }
        Drive(s, NextAfterDrainingStash(s));
    }

    private void ArmPollOut(HttpSession s)
    {
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.PollAdd;
        sqe->Fd = s.Fd;
        sqe->OpFlags = PollOut;
        sqe->UserData = Tag(Op.PollOut, s.Slot);
        s.InFlight++;
    }

    private const uint PollOut = 0x004; // POLLOUT, in the SQE's poll32_events

    private void PostStream(HttpSession s)
    {
        if (Options.IoUringInlineSendfile && s.StreamZeroCopy)
        {
            SendInline(s);
            return;
        }
        s.Waiting = SessionNext.Stream;
        if (s.StreamZeroCopy && _haveSplice && EnsurePipe(s))
        {
            PostSplice(s);
            return;
        }
        s.StreamZeroCopy = false;
        if (s.Chunk == null) s.Chunk = ChunkPool.Rent();
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.Read;
        sqe->Fd = s.StreamFile!.Fd;
        sqe->Addr = (ulong)s.Chunk;
        sqe->Len = (uint)Math.Min(s.StreamRemaining, ChunkPool.BlockSize);
        sqe->Off = (ulong)s.StreamOffset;
        sqe->UserData = Tag(Op.Read, s.Slot);
        s.InFlight++;
    }

    /// <summary>
    /// file → pipe → socket, linked so both run in one submission. A short first splice breaks the link
    /// (the second completes with -ECANCELED); the pipe's byte count tells us what is still to drain.
    /// </summary>
    private void PostSplice(HttpSession s)
    {
        if (s.PipeBytes > 0)
        {
            PostSpliceOut(s, (uint)s.PipeBytes, linked: false);
            return;
        }
        // Never ask for more than the pipe holds: a short splice-in would break the link every time.
        uint len = (uint)Math.Min(s.StreamRemaining, s.PipeCapacity);
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.Splice;
        sqe->SpliceFdIn = s.StreamFile!.Fd;
        sqe->Addr = (ulong)s.StreamOffset;  // splice_off_in
        sqe->Fd = s.PipeWrite;
        sqe->Off = ulong.MaxValue;           // off_out = -1: pipes have no offset
        sqe->Len = len;
        sqe->OpFlags = (uint)Libc.SPLICE_F_MOVE;
        sqe->Flags = SqeIoLink;
        sqe->UserData = Tag(Op.SpliceIn, s.Slot);
        s.InFlight++;
        PostSpliceOut(s, len, linked: true);
    }

    private void PostSpliceOut(HttpSession s, uint len, bool linked)
    {
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.Splice;
        sqe->SpliceFdIn = s.PipeRead;
        sqe->Addr = ulong.MaxValue;
        sqe->Fd = s.Fd;
        sqe->Off = ulong.MaxValue;
        sqe->Len = len;
        sqe->OpFlags = (uint)(Libc.SPLICE_F_MOVE | (linked ? 0 : 0));
        sqe->UserData = Tag(Op.SpliceOut, s.Slot);
        s.InFlight++;
    }

    private static bool EnsurePipe(HttpSession s)
    {
        if (s.PipeRead >= 0) return true;
        int* fds = stackalloc int[2];
        if (Libc.pipe2(fds, Libc.O_CLOEXEC) != 0) return false;
        int size = Libc.fcntl(fds[1], Libc.F_SETPIPE_SZ, 1 << 20);
        if (size < 0) size = Libc.fcntl(fds[1], Libc.F_GETPIPE_SZ, 0);
        s.PipeCapacity = size > 0 ? size : 65536;
        s.PipeRead = fds[0];
        s.PipeWrite = fds[1];
        return true;
    }

    /// <summary>
    /// Closing waits for the kernel to hand back every buffer it still references: shutdown() makes
    /// pending operations complete, and the session is recycled when the last one has.
    /// </summary>
    private void BeginClose(HttpSession s)
    {
        if (s.Closing) return;
        s.Closing = true;
        if (s.InFlight > 0) Libc.shutdown(s.Fd, Libc.SHUT_RDWR);
        MaybeRecycle(s);
    }

    private void MaybeRecycle(HttpSession s)
    {
        if (s.InFlight > 0) return;
        for (int i = 0; i < s.StashCount; i++) _buffers!.Recycle(s.StashBuffer[i]);
        s.StashCount = 0;
        if (s.Fd >= 0)
        {
            Libc.close(s.Fd);
            s.Fd = -1;
        }
        // Notices arrive through the ring even after the close (which lets the kernel finish or drop
        // the queued data); the buffers they cover are reused only then.
        if (s.ZeroCopyNoticesPending > 0) return;
        FreeSession(s);
    }

    private void ScanTimeouts()
    {
        ScanProxyTimeouts();
        foreach (var s in Sessions)
        {
            if (s.Fd < 0 || s.Closing) continue;
            if (TimedOut(s) || (Draining && s.Waiting == SessionNext.Recv && s.RecvLength == 0)) BeginClose(s);
        }
    }
}
