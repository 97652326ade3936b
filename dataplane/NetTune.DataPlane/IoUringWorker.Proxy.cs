using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// Proxy mode on the ring: each session has at most one operation in flight, submitted from the intent
/// <see cref="ProxySession"/> asks for, and its completion feeds the session's next decision.
/// </summary>
internal sealed unsafe partial class IoUringWorker
{
    private void AcceptProxy(int fd)
    {
        if (AdmitProxy(fd) is { } s) SubmitProxy(s, OpenProxySession(s, fd));
    }

    private void SubmitProxy(ProxySession s, ProxyIo io)
    {
        while (true)
        {
            Sqe* sqe;
            switch (io)
            {
                case ProxyIo.Close:
                    CloseProxy(s);
                    return;
                case ProxyIo.RecvClient or ProxyIo.RecvUpstream:
                    sqe = _ring.GetSqe();
                    sqe->Opcode = IoUringOp.Recv;
                    sqe->Fd = io == ProxyIo.RecvClient ? s.ClientFd : s.UpstreamFd;
                    sqe->Addr = (ulong)s.IoBuffer;
                    sqe->Len = (uint)s.IoLength;
                    break;
                case ProxyIo.SendClient or ProxyIo.SendUpstream:
                    sqe = _ring.GetSqe();
                    sqe->Opcode = IoUringOp.Sendmsg;
                    sqe->Fd = io == ProxyIo.SendClient ? s.ClientFd : s.UpstreamFd;
                    sqe->Addr = (ulong)s.PrepareSend();
                    sqe->OpFlags = (uint)(Libc.MSG_NOSIGNAL | Libc.MSG_WAITALL);
                    break;
                default: // Connect
                    var upstream = s.Upstream(this);
                    int fd = Platform.CreateUpstreamSocket(upstream.Family, nonBlocking: false);
                    if (fd < 0)
                    {
                        io = s.Complete(this, -Libc.Errno);
                        continue;
                    }
                    s.AttachUpstream(fd);
                    sqe = _ring.GetSqe();
                    sqe->Opcode = IoUringOp.Connect;
                    sqe->Fd = fd;
                    sqe->Addr = (ulong)upstream.SockAddr;
                    sqe->Off = (ulong)upstream.SockAddrLength;
                    break;
            }
            sqe->UserData = Tag(Op.ProxyIo, s.Slot);
            s.InFlight = true;
            return;
        }
    }

    private void OnProxyCompletion(ProxySession s, int result)
    {
        s.InFlight = false;
        if (s.Closing)
        {
            FreeProxySession(s);
            return;
        }
        SubmitProxy(s, s.Complete(this, result));
    }

    /// <summary>Closing waits for the operation the kernel holds (it references the session's buffers) to be cancelled.</summary>
    private void CloseProxy(ProxySession s)
    {
        if (s.Closing) return;
        s.Closing = true;
        if (s.InFlight) CancelProxyOperation(s);
        else FreeProxySession(s);
    }

    private void CancelProxyOperation(ProxySession s)
    {
        var sqe = _ring.GetSqe();
        sqe->Opcode = IoUringOp.AsyncCancel;
        sqe->Addr = Tag(Op.ProxyIo, s.Slot);
        sqe->UserData = Tag(Op.CancelProxy, s.Slot);
    }

    private void ScanProxyTimeouts()
    {
        IdleUpstreams?.CloseExpired(NowMs);
        foreach (var s in ProxySessions)
        {
            if (s.ClientFd < 0 || s.Closing) continue;
            switch (s.CheckTimeout(this))
            {
                case ProxyTimeout.Close:
                    CloseProxy(s);
                    break;
                case ProxyTimeout.CancelUpstream:
                    // The cancelled operation completes with an error; the session turns that into 504.
                    if (s.InFlight) CancelProxyOperation(s);
                    break;
            }
        }
    }
}
