using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// Proxy mode under epoll, in nginx's manner: both sockets of a session are registered once,
/// edge-triggered for reading and writing, and the session keeps a readiness bit per socket and
/// direction. Events set the bits; EAGAIN, a short read or a short write clears them (the next byte or
/// the next free space comes with a new edge). An intent runs only when its bit is set, so the steady
/// state costs no epoll_ctl and no receive that is bound to fail.
/// </summary>
internal sealed unsafe partial class EpollWorker
{
    private const ulong ProxyTagBit = 1UL << 62;

    private static ulong ProxyTag(ProxySession s, bool upstream) => ProxyTagBit | (ulong)s.Slot << 1 | (upstream ? 1UL : 0);

    private void AcceptProxy(int fd)
    {
        if (AdmitProxy(fd) is not { } s) return;
        var ev = new EpollEvent { Events = EdgeTriggered, Data = ProxyTag(s, upstream: false) };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            Libc.close(fd);
            FreeProxySession(s);
            return;
        }
        // A fresh connection: the request is probably there already, and the send buffer is empty.
        s.ClientReadable = s.ClientWritable = true;
        s.ClientHungUp = false;
        RunProxy(s, OpenProxySession(s, fd));
    }

    private const uint EdgeTriggered = Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET;
    /// <summary>Pooled upstream connections stay registered under this tag, whose events nobody needs.</summary>
    private const ulong IdleUpstreamTag = ProxyTagBit | (1UL << 61);

    public override void OnUpstreamParked(int fd)
    {
        var ev = new EpollEvent { Events = Libc.EPOLLET, Data = IdleUpstreamTag };
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_MOD, fd, &ev);
    }

    public override void OnUpstreamAdopted(ProxySession s)
    {
        // Re-arming reports the socket's current state as a fresh edge; until then assume the idle state.
        s.UpstreamReadable = s.UpstreamHungUp = false;
        s.UpstreamWritable = true;
        var ev = new EpollEvent { Events = EdgeTriggered, Data = ProxyTag(s, upstream: true) };
        Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_MOD, s.UpstreamFd, &ev);
    }

    private void OnProxyEvent(ulong tag, uint events)
    {
        if (tag == IdleUpstreamTag) return;
        int slot = (int)((tag & ~ProxyTagBit) >> 1);
        bool upstream = (tag & 1) != 0;
        var s = ProxySessions[slot];
        // A stale event (its slot was reused) only sets a bit: the worst it causes is one EAGAIN.
        if (s.ClientFd < 0) return;
        // An error or hang-up makes both directions "ready": the operation then reports what happened.
        bool failed = (events & (Libc.EPOLLERR | Libc.EPOLLHUP)) != 0;
        bool readable = failed || (events & (Libc.EPOLLIN | Libc.EPOLLRDHUP)) != 0;
        bool writable = failed || (events & Libc.EPOLLOUT) != 0;
        // The FIN's edge may have been harvested together with data still unread: remember it, or a short
        // read of that data would clear the readiness and the EOF behind it would never be noticed.
        bool hungUp = failed || (events & Libc.EPOLLRDHUP) != 0;
        if (upstream)
        {
            s.UpstreamReadable |= readable;
            s.UpstreamWritable |= writable;
            s.UpstreamHungUp |= hungUp;
        }
        else
        {
            s.ClientReadable |= readable;
            s.ClientWritable |= writable;
            s.ClientHungUp |= hungUp;
        }
        if (s.PendingOnUpstream == upstream && Ready(s, s.Pending)) RunProxy(s, s.Pending);
    }

    private static bool Ready(ProxySession s, ProxyIo io) => io switch
    {
        ProxyIo.RecvClient => s.ClientReadable,
        ProxyIo.RecvUpstream => s.UpstreamReadable,
        ProxyIo.SendClient => s.ClientWritable,
        ProxyIo.SendUpstream => s.UpstreamWritable,
        ProxyIo.Connect => !s.ConnectPending || s.UpstreamWritable, // start one, or learn how the pending one ended
        ProxyIo.AwaitUpstreamReadable => s.UpstreamReadable,
        ProxyIo.AwaitClientWritable => s.ClientWritable,
        _ => true,
    };

    /// <summary>Performs intents until one has to wait for its socket.</summary>
    private void RunProxy(ProxySession s, ProxyIo io)
    {
        while (true)
        {
            if (io == ProxyIo.Close)
            {
                FreeProxySession(s); // closing the sockets also takes them out of the epoll set
                return;
            }
            if (!Ready(s, io)) return; // an edge will bring it back
            int result;
            switch (io)
            {
                case ProxyIo.RecvClient or ProxyIo.RecvUpstream:
                {
                    bool upstream = io == ProxyIo.RecvUpstream;
                    nint n = Libc.recv(upstream ? s.UpstreamFd : s.ClientFd, s.IoBuffer, (nuint)s.IoLength, 0);
                    int errno = n < 0 ? Libc.Errno : 0;
                    // As nginx: EAGAIN, or a short read with no FIN reported, means the socket is drained; the next
                    // byte comes with an edge.
                    bool hungUp = upstream ? s.UpstreamHungUp : s.ClientHungUp;
                    if (errno is Libc.EAGAIN or Libc.EINTR || n > 0 && n < s.IoLength && !hungUp)
                    {
                        if (upstream) s.UpstreamReadable = false;
                        else s.ClientReadable = false;
                    }
                    if (errno is Libc.EAGAIN or Libc.EINTR) return;
                    result = n < 0 ? -errno : (int)n;
                    break;
                }
                case ProxyIo.SendClient or ProxyIo.SendUpstream:
                {
                    bool upstream = io == ProxyIo.SendUpstream;
                    int fd = upstream ? s.UpstreamFd : s.ClientFd;
                    nint n;
                    long wanted;
                    if (s.SingleBuffer(out byte* data, out int length))
                    {
                        n = Libc.send(fd, data, (nuint)length, Libc.MSG_NOSIGNAL);
                        wanted = length;
                    }
                    else
                    {
                        var message = s.PrepareSend();
                        n = Libc.sendmsg(fd, message, Libc.MSG_NOSIGNAL);
                        wanted = TotalLength(message);
                    }
                    int errno = n < 0 ? Libc.Errno : 0;
                    // A short write means the send buffer is full: wait for the edge that frees space.
                    if (errno is Libc.EAGAIN or Libc.EINTR || n >= 0 && n < wanted)
                    {
                        if (upstream) s.UpstreamWritable = false;
                        else s.ClientWritable = false;
                    }
                    if (errno is Libc.EAGAIN or Libc.EINTR) return;
                    result = n < 0 ? -errno : (int)n;
                    break;
                }
                case ProxyIo.AwaitUpstreamReadable or ProxyIo.AwaitClientWritable:
                    result = 0; // the session's splice runs again now that its socket is ready
                    break;
                default: // Connect
                    if (!s.ConnectPending)
                    {
                        if (!StartConnect(s, out result)) return;
                    }
                    else
                    {
                        s.ConnectPending = false;
                        int error = 0;
                        uint length = sizeof(int);
                        result = Libc.getsockopt(s.UpstreamFd, Libc.SOL_SOCKET, Libc.SO_ERROR, &error, &length) != 0 ? -Libc.Errno : -error;
                    }
                    break;
            }
            io = s.Complete(this, result);
        }
    }

    private static long TotalLength(MsgHdr* message)
    {
        long total = 0;
        for (nuint i = 0; i < message->IovLength; i++) total += (long)message->Iov[i].Length;
        return total;
    }

    /// <summary>Starts a non-blocking connect; false when it is in progress and the session waits for writability.</summary>
    private bool StartConnect(ProxySession s, out int result)
    {
        var upstream = s.Upstream(this);
        int fd = Platform.CreateUpstreamSocket(upstream.Family, nonBlocking: true);
        if (fd < 0) { result = -Libc.Errno; return true; }
        s.AttachUpstream(fd);
        s.UpstreamReadable = s.UpstreamWritable = s.UpstreamHungUp = false;
        int r = Libc.connect(fd, upstream.SockAddr, (uint)upstream.SockAddrLength);
        int errno = r == 0 ? 0 : Libc.Errno;
        if (r != 0 && errno != Libc.EINPROGRESS) { result = -errno; return true; }
        // Added only now: an unconnected TCP socket polls as hung up. If the connect completed in
        // between, the registration itself reports the edge.
        var ev = new EpollEvent { Events = EdgeTriggered, Data = ProxyTag(s, upstream: true) };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, fd, &ev) != 0) { result = -Libc.Errno; return true; }
        result = 0;
        if (r == 0)
        {
            s.UpstreamWritable = true;
            return true;
        }
        s.ConnectPending = true;
        return false;
    }

    private void ScanProxyTimeouts()
    {
        IdleUpstreams?.CloseExpired(NowMs);
        foreach (var s in ProxySessions)
        {
            if (s.ClientFd < 0) continue;
            switch (s.CheckTimeout(this))
            {
                case ProxyTimeout.Close:
                    FreeProxySession(s);
                    break;
                case ProxyTimeout.CancelUpstream:
                    // Nothing is in flight under epoll: the wait simply ends, as a failed operation.
                    RunProxy(s, s.Complete(this, -Libc.ETIMEDOUT));
                    break;
            }
        }
    }
}
