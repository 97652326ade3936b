using System.Diagnostics;
using NetTune.Http;
using NetTune.Http.Proxy;
using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>The one I/O operation a proxy session wants next; the engine performs it and reports the result.</summary>
internal enum ProxyIo : byte { RecvClient, SendClient, Connect, SendUpstream, RecvUpstream, Close, AwaitUpstreamReadable, AwaitClientWritable }

/// <summary>What the engine must do about a session that overstayed its current wait.</summary>
internal enum ProxyTimeout : byte { None, Close, CancelUpstream }

/// <summary>
/// One client connection of the reverse proxy, as a state machine over I/O intents: it says which single
/// operation it needs (<see cref="Pending"/>), the engine performs it (io_uring submission or a
/// non-blocking call under epoll) and hands back the result to <see cref="Complete"/>. So both engines
/// share every protocol decision and the engines stay small.
///
/// Requests are handled one at a time per connection (pipelined requests wait in the client buffer),
/// bodies stream through fixed buffers in both directions, except a large Content-Length response body,
/// which is spliced from the upstream socket through a pipe to the client socket without passing through
/// the process (the session makes those non-blocking splice calls itself and asks the engine only to wait
/// for readiness: io_uring's own splice always runs on io-wq threads), and each client connection keeps its own
/// upstream connection alive across requests. A request that failed on a reused upstream connection
/// before any response byte arrived is retried once on a fresh connection when it is safe to: the whole
/// request is still held, and the method is idempotent or the failure came while sending.
/// </summary>
internal sealed unsafe class ProxySession
{
    private enum Phase : byte
    {
        ReadHead, SendContinue, Connect, SendRequest, RecvBody, SendBody,
        RecvResponseHead, SendResponse, RecvResponseBody, SpliceResponseBody, SendError,
    }

    /// <summary>
    /// With splicing on, the first read of a response head asks for no more than this: the head and a small
    /// body arrive whole, and the rest of a large body stays in the socket for the splice.
    /// </summary>
    private const int SplicingHeadReadBytes = 4096;
    /// <summary>Bytes moved per turn before a spliced relay lets the worker's other connections go first.</summary>
    private const long SpliceTurnBytes = 1 << 20;

    private const int MaxIov = 4;
    private const int HeadSlack = 1024; // X-Forwarded-For and our Connection header grow a head a little
    private const int ClientAddressBytes = 64;

    public readonly int Slot;
    public int ClientFd = -1;
    public int UpstreamFd = -1;
    public int UpstreamIndex = -1;
    public ProxyIo Pending;
    /// <summary>For receive intents: where the bytes go and how many fit.</summary>
    public byte* IoBuffer;
    public int IoLength;
    /// <summary>Engine bookkeeping: an io_uring operation is in flight, an epoll connect is pending, the session is closing.</summary>
    public bool InFlight, ConnectPending, Closing;
    /// <summary>epoll readiness per socket and direction (edge-triggered: set by events, cleared by EAGAIN).</summary>
    public bool ClientReadable, ClientWritable, UpstreamReadable, UpstreamWritable;
    /// <summary>epoll: the peer's FIN (EPOLLRDHUP) was reported; a short read then does not mean drained, the EOF is still to be read.</summary>
    public bool ClientHungUp, UpstreamHungUp;

    private readonly byte* _clientIn;
    private readonly int _clientCap;
    private int _clientLen;
    private readonly byte* _requestHead;
    private readonly int _requestHeadCap;
    private int _requestHeadLen;
    private readonly byte* _upstreamIn;
    private readonly int _upstreamCap;
    private int _upstreamLen;
    private readonly byte* _responseHead;
    private readonly int _responseHeadCap;
    private readonly byte* _clientAddress;
    private int _clientAddressLen;
    /// <summary>The client is a proxy in --trusted-proxies: its X-Forwarded-* headers are carried on.</summary>
    private bool _trustedPeer;
    private readonly IoVec* _iov;
    private readonly MsgHdr* _msg;
    private int _iovStart, _iovEnd;

    private Phase _phase;
    public long PhaseSinceMs;
    private long _firstByteTicks;
    /// <summary>How fast the client takes the responses (see --min-response-rate).</summary>
    private ResponseRateWindow _responseRate;
    /// <summary>
    /// When the head being read got its first byte (or, for pipelined leftovers, when reading it began): the
    /// header timeout counts from here, as nginx's client_header_timeout does, not from the last receive, or a
    /// client trickling a byte at a time would hold the session for ever.
    /// </summary>
    private long _headStartMs;
    /// <summary>The client spoke HTTP/1.1 (chunks may be relayed); otherwise a chunked response is decoded for it (<see cref="_dechunk"/>).</summary>
    private bool _clientHttp11;
    private bool _dechunk;

