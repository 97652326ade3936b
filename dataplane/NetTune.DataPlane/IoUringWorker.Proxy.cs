using NetTune.IoUring;
using static NetTune.IoUring.IoUringConstants;

namespace NetTune.DataPlane;

/// <summary>
/// Proxy mode on the ring: each session has at most one operation in flight, submitted from the intent
/// <see cref="ProxySession"/> asks for, and its completion feeds the session's next decision.
/// </summary>
internal sealed unsafe partial class IoUringWorker
{
    private void AcceptProxy(int fd)
    {
        if (AdmitProxy(fd) is not { } s) return;
        // The session's own splices must not block the worker; the ring's operations are unaffected by it.
        if (ProxySplices) Platform.SetNonBlocking(fd);
        SubmitProxy(s, OpenProxySession(s, fd));
    }

    private const uint PollIn = 0x001; // POLLIN, in the SQE's poll32_events

    /// <param name="pollFirst">The last try found the socket not ready (-EAGAIN): wait for readiness before trying again.</param>
    private void SubmitProxy(ProxySession s, ProxyIo io, bool pollFirst = false)
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
                    // Right after the request went, a try would only find the socket empty and then arm the poll.
                    if (pollFirst || s.AwaitsAnswer) sqe->IoPrio = RecvSendPollFirst;
                    break;
                case ProxyIo.SendClient or ProxyIo.SendUpstream:
                    sqe = _ring.GetSqe();
                    sqe->Fd = io == ProxyIo.SendClient ? s.ClientFd : s.UpstreamFd;
                    if (s.SingleBuffer(out byte* data, out int length))
                    {
                        sqe->Opcode = IoUringOp.Send;
                        sqe->Addr = (ulong)data;
                        sqe->Len = (uint)length;
                    }
                    else
                    {
                        sqe->Opcode = IoUringOp.Sendmsg;
                        sqe->Addr = (ulong)s.PrepareSend();
                    }
                    sqe->OpFlags = (uint)(Libc.MSG_NOSIGNAL | Libc.MSG_WAITALL);
                    if (pollFirst) sqe->IoPrio = RecvSendPollFirst;
                    break;
                case ProxyIo.AwaitUpstreamReadable or ProxyIo.AwaitClientWritable:
                    sqe = _ring.GetSqe();
                    sqe->Opcode = IoUringOp.PollAdd;
                    sqe->Fd = io == ProxyIo.AwaitUpstreamReadable ? s.UpstreamFd : s.ClientFd;
                    sqe->OpFlags = io == ProxyIo.AwaitUpstreamReadable ? PollIn : PollOut;
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
        // On a non-blocking socket (made so for splicing) a ring operation retried on an io-wq thread can
        // report -EAGAIN: nothing moved, so wait for readiness and try the same operation again.
        if (result is -Libc.EAGAIN or -Libc.EINTR && s.Pending is ProxyIo.RecvClient or ProxyIo.RecvUpstream or ProxyIo.SendClient or ProxyIo.SendUpstream)
        {
            SubmitProxy(s, s.Pending, pollFirst: true);
            return;
        }
        if (s.Pending == ProxyIo.Connect && result == 0 && ProxySplices) Platform.SetNonBlocking(s.UpstreamFd);
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
