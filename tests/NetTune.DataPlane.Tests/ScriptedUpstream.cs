using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace NetTune.DataPlane.Tests;

/// <summary>What the upstream received: one request, with its body decoded.</summary>
public sealed record ReceivedRequest(int Connection, string Method, string Target, List<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public IEnumerable<string> Values(string name) =>
        Headers.Where(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);
    public string? Header(string name) => Values(name).Cast<string?>().FirstOrDefault();
}

/// <summary>
/// A real HTTP/1.1 upstream on 127.0.0.1 whose answers are chosen by path, to drive the proxy into
/// each framing and failure it must handle. It parses requests independently of the code under test
/// (its own Content-Length and chunked decoding) and records what arrived.
/// Made <c>contentLengthOnly</c>, it frames request bodies by Content-Length alone, ignoring
/// Transfer-Encoding, and takes any line of three space-separated words as a request line: the lenient
/// backend a smuggled request reaches when a proxy forwards a body without the header that framed it.
/// </summary>
public sealed class ScriptedUpstream : IDisposable
{
    private readonly bool _contentLengthOnly;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Socket> _sockets = new();
    private int _connections;

    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();
    public int Port { get; }
    public int Connections => Volatile.Read(ref _connections);
    public string Address => $"{((IPEndPoint)_listener.LocalEndpoint).Address}:{Port}";

    public ScriptedUpstream(bool contentLengthOnly = false) : this(IPAddress.Loopback, 0, contentLengthOnly) { }

    /// <summary>On a given loopback address and port: two upstreams on 127.0.0.1:P and 127.0.0.2:P stand for one name that moves.</summary>
    public ScriptedUpstream(IPAddress address, int port, bool contentLengthOnly = false)
    {
        _contentLengthOnly = contentLengthOnly;
        _listener = new TcpListener(address, port);
        _listener.Start(128);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoop();
    }

    /// <summary>The body of /large-then-more: past the proxy's splice threshold, within one loopback segment.</summary>
    public const int ThenMoreBodyBytes = 40_000;

    /// <summary>The body of /huge: 16 copies of <see cref="LargeBody"/>(7).</summary>
    public const long HugeBodyBytes = 16L << 20;