    // The request being proxied.
    private int _requestHeadLength;
    private int _bodyInBuffer;
    private int _requestConsumed;
    private long _bodyRemaining;
    private bool _bodyChunked, _bodyDone;
    private ChunkedBodyReader _requestChunks;
    private bool _clientKeepAlive, _requestIsHead, _idempotent;
    private ConnectionHeader _clientConnection;
    private bool _upstreamReused, _retried, _timedOut;
    /// <summary>The upstream connection has answered in full and carries no request: it may be pooled.</summary>
    private bool _upstreamIdle;
    private int _connectAttempts;
    private bool _closeAfterError;

    // The response being relayed.
    private UpstreamResponse _response;
    private long _responseRemaining;
    private ChunkedBodyReader _responseChunks;
    private bool _responseDone, _upstreamReusable, _closeClient;
    /// <summary>The rest of the response body goes by splice through this pipe (-1: none held).</summary>
    private bool _spliceBody;
    private int _pipeRead = -1, _pipeWrite = -1, _pipeBytes;
    /// <summary>Bytes in the pipe behind the body: the upstream sent more than it announced.</summary>
    private bool _pipeHoldsExtra;

    public static int BlockSizeFor(HttpLimits limits, int upstreamBufferBytes) =>
        (limits.MaxHeaderBytes * 2 + HeadSlack + upstreamBufferBytes + limits.MaxHeaderBytes + HeadSlack
         + ClientAddressBytes + MaxIov * sizeof(IoVec) + 64 + 4095) & ~4095;

    /// <summary>The worker that owns this session for its life and counts its upstream connection.</summary>
    private readonly Worker _worker;

    public ProxySession(Worker worker, int slot, byte* block, HttpLimits limits, int upstreamBufferBytes)
    {
        _worker = worker;
        Slot = slot;
        _clientIn = block;
        _clientCap = limits.MaxHeaderBytes;
        _requestHead = _clientIn + _clientCap;
        _requestHeadCap = limits.MaxHeaderBytes + HeadSlack;
        _upstreamIn = _requestHead + _requestHeadCap;
        _upstreamCap = upstreamBufferBytes;
        // The upstream's head (up to MaxHeaderBytes) is rewritten here; our own error heads use it too.
        _responseHead = _upstreamIn + _upstreamCap;
        _responseHeadCap = limits.MaxHeaderBytes + HeadSlack;
        _clientAddress = _responseHead + _responseHeadCap;
        _iov = (IoVec*)(_clientAddress + ClientAddressBytes);
        _msg = (MsgHdr*)((byte*)_iov + MaxIov * sizeof(IoVec));
    }

    /// <summary>The start of the session's native block.</summary>
    public byte* Block => _clientIn;

    /// <summary>The pending receive is the first of a response head: the upstream is still answering, nothing is there yet.</summary>
    public bool AwaitsAnswer => Pending == ProxyIo.RecvUpstream && _phase == Phase.RecvResponseHead && _upstreamLen == 0;

    /// <summary>Which socket the pending intent uses: true for the upstream.</summary>
    public bool PendingOnUpstream => Pending is ProxyIo.Connect or ProxyIo.SendUpstream or ProxyIo.RecvUpstream or ProxyIo.AwaitUpstreamReadable;

    public ProxyIo Open(Worker worker, int clientFd, ReadOnlySpan<byte> clientAddress, bool trustedPeer)
    {
        _trustedPeer = trustedPeer;
        ClientFd = clientFd;
        UpstreamFd = UpstreamIndex = -1;
        InFlight = ConnectPending = Closing = false;
        _clientLen = _upstreamLen = _requestConsumed = 0;
        _iovStart = _iovEnd = 0;
        _clientKeepAlive = true;
        _clientConnection = ConnectionHeader.None;
        _firstByteTicks = Stopwatch.GetTimestamp();
        _headStartMs = worker.NowMs;
        _responseRate.Reset();
        _clientAddressLen = Math.Min(clientAddress.Length, ClientAddressBytes);
        clientAddress[.._clientAddressLen].CopyTo(new Span<byte>(_clientAddress, ClientAddressBytes));
        return ReadHead(worker);
    }

