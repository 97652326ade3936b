using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// The readiness-based engine: level-triggered epoll, non-blocking sockets, sendmsg for gathered
/// output and sendfile for zero-copy streams. Used where io_uring is unavailable or by choice.
/// Zero-copy sends of cached bodies use MSG_ZEROCOPY; the kernel reports when it is done with their
/// pages on the socket's error queue (EPOLLERR), and only then are the buffers reused.
/// </summary>
internal sealed unsafe partial class EpollWorker(int index, int cpu, ServerOptions options, int listenFd, int rootFd)
    : Worker(index, cpu, options, listenFd, rootFd)
{
    private const ulong ListenerTag = ulong.MaxValue;
    private const ulong WakeTag = ulong.MaxValue - 1;
    private int _epfd = -1;
    private bool _listening;
    /// <summary>After EMFILE/ENFILE: the listener is out of the epoll set until this time.</summary>
    private bool _acceptPaused;
    private long _acceptResumeMs;

    public override string EngineName => "epoll";

    protected override void Run()
    {
        _epfd = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (_epfd < 0) throw new InvalidOperationException($"epoll_create1 failed: errno {Libc.Errno}");
        var ev = new EpollEvent { Events = Libc.EPOLLIN, Data = ListenerTag };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, ListenFd, &ev) != 0)
            throw new InvalidOperationException($"epoll_ctl(listener) failed: errno {Libc.Errno}");
        var wake = new EpollEvent { Events = Libc.EPOLLIN, Data = WakeTag };
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, WakeFd, &wake);
        _listening = true;
        // MSG_ZEROCOPY exists since Linux 4.14; a socket that refuses SO_ZEROCOPY just copies.
        ZeroCopySendAvailable = true;
        MarkReady();

        const int MaxEvents = 256;
        EpollEvent* events = stackalloc EpollEvent[MaxEvents];
        long lastScan = NowMs;
        while (true)
        {
            int waitMs = _acceptPaused ? (int)Math.Clamp(_acceptResumeMs - NowMs, 0, 1000) : 1000;
            int n = Libc.epoll_wait(_epfd, events, MaxEvents, waitMs);
            if (n < 0 && Libc.Errno != Libc.EINTR) throw new InvalidOperationException($"epoll_wait failed: errno {Libc.Errno}");
            Tick();
            ResumeAcceptingWhenDue();
            for (int i = 0; i < n; i++)
            {
                ulong tag = events[i].Data;
                if (tag == ListenerTag)
                {
                    if (_listening && !_acceptPaused) AcceptAll();
                    continue;
                }
                if (tag == WakeTag)
                {
                    ulong value;
                    Libc.read(WakeFd, &value, 8); // the drain itself is noticed by Tick()
                    continue;
                }
                if ((tag & ProxyTagBit) != 0)
                {
                    OnProxyEvent(tag, events[i].Events);
                    continue;
                }
                var s = Sessions[(int)tag];
                if (s.Fd < 0) continue;
                uint e = events[i].Events;
                if ((e & Libc.EPOLLERR) != 0 && s.CanZeroCopySend)
                {
                    // Level-triggered: the error queue must be emptied or EPOLLERR fires again at once.
                    ReapZeroCopyNotices(s);
                    if (s.Fd < 0 || s.Closing || s.Waiting == SessionNext.AwaitZeroCopy) continue;
                }
                if (s.Closing) continue;
                if (s.Waiting == SessionNext.Recv && (e & (Libc.EPOLLIN | Libc.EPOLLERR | Libc.EPOLLHUP | Libc.EPOLLRDHUP)) != 0)
                    OnReadable(s);
                else if (s.Waiting != SessionNext.Recv && (e & (Libc.EPOLLOUT | Libc.EPOLLERR | Libc.EPOLLHUP)) != 0)
                    Drive(s, s.Waiting);
            }
            if (NowMs - lastScan >= 1000 || Draining)
            {
                lastScan = NowMs;
                ScanTimeouts();
            }
            if (Draining && (ActiveSessions == 0 || NowMs > DrainDeadlineMs)) break;
        }
        foreach (var s in Sessions)
            if (s.Fd >= 0) Release(s);
        foreach (var p in ProxySessions)
            if (p.ClientFd >= 0) FreeProxySession(p);
        Libc.close(_epfd);
    }

    protected override void BeginDrain()
    {
        if (!_listening) return;
        _listening = false;
        if (!_acceptPaused) Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_DEL, ListenFd, null);
        CloseListener();
    }

    protected override void Abandon()
    {
        if (_epfd >= 0) Libc.close(_epfd);
        foreach (var s in Sessions)
            if (s.Fd >= 0) { Libc.close(s.Fd); s.Fd = -1; }
        foreach (var p in ProxySessions)
        {
            if (p.ClientFd >= 0) Libc.close(p.ClientFd);
            if (p.UpstreamFd >= 0) Libc.close(p.UpstreamFd);
        }
    }

    /// <summary>
    /// Out of fds: the level-triggered listener would report the queued connection again at once (a busy loop),
    /// so it leaves the epoll set for a moment, as nginx does; the kernel keeps the connections queued.
    /// </summary>
    private void PauseAccepting()
    {
        Stats.AcceptErrors++;
        _acceptPaused = true;
        _acceptResumeMs = NowMs + AcceptBackoffMs;
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_DEL, ListenFd, null);
    }

    private void ResumeAcceptingWhenDue()
    {
        if (!_acceptPaused || NowMs < _acceptResumeMs) return;
        _acceptPaused = false;
        if (!_listening) return;
        var ev = new EpollEvent { Events = Libc.EPOLLIN, Data = ListenerTag };
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, ListenFd, &ev);
    }

    private void AcceptAll()
    {
        while (true)
        {
            int fd = Libc.accept4(ListenFd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
            if (fd < 0)
            {
                if (Libc.Errno is Libc.EMFILE or Libc.ENFILE) PauseAccepting();
                return; // EAGAIN: level-triggered epoll will tell us again
            }
            CountAccept();
            if (IsProxy)
            {
                AcceptProxy(fd);
                continue;
            }
            var s = AllocateSession(fd);
            if (s == null)
            {
                Stats.RejectedConnections++;
                Libc.close(fd);
                continue;
            }
            Platform.SetNoDelay(fd);
            int one = 1;
            if (s.CanZeroCopySend && Libc.setsockopt(fd, Libc.SOL_SOCKET, Libc.SO_ZEROCOPY, &one, 4) != 0)
                s.CanZeroCopySend = false;
            var ev = new EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLRDHUP, Data = (ulong)s.Slot };
            if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, fd, &ev) != 0)
            {
                Libc.close(fd);
                FreeSession(s);
            }
        }
    }

    private void OnReadable(HttpSession s)
    {
        if (s.Lingering)
        {
            // Dropped: we only wait for the client to finish sending and close.
            nint dropped = Libc.recv(s.Fd, s.Recv, (nuint)s.RecvCapacity, 0);
            if (dropped > 0 || dropped < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR) return;
            Close(s);
            return;
        }
        int room = s.RecvCapacity - s.RecvLength;
        if (room <= 0) { Close(s); return; }
        nint n = Libc.recv(s.Fd, s.Recv + s.RecvLength, (nuint)room, 0);
        if (n == 0) { Close(s); return; }
        if (n < 0)
        {
            if (Libc.Errno is Libc.EAGAIN or Libc.EINTR) return;
            Close(s);
            return;
        }
        s.OnReceived((int)n, NowMs);
        Drive(s, s.Next(this));
    }

    /// <summary>Runs the session forward until it must wait for the socket.</summary>
    private void Drive(HttpSession s, SessionNext next)
    {
        var previous = s.Waiting;
        while (true)
        {
            switch (next)
            {
                case SessionNext.Recv:
                    SetInterest(s, previous, SessionNext.Recv);
                    return;
                case SessionNext.Close when s.LingerOnClose && !s.Lingering:
                    // After an error answer: FIN our side, then drop what the client still sends until it closes.
                    Libc.shutdown(s.Fd, Libc.SHUT_WR);
                    s.BeginLingering(NowMs);
                    SetInterest(s, previous, SessionNext.Recv);
                    return;
                case SessionNext.Close:
                    Close(s);
                    return;
                case SessionNext.AwaitZeroCopy:
                    // The notices may already be queued; otherwise EPOLLERR brings them.
                    ReapZeroCopyNotices(s);
                    if (s.Fd < 0 || s.ZeroCopyNoticesPending > 0)
                    {
                        if (s.Fd >= 0) SetInterest(s, previous, SessionNext.AwaitZeroCopy);
                        return;
                    }
                    next = s.Next(this);
                    break;
                case SessionNext.Send:
                {
                    // MSG_MORE holds a head back to share a segment with the sendfile body right behind it.
                    int flags = Libc.MSG_NOSIGNAL | (s.OutputPrecedesZeroCopyStream ? Libc.MSG_MORE : 0);
                    bool zeroCopy = s.WantsZeroCopySend && s.CanZeroCopySend;
                    nint n = Libc.sendmsg(s.Fd, s.PrepareSend(), flags | (zeroCopy ? Libc.MSG_ZEROCOPY : 0));
                    // ENOBUFS: the socket's optmem for pending notices is used up; copy this once.
                    if (n < 0 && zeroCopy && Libc.Errno == Libc.ENOBUFS)
                    {
                        zeroCopy = false;
                        n = Libc.sendmsg(s.Fd, s.PrepareSend(), flags);
                    }
                    if (n < 0)
                    {
                        if (Libc.Errno is Libc.EAGAIN or Libc.EINTR) { SetInterest(s, previous, SessionNext.Send); return; }
                        Close(s);
                        return;
                    }
                    // Every MSG_ZEROCOPY call that sent something takes the next notice id; one notice each.
                    if (zeroCopy && n > 0)
                    {
                        s.ZeroCopyNoticesPending++;
                        Stats.BytesZeroCopy += n;
                    }
                    else Stats.BytesCopied += n;
                    s.LastProgressMs = NowMs;
                    if (!s.AdvanceOutput(n)) { SetInterest(s, previous, SessionNext.Send); return; }
                    next = s.Next(this);
                    break;
                }
                case SessionNext.Stream:
                    if (!Stream(s)) return;
                    next = s.Next(this);
                    if (next == SessionNext.Stream) { SetInterest(s, previous, SessionNext.Stream); return; }
                    break;
            }
        }
    }

    /// <summary>Sends up to one slice of a streamed body; false if the session is closed or now waits.</summary>
    private bool Stream(HttpSession s)
    {
        var file = s.StreamFile!;
        long budget = StreamSliceBytes;
        while (s.StreamRemaining > 0 && budget > 0)
        {
            if (s.StreamZeroCopy)
            {
                long n = SendFileSlice(s, budget);
                if (n == 0) { WaitWritable(s); return false; }
                if (n < 0) { Close(s); return false; }
                budget -= n;
            }
            else
            {
                if (s.Chunk == null) s.Chunk = ChunkPool.Rent();
                int want = (int)Math.Min(s.StreamRemaining, ChunkPool.BlockSize);
                nint r = Libc.pread(file.Fd, s.Chunk, (nuint)want, s.StreamOffset);
                if (r <= 0) { Close(s); return false; }
                s.StreamOffset += r;
                s.StreamRemaining -= r;
                budget -= r;
                s.QueueChunk(s.Chunk, (int)r);
                nint n = Libc.sendmsg(s.Fd, s.PrepareSend(), Libc.MSG_NOSIGNAL);
                if (n < 0)
                {
                    if (Libc.Errno is Libc.EAGAIN or Libc.EINTR) { WaitWritable(s); return false; }
                    Close(s);
                    return false;
                }
                Stats.BytesCopied += n;
                if (!s.AdvanceOutput(n)) { WaitWritable(s); return false; }
            }
            s.LastProgressMs = NowMs;
        }
        return true;
    }

    private void WaitWritable(HttpSession s)
    {
        var previous = s.Waiting;
        SetInterest(s, previous, s.HasOutput ? SessionNext.Send : SessionNext.Stream);
    }

    private void SetInterest(HttpSession s, SessionNext previous, SessionNext now)
    {
        s.Waiting = now;
        uint was = InterestIn(previous), interest = InterestIn(now);
        if (was == interest) return;
        var ev = new EpollEvent { Events = interest, Data = (ulong)s.Slot };
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_MOD, s.Fd, &ev);
    }

    /// <summary>
    /// Waiting for zero-copy notices wants neither readability nor writability, only EPOLLERR; edge-triggered
    /// so that a hung-up socket (EPOLLHUP is always reported) does not wake the loop over and over.
    /// </summary>
    private static uint InterestIn(SessionNext waiting) => waiting switch
    {
        SessionNext.Recv => Libc.EPOLLIN | Libc.EPOLLRDHUP,
        SessionNext.AwaitZeroCopy => Libc.EPOLLET,
        _ => Libc.EPOLLOUT,
    };

    /// <summary>
    /// Reads every zero-copy completion from the socket's error queue: each is a range of notice ids,
    /// one id per MSG_ZEROCOPY send. When none is outstanding any more the session moves on (or, if it
    /// was closing, is freed).
    /// </summary>
    private void ReapZeroCopyNotices(HttpSession s)
    {
        const int ControlBytes = 128;
        byte* control = stackalloc byte[ControlBytes];
        int notices = 0;
        while (true)
        {
            var msg = new MsgHdr { Control = control, ControlLength = ControlBytes };
            if (Libc.recvmsg(s.Fd, &msg, Libc.MSG_ERRQUEUE | Libc.MSG_DONTWAIT) < 0) break; // EAGAIN: empty
            byte* p = control, end = control + Math.Min((long)msg.ControlLength, ControlBytes);
            while (p + sizeof(CmsgHdr) <= end)
            {
                var cmsg = (CmsgHdr*)p;
                if (cmsg->Length < (nuint)sizeof(CmsgHdr)) break;
                if (cmsg->Length >= (nuint)(sizeof(CmsgHdr) + sizeof(SockExtendedErr)))
                {
                    var err = (SockExtendedErr*)(p + sizeof(CmsgHdr));
                    if (err->Origin == SockExtendedErr.OriginZeroCopy && err->Errno == 0)
                    {
                        int range = (int)(err->Data - err->Info + 1); // ids wrap at 2^32; the difference does not
                        notices += range;
                        if ((err->Code & SockExtendedErr.CodeZeroCopyCopied) != 0) Stats.ZeroCopySendCopied += range;
                        else Stats.ZeroCopySendUncopied += range;
                    }
                }
                p += ((long)cmsg->Length + 7) & ~7L;
            }
        }
        if (notices == 0 || !s.OnZeroCopyNotices(notices)) return;
        s.LastProgressMs = NowMs;
        if (s.Closing) Release(s);
        else if (s.Waiting == SessionNext.AwaitZeroCopy) Drive(s, SessionNext.AwaitZeroCopy);
    }

    private void ScanTimeouts()
    {
        ScanProxyTimeouts();
        foreach (var s in Sessions)
        {
            if (s.Fd < 0) continue;
            if (s.Closing)
            {
                // A peer that stopped acknowledging keeps the notices away: give up on it (see Abort).
                if (NowMs - s.LastProgressMs > Options.SendTimeoutSeconds * 1000L) Abort(s);
                continue;
            }
            if (TimedOut(s) || (Draining && s.Waiting == SessionNext.Recv && s.RecvLength == 0)) Close(s);
        }
    }

    /// <summary>
    /// Ends the connection. While zero-copy sends are unconfirmed the socket must stay open, because its
    /// error queue is where the notices arrive: shut it down (queued data still leaves, then FIN) and
    /// free the session when the last notice is in.
    /// </summary>
    private void Close(HttpSession s)
    {
        if (s.ZeroCopyNoticesPending == 0)
        {
            Release(s);
            return;
        }
        s.Closing = true;
        s.LastProgressMs = NowMs;
        Libc.shutdown(s.Fd, Libc.SHUT_RDWR);
        SetInterest(s, s.Waiting, SessionNext.AwaitZeroCopy);
        ReapZeroCopyNotices(s);
    }

    /// <summary>
    /// Resets the connection: the kernel drops its queued data (and with it its references to our pages)
    /// at once, so the session can be freed without waiting for notices that would never come.
    /// </summary>
    private void Abort(HttpSession s)
    {
        Platform.ResetOnClose(s.Fd);
        Release(s);
    }

    private void Release(HttpSession s)
    {
        Libc.close(s.Fd); // closing also removes it from the epoll set
        FreeSession(s);
    }
}