    /// <summary>A 1 MiB body whose bytes depend on the seed, for byte-exact checks of large responses.</summary>
    public static byte[] LargeBody(int seed)
    {
        var data = new byte[1 << 20];
        new Random(seed).NextBytes(data);
        return data;
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception) { return; }
            socket.NoDelay = true; // head and body are separate writes; Nagle would hold the body for a delayed ACK
            _sockets.Add(socket);
            int id = Interlocked.Increment(ref _connections);
            _ = Task.Run(() => Serve(socket, id));
        }
    }

    private async Task Serve(Socket socket, int id)
    {
        using var _ = socket;
        var reader = new Reader(socket, _contentLengthOnly);
        try
        {
            while (true)
            {
                var request = await reader.ReadRequest(id);
                if (request == null) return;
                Requests.Enqueue(request);
                if (request.Target.Length == 0)
                {
                    // Not a request line: what a real server answers, and the end of that connection.
                    await socket.SendAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                    return;
                }
                if (!await Respond(socket, request)) return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
    }

    /// <summary>
    /// Whole answers (head and body) whose framing a proxy and its client could read differently; the connection
    /// stays open after each, so a proxy that reuses it would be seen to.
    /// </summary>
    private static readonly Dictionary<string, byte[]> SplittingAnswers = new()
    {
        // Both framings (RFC 9112 §6.3): a client that frames by the length reads "hel" and takes the rest as the next response.
        ["/length-and-chunked"] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"u8.ToArray(),
        // The body is framed by a header the same head calls hop-by-hop (RFC 9110 §7.6.1).
        ["/connection-names-length"] = "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray(),
        ["/connection-names-chunked"] = "HTTP/1.1 200 OK\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"u8.ToArray(),
        ["/two-lengths"] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 48\r\n\r\nhello"u8.ToArray(),
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        ["/chunked-http10"] = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"u8.ToArray(),
        // Framed by the length; a lenient client would take the first line as Transfer-Encoding (RFC 9112 §5.1).
        ["/space-before-colon"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray(),
        ["/nul-in-value"] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray(),
    };

    /// <summary>Answers by path; false when the connection should end.</summary>
    private async Task<bool> Respond(Socket socket, ReceivedRequest r)
    {
        var path = r.Target.Split('?')[0];
        bool head = r.Method == "HEAD";
        if (SplittingAnswers.TryGetValue(path, out var answer))
        {
            await socket.SendAsync(answer);
            return true;
        }
        switch (path)
        {
            case "/echo":
            {
                // What arrived, so a test can see exactly what the proxy forwarded.
                var text = new StringBuilder($"{r.Method} {r.Target}\n");
                foreach (var h in r.Headers) text.Append(h.Key).Append(": ").Append(h.Value).Append('\n');
                text.Append("body-sha256: ").Append(Convert.ToHexString(SHA256.HashData(r.Body))).Append('\n');
                return await Send(socket, 200, Encoding.UTF8.GetBytes(text.ToString()), head, "Content-Type: text/plain\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n");
            }
            case "/large":
                return await Send(socket, 200, LargeBody(7), head);
            case "/huge":
            {
                // More than the proxy's socket buffers hold, so a client that does not read keeps the proxy sending.
                var piece = LargeBody(7);
                await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {HugeBodyBytes}\r\n\r\n"));
                for (long sent = 0; sent < HugeBodyBytes; sent += piece.Length) await socket.SendAsync(piece);
                return true;
            }
            case "/large-then-more":
            {
                // More than announced: a whole second response right behind the body, as if to answer the next
                // request before it is asked. Body and extra go in one write of less than one loopback
                // segment (64 KiB), so they arrive together.
                var extra = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"u8.ToArray();
                await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {ThenMoreBodyBytes}\r\n\r\n"));
                await socket.SendAsync(LargeBody(7).Take(ThenMoreBodyBytes).Concat(extra).ToArray());
                return true;
            }
            case "/large-cut":
                // Promises the whole large body, sends a fifth of it, and closes.
                await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {1 << 20}\r\n\r\n"));
                await socket.SendAsync(LargeBody(7).AsMemory(0, 200_000));
                return false;
            case "/created":
                return await Send(socket, 201, "made\n"u8.ToArray(), head, "Location: /thing/1\r\n");
            case "/no-content":
                await socket.SendAsync("HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n"u8.ToArray());
                return true;
            case "/chunked":
            {
                var head1 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n";
                await socket.SendAsync(Encoding.ASCII.GetBytes(head1));
                if (head) return true;
                // Split awkwardly across writes, with an extension and a trailer, as real servers may.
                await socket.SendAsync("5;ext=1\r\nhello\r\n"u8.ToArray());
                await Task.Delay(20);
                await socket.SendAsync("1\r\n \r\n6\r\nwor"u8.ToArray());
                await Task.Delay(20);
                await socket.SendAsync("ld!\r\n0\r\nX-Checksum: 42\r\n\r\n"u8.ToArray());
                return true;
            }
            case "/bare-cr":
                await socket.SendAsync("HTTP/1.1 200 OK\r\nX-Split: a\rX-Injected: b\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
                return false;
            case "/obs-fold":
                await socket.SendAsync("HTTP/1.1 200 OK\r\nX-Folded: a\r\n X-Smuggled: b\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
                return false;
            case "/connection-names":
                return await Send(socket, 200, "ok\n"u8.ToArray(), head, "Connection: X-Up-Hop\r\nX-Up-Hop: secret\r\nX-End: kept\r\n");
            case "/until-close":
                await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body runs until the upstream closes\n"u8.ToArray());
                return false;
            case "/then-close":
                // Answers as if the connection stayed open, then closes it: what an upstream's idle timeout does.
                await Send(socket, 200, "closing after this\n"u8.ToArray(), head);
                return false;
            case "/interim":
                await socket.SendAsync("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"u8.ToArray());
                return await Send(socket, 200, "after hints\n"u8.ToArray(), head);
            case "/slow":
                await Task.Delay(int.Parse(r.Target.Split('=')[1]));
                return await Send(socket, 200, "slow\n"u8.ToArray(), head);
            case "/big-head":
                return await Send(socket, 200, "x"u8.ToArray(), head, $"X-Big: {new string('b', 20_000)}\r\n");
            case "/garbage":
                await socket.SendAsync("NOT HTTP AT ALL\r\n\r\n"u8.ToArray());
                return false;
            case "/truncated":
                await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"u8.ToArray());
                return false;
            default:
                return await Send(socket, 404, "no such script\n"u8.ToArray(), head);
        }
    }

    private static async Task<bool> Send(Socket socket, int status, byte[] body, bool head, string extraHeaders = "")
    {
        var reason = status switch { 200 => "OK", 201 => "Created", 404 => "Not Found", _ => "Whatever" };
        var headText = $"HTTP/1.1 {status} {reason}\r\nServer: scripted\r\n{extraHeaders}Content-Length: {body.Length}\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(headText));
        if (!head && body.Length > 0) await socket.SendAsync(body);
        return true;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var s in _sockets) s.Dispose();
    }

    /// <summary>Buffered request reading with its own framing logic.</summary>
    private sealed class Reader(Socket socket, bool contentLengthOnly)
    {
        private readonly byte[] _buffer = new byte[1 << 16];
        private int _start, _end;

        public async Task<ReceivedRequest?> ReadRequest(int connection)
        {
            var line = await ReadLine();
            // RFC 9112 §2.2: empty lines before a request line are ignored.
            while (line == "") line = await ReadLine();
            if (line == null) return null;
            var parts = line.Split(' ');
            if (parts.Length != 3) return new ReceivedRequest(connection, line, "", [], []);
            var headers = new List<KeyValuePair<string, string>>();
            string? header;
            while (!string.IsNullOrEmpty(header = await ReadLine()))
            {
                int colon = header.IndexOf(':');
                headers.Add(new(header[..colon], header[(colon + 1)..].Trim()));
            }
            var body = new MemoryStream();
            var te = contentLengthOnly ? null : headers.FirstOrDefault(h => h.Key.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)).Value;
            var cl = headers.FirstOrDefault(h => h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Value;
            if (te != null)
            {
                while (true)
                {
                    var sizeLine = await ReadLine() ?? throw new IOException("eof in chunk size");
                    int size = Convert.ToInt32(sizeLine.Split(';')[0], 16);
                    if (size == 0)
                    {
                        while (!string.IsNullOrEmpty(await ReadLine())) { }
                        break;
                    }
                    await ReadExactly(body, size);
                    await ReadLine();
                }
            }
            else if (cl != null)
            {
                await ReadExactly(body, long.Parse(cl));
            }
            return new ReceivedRequest(connection, parts[0], parts[1], headers, body.ToArray());
        }

        private async Task ReadExactly(MemoryStream into, long count)
        {
            while (count > 0)
            {
                if (_start == _end && !await Fill()) throw new IOException("eof in body");
                int n = (int)Math.Min(count, _end - _start);
                into.Write(_buffer, _start, n);
                _start += n;
                count -= n;
            }
        }

        private async Task<string?> ReadLine()
        {
            while (true)
            {
                int nl = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
                if (nl >= 0)
                {
                    var s = Encoding.Latin1.GetString(_buffer, _start, nl);
                    _start += nl + 2;
                    return s;
                }
                if (!await Fill()) return null;
            }
        }

        private async Task<bool> Fill()
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length) throw new IOException("line too long");
            int n = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None);
            _end += n;
            return n > 0;
        }
    }
}