    /// <summary>
    /// Releases the sockets; the engine has made sure the kernel holds no operation on them. An upstream
    /// connection between requests goes to the worker's pool for the next client instead of being closed.
    /// </summary>
    public void Reset(Worker worker)
    {
        if (UpstreamFd >= 0) worker.SessionUpstreams--;
        if (UpstreamFd >= 0 && _upstreamIdle && worker.IdleUpstreams is { } pool && pool.TryPark(UpstreamIndex, UpstreamFd, worker.NowMs))
            worker.OnUpstreamParked(UpstreamFd);
        else if (UpstreamFd >= 0)
            Libc.close(UpstreamFd);
        if (ClientFd >= 0) Libc.close(ClientFd);
        UpstreamFd = ClientFd = -1;
        _upstreamIdle = false;
        ReleasePipe(worker);
    }

    public MsgHdr* PrepareSend()
    {
        *_msg = default;
        _msg->Iov = _iov + _iovStart;
        _msg->IovLength = (nuint)(_iovEnd - _iovStart);
        return _msg;
    }

    /// <summary>
    /// Whether the output is one buffer (the usual case: a request without body, a response whose head fit before its
    /// body): the engine then sends it with a plain send, which spares the kernel a message header and an iovec array.
    /// </summary>
    public bool SingleBuffer(out byte* data, out int length)
    {
        if (_iovEnd - _iovStart != 1)
        {
            data = null;
            length = 0;
            return false;
        }
        data = (byte*)_iov[_iovStart].Base;
        length = (int)_iov[_iovStart].Length;
        return true;
    }

    /// <summary>Marks an upstream connection the engine just created for the pending connect.</summary>
    public void AttachUpstream(int fd)
    {
        UpstreamFd = fd;
        _worker.SessionUpstreams++;
    }

    /// <summary>A client between requests keeps its idle upstream connection: taken from it when the worker is at its cap.</summary>
    public bool HoldsIdleUpstream => UpstreamFd >= 0 && _upstreamIdle && !Closing && _phase == Phase.ReadHead;

    /// <summary>Gives up the idle upstream connection so another client's request can have one; the next request here connects anew.</summary>
    public void DropIdleUpstream() => CloseUpstream();

    /// <summary>Where to connect for the upstream chosen: its address as last resolved.</summary>
    public UpstreamEndpoint Upstream(Worker worker) => worker.Upstreams![UpstreamIndex].Current;

    /// <summary>The result of the pending intent: bytes moved, 0 for a completed connect, or -errno.</summary>
    public ProxyIo Complete(Worker worker, int result)
    {
        switch (Pending)
        {
            case ProxyIo.RecvClient:
                if (result <= 0) return ProxyIo.Close;
                return _phase == Phase.RecvBody ? OnBodyReceived(worker, result) : OnHeadReceived(worker, result);
            case ProxyIo.SendClient:
                if (result < 0) return ProxyIo.Close;
                worker.Stats.BytesCopied += result;
                if (!Advance(result)) return Want(worker, ProxyIo.SendClient);
                return _phase switch
                {
                    Phase.SendContinue => SendRequest(worker),
                    Phase.SendResponse => AfterResponseSent(worker),
                    _ => AfterErrorSent(worker),
                };
            case ProxyIo.Connect:
                return OnConnected(worker, result);
            case ProxyIo.SendUpstream:
                if (result < 0) return UpstreamFailed(worker, duringSend: true);
                if (!Advance(result)) return Want(worker, ProxyIo.SendUpstream);
                return AfterRequestSent(worker);
            case ProxyIo.RecvUpstream:
                return _phase == Phase.RecvResponseHead ? OnResponseHeadReceived(worker, result) : OnResponseBodyReceived(worker, result);
            case ProxyIo.AwaitUpstreamReadable or ProxyIo.AwaitClientWritable:
                // A failed wait (a cancelled poll, a closed socket) ends the connection: the head promised more body.
                return result < 0 ? ProxyIo.Close : SpliceResponseBody(worker);
            default:
                return ProxyIo.Close;
        }
    }

    /// <summary>Checked once a second by the engine.</summary>
    public ProxyTimeout CheckTimeout(Worker worker)
    {
        var o = worker.Options;
        long waited = worker.NowMs - PhaseSinceMs;
        long limitMs = _phase switch
        {
            Phase.ReadHead when _clientLen == 0 => worker.Draining ? 0 : o.KeepAliveTimeoutSeconds * 1000L,
            Phase.ReadHead => o.HeaderTimeoutSeconds * 1000L - (PhaseSinceMs - _headStartMs),
            Phase.Connect => o.UpstreamConnectTimeoutSeconds * 1000L,
            Phase.RecvResponseHead or Phase.RecvResponseBody => o.UpstreamTimeoutSeconds * 1000L,
            Phase.SpliceResponseBody when Pending == ProxyIo.AwaitUpstreamReadable => o.UpstreamTimeoutSeconds * 1000L,
            _ => o.SendTimeoutSeconds * 1000L,
        };
        if (waited <= limitMs) return ClientTooSlow(worker) ? ProxyTimeout.Close : ProxyTimeout.None;
        if (_phase is Phase.Connect or Phase.RecvResponseHead)
        {
            // The client still deserves an answer: cancel the upstream operation, which completes with an
            // error that this flag turns into 504.
            _timedOut = true;
            return ProxyTimeout.CancelUpstream;
        }
        return ProxyTimeout.Close;
    }

