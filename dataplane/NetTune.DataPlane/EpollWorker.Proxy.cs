using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// Proxy mode under epoll: the intent <see cref="ProxySession"/> asks for is tried at once as a
/// non-blocking call; only when the socket is not ready is that one socket armed (EPOLLONESHOT), so a
/// session is woken only for the operation it waits on, never by the other side's state.
/// </summary>
internal sealed unsafe partial class EpollWorker
{
    private const ulong ProxyTagBit = 1UL << 62;

    private static ulong ProxyTag(ProxySession s, bool upstream) => ProxyTagBit | (ulong)s.Slot << 1 | (upstream ? 1UL : 0);

    private void AcceptProxy(int fd)
    {
        var s = AllocateProxySession();
        if (s == null)
        {
            Stats.RejectedConnections++;
            Libc.close(fd);
            return;
        }
        Platform.SetNoDelay(fd);
        // Registered disarmed: it is armed for exactly the direction the session waits on.
        var ev = new EpollEvent { Events = Libc.EPOLLONESHOT, Data = ProxyTag(s, upstream: false) };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            Libc.close(fd);
            FreeProxySession(s);
            return;
        }
        RunProxy(s, OpenProxySession(s, fd));
    }

    private void OnProxyEvent(ulong tag)
    {
        int slot = (int)((tag & ~ProxyTagBit) >> 1);
        bool upstream = (tag & 1) != 0;
        var s = ProxySessions[slot];
        // A stale event (the session moved on, or its slot was reused) is harmless: the retry is non-blocking.
        if (s.ClientFd < 0 || s.PendingOnUpstream != upstream) return;
        RunProxy(s, s.Pending);
    }

    /// <summary>Performs intents until one has to wait for its socket.</summary>
    private void RunProxy(ProxySession s, ProxyIo io)
    {
        while (true)
        {
            int result;
            switch (io)
            {
                case ProxyIo.Close:
                    FreeProxySession(s); // closing the sockets also takes them out of the epoll set
                    return;
                case ProxyIo.RecvClient or ProxyIo.RecvUpstream:
                {
                    bool upstream = io == ProxyIo.RecvUpstream;
                    nint n = Libc.recv(upstream ? s.UpstreamFd : s.ClientFd, s.IoBuffer, (nuint)s.IoLength, 0);
                    if (n < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR) { Arm(s, upstream, Libc.EPOLLIN | Libc.EPOLLRDHUP); return; }
                    result = n < 0 ? -Libc.Errno : (int)n;
                    break;
                }
                case ProxyIo.SendClient or ProxyIo.SendUpstream:
                {
                    bool upstream = io == ProxyIo.SendUpstream;
                    nint n = Libc.sendmsg(upstream ? s.UpstreamFd : s.ClientFd, s.PrepareSend(), Libc.MSG_NOSIGNAL);
                    if (n < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR) { Arm(s, upstream, Libc.EPOLLOUT); return; }
                    result = n < 0 ? -Libc.Errno : (int)n;
                    break;
                }
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

    /// <summary>Starts a non-blocking connect; false when it is in progress and the socket is armed for it.</summary>
    private bool StartConnect(ProxySession s, out int result)
    {
        var upstream = s.Upstream(this);
        int fd = Platform.CreateUpstreamSocket(upstream.Family, nonBlocking: true);
        if (fd < 0) { result = -Libc.Errno; return true; }
        s.AttachUpstream(fd);
        int r = Libc.connect(fd, upstream.SockAddr, (uint)upstream.SockAddrLength);
        int errno = r == 0 ? 0 : Libc.Errno;
        if (r != 0 && errno != Libc.EINPROGRESS) { result = -errno; return true; }
        // Added only now: an unconnected TCP socket polls as hung up.
        var ev = new EpollEvent { Events = Libc.EPOLLONESHOT | (r == 0 ? 0 : Libc.EPOLLOUT), Data = ProxyTag(s, upstream: true) };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_ADD, fd, &ev) != 0) { result = -Libc.Errno; return true; }
        result = 0;
        if (r == 0) return true;
        s.ConnectPending = true;
        return false;
    }

    private void Arm(ProxySession s, bool upstream, uint events)
    {
        var ev = new EpollEvent { Events = events | Libc.EPOLLONESHOT, Data = ProxyTag(s, upstream) };
        if (Libc.epoll_ctl(_epfd, Libc.EPOLL_CTL_MOD, upstream ? s.UpstreamFd : s.ClientFd, &ev) != 0) FreeProxySession(s);
    }

    private void ScanProxyTimeouts()
    {
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