    /// <summary>--min-response-rate: only time spent waiting for the client to take bytes counts against it.</summary>
    private bool ClientTooSlow(Worker worker)
    {
        if (_phase == Phase.ReadHead) _responseRate.Reset();
        else if (Pending is ProxyIo.SendClient or ProxyIo.AwaitClientWritable) return worker.ResponseTooSlow(ref _responseRate, ClientFd);
        else _responseRate.Pause(worker.NowMs);
        return false;
    }

    private ProxyIo ReadHead(Worker worker)
    {
        _phase = Phase.ReadHead;
        if (_clientLen > 0)
        {
            var buffer = new ReadOnlySpan<byte>(_clientIn, _clientLen);
            var status = HttpParser.TryParse(buffer, worker.Options.Limits, out var request);
            if (status == ParseStatus.Complete) return StartRequest(worker, buffer, in request);
            if (status == ParseStatus.Error)
            {
                _requestConsumed = _clientLen;
                _requestIsHead = false;
                return Error(worker, request.ErrorStatus, close: true);
            }
        }
        else if (worker.Draining)
        {
            return ProxyIo.Close;
        }
        return WantClientBytes(worker);
    }

    private ProxyIo WantClientBytes(Worker worker)
    {
        IoBuffer = _clientIn + _clientLen;
        IoLength = _clientCap - _clientLen;
        return Want(worker, ProxyIo.RecvClient);
    }

    private ProxyIo OnHeadReceived(Worker worker, int count)
    {
        if (_clientLen == 0)
        {
            _firstByteTicks = Stopwatch.GetTimestamp();
            _headStartMs = worker.NowMs;
        }
        _clientLen += count;
        return ReadHead(worker);
    }

    private ProxyIo StartRequest(Worker worker, ReadOnlySpan<byte> buffer, in HttpRequest request)
    {
        var method = request.MethodToken.Of(buffer);
        _requestHeadLength = request.HeadLength;
        _clientKeepAlive = request.KeepAlive && !worker.Draining;
        _clientConnection = !_clientKeepAlive ? ConnectionHeader.Close : request.IsHttp11 ? ConnectionHeader.None : ConnectionHeader.KeepAlive;
        _requestIsHead = request.Method == HttpMethodKind.Head;
        _idempotent = request.Method != HttpMethodKind.Other || method.SequenceEqual("PUT"u8) || method.SequenceEqual("DELETE"u8)
                      || method.SequenceEqual("OPTIONS"u8) || method.SequenceEqual("TRACE"u8);
        _retried = _timedOut = false;
        _connectAttempts = 0;
        _bodyChunked = request.IsChunked;
        _bodyRemaining = request.ContentLength;
        _requestChunks = default;

        int available = _clientLen - request.HeadLength;
        if (_bodyChunked)
        {
            _bodyInBuffer = _requestChunks.Consume(buffer.Slice(request.HeadLength, available));
            if (_bodyInBuffer < 0)
            {
                _requestConsumed = _clientLen;
                return Error(worker, 400, close: true);
            }
            _bodyDone = _requestChunks.IsDone;
            // A chunk bigger than the limit is refused as soon as its size line is read, not after it streamed in.
            if (_requestChunks.DeclaredBytes > worker.Options.Limits.MaxBodyBytes)
            {
                _requestConsumed = _clientLen;
                return Error(worker, 413, close: true);
            }
        }
        else
        {
            _bodyInBuffer = (int)Math.Min(available, _bodyRemaining);
            _bodyRemaining -= _bodyInBuffer;
            _bodyDone = _bodyRemaining == 0;
        }
        _requestConsumed = request.HeadLength + _bodyInBuffer;

        _clientHttp11 = request.IsHttp11;
        // An absolute-form target goes upstream in origin-form with its authority as Host (RFC 9112 §3.2.2); an
        // HTTP/1.0 request without Host gets the upstream's name, since every HTTP/1.1 request must carry one.
        var originTarget = request.Authority.IsPresent ? request.Target.Of(buffer) : default;
        var host = request.Authority.IsPresent ? request.Authority.Of(buffer)
            : request.HasHost ? default : worker.Upstreams![0].Authority;
        _requestHeadLen = ProxyHeadWriter.WriteRequest(buffer[..request.HeadLength],
            new Span<byte>(_requestHead, _requestHeadCap), new ReadOnlySpan<byte>(_clientAddress, _clientAddressLen), originTarget, host, _trustedPeer);
        if (_requestHeadLen < 0) return Error(worker, 431, close: true);

        if (request.ExpectsContinue && !_bodyDone)
        {
            // The client holds its body back until told to go on; we answer for the upstream, as nginx does.
            _phase = Phase.SendContinue;
            ClearOutput();
            fixed (byte* p = ResponseHead.Continue) Queue(p, ResponseHead.Continue.Length);
            return Want(worker, ProxyIo.SendClient);
        }
        return SendRequest(worker);
    }

    /// <summary>Head and the body bytes already held go to the upstream in one send, connecting first if needed.</summary>
    private ProxyIo SendRequest(Worker worker)
    {
        _upstreamIdle = false;
        if (UpstreamFd < 0)
        {
            UpstreamIndex = worker.Balancer!.Pick(worker.NowMs);
            int pooled = worker.IdleUpstreams?.TryTake(UpstreamIndex, worker.NowMs) ?? -1;
            if (pooled >= 0)
            {
                // Kept alive by an earlier client: it may still have been closed in between, which the retry covers.
                UpstreamFd = pooled;
                worker.SessionUpstreams++;
                _upstreamReused = true;
                worker.Stats.UpstreamPoolHits++;
                worker.OnUpstreamAdopted(this);
            }
            else if (!worker.MakeRoomForUpstream(this))
            {
                // At the worker's cap with nothing idle to give way: refused at once rather than piling up connections.
                return Error(worker, 503, close: !_bodyDone);
            }
            else
            {
                _upstreamReused = false;
                _phase = Phase.Connect;
                _connectAttempts++;
                return Want(worker, ProxyIo.Connect);
            }
        }
        _phase = Phase.SendRequest;
        ClearOutput();
        Queue(_requestHead, _requestHeadLen);
        Queue(_clientIn + _requestHeadLength, _bodyInBuffer);
        return Want(worker, ProxyIo.SendUpstream);
    }

    private ProxyIo OnConnected(Worker worker, int result)
    {
        if (result == 0)
        {
            Platform.SetNoDelay(UpstreamFd);
            return SendRequest(worker);
        }
        CloseUpstream();
        // Refused or too slow to answer a connect, alike: skip it for a while (nginx's proxy_next_upstream error timeout).
        worker.Balancer!.MarkDown(UpstreamIndex, worker.NowMs);
        worker.Upstreams![UpstreamIndex].RequestResolve();
        worker.Stats.UpstreamConnectFailures++;
        bool timedOut = _timedOut;
        // Another upstream may take it, as long as there is one we have not tried for this request.
        if (_connectAttempts < worker.Balancer.Count)
        {
            _timedOut = false;
            return SendRequest(worker);
        }
        return Error(worker, timedOut ? 504 : 502, close: !_bodyDone);
    }

    private ProxyIo AfterRequestSent(Worker worker)
    {
        if (_phase == Phase.SendBody || !_bodyDone)
        {
            // The body bytes held have gone; keep what follows them (a pipelined request) at the front.
            Consume(_requestConsumed);
            _requestConsumed = 0;
            if (!_bodyDone)
            {
                _phase = Phase.RecvBody;
                return WantClientBytes(worker);
            }
        }
        _phase = Phase.RecvResponseHead;
        _upstreamLen = 0;
        return WantUpstreamBytes(worker);
    }

    private ProxyIo OnBodyReceived(Worker worker, int count)
    {
        var received = new ReadOnlySpan<byte>(_clientIn + _clientLen, count);
        int body;
        if (_bodyChunked)
        {
            body = _requestChunks.Consume(received);
            if (body < 0) return ProxyIo.Close;
            if (_requestChunks.DeclaredBytes > worker.Options.Limits.MaxBodyBytes)
            {
                // Part of the body may be upstream already: that request cannot be finished, so the upstream goes too.
                CloseUpstream();
                _clientLen += count;
                _requestConsumed = _clientLen;
                return Error(worker, 413, close: true);
            }
            _bodyDone = _requestChunks.IsDone;
        }
        else
        {
            body = (int)Math.Min(count, _bodyRemaining);
            _bodyRemaining -= body;
            _bodyDone = _bodyRemaining == 0;
        }
        _phase = Phase.SendBody;
        ClearOutput();
        Queue(_clientIn + _clientLen, body);
        _clientLen += count;
        _requestConsumed = body;
        return Want(worker, ProxyIo.SendUpstream);
    }

    private ProxyIo WantUpstreamBytes(Worker worker)
    {
        IoBuffer = _upstreamIn + _upstreamLen;
        IoLength = _upstreamCap - _upstreamLen;
        if (_phase == Phase.RecvResponseHead && _upstreamLen == 0 && worker.ProxySplices)
            IoLength = Math.Min(IoLength, SplicingHeadReadBytes);
        return Want(worker, ProxyIo.RecvUpstream);
    }

    private ProxyIo OnResponseHeadReceived(Worker worker, int result)
    {
        if (result <= 0) return UpstreamFailed(worker, duringSend: false);
        _upstreamLen += result;
        while (true)
        {
            var buffer = new ReadOnlySpan<byte>(_upstreamIn, _upstreamLen);
            // The head must fit where it is rewritten; a bigger one is a clean 502, not a truncated relay.
            var status = UpstreamResponseParser.TryParse(buffer, Math.Min(_upstreamCap, _responseHeadCap - HeadSlack), _requestIsHead, out _response);
            if (status == ParseStatus.Incomplete) return WantUpstreamBytes(worker);
            if (status == ParseStatus.Error)
            {
                CloseUpstream();
                return Error(worker, 502, close: !_bodyDone);
            }
            if (_response.Status >= 200) break;
            // 101 would hand the connection to another protocol, which we stripped Upgrade to prevent.
            if (_response.Status == 101) { CloseUpstream(); return Error(worker, 502, close: true); }
            // Interim 1xx answers are dropped: we answered 100-continue ourselves, and HTTP/1.0 clients must not see them.
            _upstreamLen -= _response.HeadLength;
            Buffer.MemoryCopy(_upstreamIn + _response.HeadLength, _upstreamIn, _upstreamCap, _upstreamLen);
        }

        _upstreamReusable = _response.Reusable;
        // A drain that began while the upstream was thinking still gets announced in this response.
        // An HTTP/1.0 client cannot take chunks (RFC 9112 §7.1): it gets the payload, delimited by the close.
        _dechunk = !_clientHttp11 && _response.Framing == BodyFraming.Chunked;
        _closeClient = !_clientKeepAlive || _response.Framing == BodyFraming.UntilClose || _dechunk || worker.Draining;
        var connection = _closeClient ? ConnectionHeader.Close : _clientConnection;
        int headLength = ProxyHeadWriter.WriteResponse(in _response, new ReadOnlySpan<byte>(_upstreamIn, _response.HeadLength),
            new Span<byte>(_responseHead, _responseHeadCap), connection, _dechunk);
        if (headLength < 0) { CloseUpstream(); return Error(worker, 502, close: !_bodyDone); }

        _responseRemaining = _response.ContentLength;
        _responseChunks = default;
        _responseDone = _response.Framing == BodyFraming.None || _response.Framing == BodyFraming.ContentLength && _responseRemaining == 0;
        int body = TakeResponseBody(_upstreamIn + _response.HeadLength, _upstreamLen - _response.HeadLength, out int send);
        if (body < 0) { CloseUpstream(); return Error(worker, 502, close: !_bodyDone); }
        worker.Stats.CountStatus(_response.Status);
        // Only a Content-Length body: its end is known without looking at its bytes, which a splice never sees.
        _spliceBody = _response.Framing == BodyFraming.ContentLength && worker.ProxySplices
                      && _responseRemaining >= worker.Options.ProxySpliceMinBytes && TakePipe(worker);
        _phase = Phase.SendResponse;
        ClearOutput();
        byte* bodyStart = _upstreamIn + _response.HeadLength;
        if (headLength <= _response.HeadLength)
        {
            // The rewritten head takes the place of the upstream's, right before the body: one buffer, one plain send.
            Buffer.MemoryCopy(_responseHead, bodyStart - headLength, headLength, headLength);
            Queue(bodyStart - headLength, headLength + send);
        }
        else
        {
            Queue(_responseHead, headLength);
            Queue(bodyStart, send);
        }
        return Want(worker, ProxyIo.SendClient);
    }

    private bool TakePipe(Worker worker)
    {
        if (_pipeRead >= 0) return true;
        if (!worker.RentPipe(out _pipeRead, out _pipeWrite)) return false;
        _pipeBytes = 0;
        return true;
    }

    private void ReleasePipe(Worker worker)
    {
        if (_pipeRead < 0) return;
        worker.ReturnPipe(_pipeRead, _pipeWrite, empty: _pipeBytes == 0 && !_pipeHoldsExtra);
        _pipeHoldsExtra = false;
        _pipeRead = _pipeWrite = -1;
        _pipeBytes = 0;
        _spliceBody = false;
    }

    /// <summary>
    /// Moves the rest of a Content-Length body upstream socket → pipe → client socket, by non-blocking splices,
    /// until it is all out (then the response is finished) or one side has to be waited for. Never asks the
    /// upstream for more than the body, so bytes past the response stay unread and the connection reusable.
    /// </summary>
    private ProxyIo SpliceResponseBody(Worker worker)
    {
        _phase = Phase.SpliceResponseBody;
        long turn = 0;
        while (true)
        {
            if (_pipeBytes > 0)
            {
                uint more = _responseRemaining > 0 ? (uint)Libc.SPLICE_F_MORE : 0;
                nint sent = Libc.splice(_pipeRead, null, ClientFd, null, (nuint)_pipeBytes, (uint)(Libc.SPLICE_F_MOVE | Libc.SPLICE_F_NONBLOCK) | more);
                if (sent < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR)
                {
                    ClientWritable = false;
                    return Want(worker, ProxyIo.AwaitClientWritable);
                }
                if (sent <= 0) return ProxyIo.Close;
                _pipeBytes -= (int)sent;
                worker.Stats.BytesZeroCopy += sent;
                turn += sent;
                continue;
            }
            if (_responseRemaining == 0)
            {
                _responseDone = true;
                ReleasePipe(worker);
                return FinishResponse(worker);
            }
            // Past its turn a large body waits for one round of the loop, so it cannot starve the other connections.
            if (turn >= SpliceTurnBytes) return Want(worker, ProxyIo.AwaitClientWritable);
            // One byte more than the body: getting it means the upstream sent more than it announced (a copied
            // read would have seen that too), and such an upstream is not trusted with the next request.
            nint got = Libc.splice(UpstreamFd, null, _pipeWrite, null, (nuint)_responseRemaining + 1, (uint)(Libc.SPLICE_F_MOVE | Libc.SPLICE_F_NONBLOCK));
            if (got < 0 && Libc.Errno is Libc.EAGAIN or Libc.EINTR)
            {
                UpstreamReadable = false;
                return Want(worker, ProxyIo.AwaitUpstreamReadable);
            }
            // The upstream closed or failed mid-body: the client has a head promising more than can come, so it must be cut.
            if (got <= 0) return ProxyIo.Close;
            if (got > _responseRemaining)
            {
                got = (nint)_responseRemaining;
                _pipeHoldsExtra = true; // never sent on: the pipe is closed with it
                _upstreamReusable = false;
            }
            _pipeBytes += (int)got;
            _responseRemaining -= got;
        }
    }

    private ProxyIo OnResponseBodyReceived(Worker worker, int result)
    {
        if (result == 0 && _response.Framing == BodyFraming.UntilClose)
        {
            _upstreamReusable = false;
            _responseDone = true;
            return FinishResponse(worker);
        }
        // The upstream stopped mid-body: the client has a head promising more than can come, so it must be cut.
        if (result <= 0) return ProxyIo.Close;
        int body = TakeResponseBody(_upstreamIn, result, out int send);
        if (body < 0) return ProxyIo.Close;
        // Only chunk framing came (a decoded body): nothing to send, read on.
        if (send == 0) return AfterResponseSent(worker);
        _phase = Phase.SendResponse;
        ClearOutput();
        Queue(_upstreamIn, send);
        return Want(worker, ProxyIo.SendClient);
    }

    /// <summary>
    /// How many of <paramref name="count"/> upstream bytes belong to the body; -1 if its framing is broken.
    /// <paramref name="send"/>: how many bytes at <paramref name="data"/> go to the client (fewer when chunks are decoded).
    /// </summary>
    private int TakeResponseBody(byte* data, int count, out int send)
    {
        send = 0;
        int body;
        switch (_response.Framing)
        {
            case BodyFraming.None:
                body = 0;
                break;
            case BodyFraming.ContentLength:
                body = (int)Math.Min(count, _responseRemaining);
                _responseRemaining -= body;
                _responseDone = _responseRemaining == 0;
                break;
            case BodyFraming.Chunked:
                if (_dechunk) body = _responseChunks.Decode(new Span<byte>(data, count), out send);
                else body = _responseChunks.Consume(new ReadOnlySpan<byte>(data, count));
                if (body < 0) return -1;
                if (!_dechunk) send = body;
                _responseDone = _responseChunks.IsDone;
                break;
            default:
                body = count;
                break;
        }
        if (_response.Framing != BodyFraming.Chunked) send = body;
        // Bytes past the end of the response were never asked for: that upstream connection is not trusted again.
        if (body < count) _upstreamReusable = false;
        return body;
    }

    private ProxyIo AfterResponseSent(Worker worker)
    {
        if (!_responseDone && _spliceBody) return SpliceResponseBody(worker);
        if (!_responseDone)
        {
            _phase = Phase.RecvResponseBody;
            _upstreamLen = 0;
            return WantUpstreamBytes(worker);
        }
        return FinishResponse(worker);
    }

    private ProxyIo FinishResponse(Worker worker)
    {
        _spliceBody = false;
        // Whole, and the upstream says nothing more before the next request: its answer will come with a new
        // edge, so under epoll the first read of it waits for that instead of failing with EAGAIN first.
        UpstreamReadable = false;
        worker.Stats.RecordDuration(Stopwatch.GetTimestamp() - _firstByteTicks, 1);
        if (!_upstreamReusable) CloseUpstream();
        else _upstreamReused = _upstreamIdle = true; // the next request on it may meet an upstream that closed it meanwhile
        if (_closeClient) return ProxyIo.Close;
        return NextRequest(worker);
    }

    private ProxyIo NextRequest(Worker worker)
    {
        Consume(_requestConsumed);
        _requestConsumed = 0;
        _firstByteTicks = Stopwatch.GetTimestamp();
        _headStartMs = worker.NowMs;
        return ReadHead(worker);
    }

    /// <summary>The upstream failed before its response head was complete.</summary>
    private ProxyIo UpstreamFailed(Worker worker, bool duringSend)
    {
        bool nothingReceived = _phase != Phase.RecvResponseHead || _upstreamLen == 0;
        bool wholeRequestHeld = _phase != Phase.SendBody && _bodyDone && _requestConsumed > 0;
        CloseUpstream();
        // A kept-alive connection the upstream closed while idle looks exactly like this; one fresh try is safe.
        if (_upstreamReused && !_retried && !_timedOut && nothingReceived && wholeRequestHeld && (_idempotent || duringSend))
        {
            _retried = true;
            worker.Stats.UpstreamRetries++;
            return SendRequest(worker);
        }
        return Error(worker, _timedOut ? 504 : 502, close: !_bodyDone);
    }

    /// <summary>An answer of our own. Unless the client must be closed, the connection goes on with the next request.</summary>
    private ProxyIo Error(Worker worker, int status, bool close)
    {
        _phase = Phase.SendError;
        _closeAfterError = close || !_clientKeepAlive || worker.Draining;
        var area = new Span<byte>(_responseHead, _responseHeadCap);
        int n = ResponseHead.WriteError(area, status, worker.Date, _closeAfterError ? ConnectionHeader.Close : _clientConnection);
        ClearOutput();
        Queue(_responseHead, n);
        var body = ResponseHead.ErrorBody(status);
        if (!_requestIsHead)
            fixed (byte* p = body) Queue(p, body.Length);
        worker.Stats.CountStatus(status);
        return Want(worker, ProxyIo.SendClient);
    }

    private ProxyIo AfterErrorSent(Worker worker)
    {
        worker.Stats.RecordDuration(Stopwatch.GetTimestamp() - _firstByteTicks, 1);
        return _closeAfterError ? ProxyIo.Close : NextRequest(worker);
    }

    private ProxyIo Want(Worker worker, ProxyIo io)
    {
        Pending = io;
        PhaseSinceMs = worker.NowMs;
        return io;
    }

    private void CloseUpstream()
    {
        if (UpstreamFd >= 0)
        {
            Libc.close(UpstreamFd);
            _worker.SessionUpstreams--;
        }
        UpstreamFd = -1;
        _upstreamIdle = false;
        ConnectPending = false;
    }

    /// <summary>Drops the first <paramref name="count"/> bytes of the client buffer.</summary>
    private void Consume(int count)
    {
        if (count <= 0) return;
        _clientLen -= count;
        if (_clientLen > 0) Buffer.MemoryCopy(_clientIn + count, _clientIn, _clientCap, _clientLen);
    }

    private void ClearOutput() => _iovStart = _iovEnd = 0;

    private void Queue(byte* data, int length)
    {
        if (length > 0) _iov[_iovEnd++] = new IoVec { Base = data, Length = (nuint)length };
    }

    private bool Advance(long sent) => IoVecs.Consume(_iov, ref _iovStart, _iovEnd, sent);
}
