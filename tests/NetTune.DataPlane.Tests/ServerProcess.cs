using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace NetTune.DataPlane.Tests;

/// <summary>The real server binary as a child process on 127.0.0.1 with ephemeral ports.</summary>
public sealed partial class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    public int Port { get; }
    public int AdminPort { get; }
    public string Engine { get; }

    public static string BinaryPath => Path.Combine(AppContext.BaseDirectory, "dataplane");

    private ServerProcess(Process process, int port, int adminPort, string engine)
    {
        _process = process;
        Port = port;
        AdminPort = adminPort;
        Engine = engine;
    }

    public int Pid => _process.Id;
    public string Output { get { lock (_output) return _output.ToString(); } }

    public static ServerProcess Start(string root, string engine, params string[] extra) =>
        Launch(["--root", root], engine, extra);

    /// <summary>Proxy mode: forwards to <paramref name="upstreams"/> (host:port, comma-separated).</summary>
    public static ServerProcess StartProxy(string upstreams, string engine, params string[] extra) =>
        Launch(["--upstream", upstreams], engine, extra);

    /// <summary>Proxy mode started through <paramref name="prefix"/> (a command that sets something up and execs the server).</summary>
    public static ServerProcess StartProxyWith(string[] prefix, string upstreams, string engine, params string[] extra) =>
        Launch(["--upstream", upstreams], engine, extra, prefix);

    /// <summary>Static mode with the process's CPU affinity set to <paramref name="cpuList"/> (taskset), as a kubelet's CPU manager does.</summary>
    public static ServerProcess StartWithAffinity(string cpuList, string root, string engine, params string[] extra) =>
        Launch(["--root", root], engine, extra, ["taskset", "-c", cpuList]);

    /// <summary>
    /// Static mode started through <paramref name="prefix"/> (a command that sets something up and execs the server,
    /// such as prlimit), with extra environment variables.
    /// </summary>
    public static ServerProcess StartWith(string[] prefix, IReadOnlyDictionary<string, string> environment, string root, string engine, params string[] extra) =>
        Launch(["--root", root], engine, extra, prefix, environment);

    private static ServerProcess Launch(string[] mode, string engine, string[] extra, string[]? prefix = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        // taskset and prlimit exec the server, so the child's pid stays the server's.
        var psi = new ProcessStartInfo(prefix is { Length: > 0 } ? prefix[0] : BinaryPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (prefix is { Length: > 0 })
        {
            foreach (var a in prefix.Skip(1)) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(BinaryPath);
        }
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        foreach (var a in mode) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "--address", "127.0.0.1", "--port", "0", "--admin-address", "127.0.0.1", "--admin-port", "0", "--io-engine", engine })
            psi.ArgumentList.Add(a);
        foreach (var a in extra) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var output = new StringBuilder();
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data == null) { ready.TrySetResult(""); return; }
            lock (output) output.AppendLine(e.Data);
            if (e.Data.StartsWith("dataplane listening on", StringComparison.Ordinal)) ready.TrySetResult(e.Data);
        };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!ready.Task.Wait(TimeSpan.FromSeconds(30)) || ready.Task.Result.Length == 0)
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            p.WaitForExit(5000);
            throw new InvalidOperationException($"server did not start: {output}");
        }
        var m = ListeningLine().Match(ready.Task.Result);
        var server = new ServerProcess(p, int.Parse(m.Groups[1].Value), int.Parse(m.Groups[3].Value), m.Groups[2].Value);
        lock (output) server._output.Append(output);
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (server._output) server._output.AppendLine(e.Data); };
        return server;
    }

    [GeneratedRegex(@"listening on [0-9.]+:(\d+) engine=(\S+) .*admin=[0-9.]+:(\d+)")]
    private static partial Regex ListeningLine();

    /// <summary>An HttpClient on one kept-alive connection to this server, with no content decoding.</summary>
    public HttpClient NewHttpClient() =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = 1, AutomaticDecompression = System.Net.DecompressionMethods.None })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{Port}/"),
        };

    public void Terminate() => Kill(_process.Id, 15);

    /// <summary>Waits for the exit and then for the redirected output to be read to its end, so <see cref="Output"/> is complete.</summary>
    public bool WaitForExit(int ms)
    {
        if (!_process.WaitForExit(ms)) return false;
        _process.WaitForExit();
        return true;
    }
    public int ExitCode => _process.ExitCode;
    public bool HasExited => _process.HasExited;

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { _process.Kill(); } catch (InvalidOperationException) { }
            _process.WaitForExit(5000);
        }
        _process.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Runs the binary to completion (for start-up error tests).</summary>
    public static (int ExitCode, string Output) RunToExit(params string[] args) => RunToExitWithAffinity(null, args);

    public static (int ExitCode, string Output) RunToExitWithAffinity(string? affinity, params string[] args)
    {
        var psi = new ProcessStartInfo(affinity == null ? BinaryPath : "taskset") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (affinity != null) foreach (var a in new[] { "-c", affinity, BinaryPath }) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30000)) { p.Kill(); throw new TimeoutException("server did not exit"); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>A document root with files of the sizes the tests need, plus traps.</summary>
public sealed class TestRoot : IDisposable
{
    public string Path { get; }
    public string Outside { get; }
    public byte[] Small { get; }
    public byte[] Medium { get; }
    public byte[] Large { get; }

    public TestRoot()
    {
        Path = Directory.CreateTempSubdirectory("nettune-www-").FullName;
        Outside = Directory.CreateTempSubdirectory("nettune-outside-").FullName;
        var rng = new Random(42);
        Small = new byte[1024];
        Medium = new byte[64 * 1024];
        Large = new byte[10 * 1024 * 1024 + 123];
        rng.NextBytes(Small);
        rng.NextBytes(Medium);
        rng.NextBytes(Large);
        File.WriteAllBytes(P("1k.bin"), Small);
        File.WriteAllBytes(P("64k.bin"), Medium);
        File.WriteAllBytes(P("10m.bin"), Large);
        File.WriteAllText(P("index.html"), "<h1>root</h1>\n");
        File.WriteAllText(P("style.css"), "body{}\n");
        File.WriteAllText(P("a b.txt"), "space\n");
        File.WriteAllText(P("empty.txt"), "");
        Directory.CreateDirectory(P("dir"));
        File.WriteAllText(P("dir/index.html"), "<h1>dir</h1>\n");
        Directory.CreateDirectory(P("noindex"));
        File.WriteAllText(System.IO.Path.Combine(Outside, "secret.txt"), "secret\n");
        File.CreateSymbolicLink(P("link-out"), System.IO.Path.Combine(Outside, "secret.txt"));
        File.CreateSymbolicLink(P("link-dir-out"), Outside);
        // Relative: RESOLVE_BENEATH refuses absolute symlinks even when they point inside the root.
        File.CreateSymbolicLink(P("link-in"), "index.html");
        File.CreateSymbolicLink(P("link-abs-in"), P("index.html"));
    }

    private string P(string relative) => System.IO.Path.Combine(Path, relative);

    public static string Sha(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    public void Dispose()
    {
        try { Directory.Delete(Path, true); Directory.Delete(Outside, true); } catch (IOException) { }
    }
}

/// <summary>One parsed response from a raw socket.</summary>
public sealed record RawResponse(int Status, Dictionary<string, string> Headers, byte[] Body)
{
    public string Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : "";
}

/// <summary>A hand-rolled client that can send anything (pipelined, malformed, partial) and read exact bytes.</summary>
public sealed class RawClient : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[1 << 20];
    private int _start, _end;

    public RawClient(int port, int receiveTimeoutMs = 20000)
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = receiveTimeoutMs };
        _socket.Connect("127.0.0.1", port);
    }

    public Socket Socket => _socket;

    public void Send(string text) => Send(Encoding.Latin1.GetBytes(text));
    public void Send(byte[] data) => _socket.Send(data);

    /// <summary>Reads one response; <paramref name="head"/> says whether it answers a HEAD (no body).</summary>
    public RawResponse Read(bool head = false)
    {
        int headEnd;
        while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
            if (!Fill()) throw new IOException("connection closed before a full response head");
        var headText = Encoding.Latin1.GetString(_buffer, _start, headEnd);
        _start += headEnd + 4;
        var lines = headText.Split("\r\n");
        var statusParts = lines[0].Split(' ', 3);
        if (statusParts[0] != "HTTP/1.1") throw new IOException($"bad status line '{lines[0]}'");
        var headers = new Dictionary<string, string>();
        foreach (var line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
        }
        int status = int.Parse(statusParts[1]);
        bool noBody = head || status == 304 || status == 204 || status < 200;
        if (!noBody && headers.TryGetValue("transfer-encoding", out var te) && te.Equals("chunked", StringComparison.OrdinalIgnoreCase))
            return new RawResponse(status, headers, ReadChunked());
        // Neither length nor chunks: the body runs until the server closes (RFC 9112 §6.3).
        if (!noBody && !headers.ContainsKey("content-length")) return new RawResponse(status, headers, ReadToEnd());
        long length = noBody ? 0 : long.Parse(headers["content-length"]);
        var body = new byte[length];
        long got = 0;
        while (got < length)
        {
            if (_start == _end && !Fill()) throw new IOException($"connection closed after {got} of {length} body bytes");
            int n = (int)Math.Min(length - got, _end - _start);
            Buffer.BlockCopy(_buffer, _start, body, (int)got, n);
            _start += n;
            got += n;
        }
        return new RawResponse(status, headers, body);
    }

    private byte[] ReadChunked()
    {
        var body = new MemoryStream();
        while (true)
        {
            var sizeLine = ReadLine();
            int semicolon = sizeLine.IndexOf(';');
            int size = Convert.ToInt32(semicolon < 0 ? sizeLine : sizeLine[..semicolon], 16);
            if (size == 0)
            {
                while (ReadLine().Length > 0) { } // trailer fields, then the empty line
                return body.ToArray();
            }
            while (size > 0)
            {
                if (_start == _end && !Fill()) throw new IOException("connection closed inside a chunk");
                int n = Math.Min(size, _end - _start);
                body.Write(_buffer, _start, n);
                _start += n;
                size -= n;
            }
            if (ReadLine().Length != 0) throw new IOException("chunk data not followed by CRLF");
        }
    }

    private string ReadLine()
    {
        int end;
        while ((end = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8)) < 0)
            if (!Fill()) throw new IOException("connection closed inside a line");
        var line = Encoding.Latin1.GetString(_buffer, _start, end);
        _start += end + 2;
        return line;
    }

    /// <summary>True when the server closed the connection (EOF) with nothing more to read.</summary>
    public bool ReadsEof()
    {
        try
        {
            if (_start < _end) return false;
            return !Fill();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    /// <summary>Everything until the server closes (bounded by the receive timeout).</summary>
    public byte[] ReadToEnd()
    {
        var all = new MemoryStream();
        all.Write(_buffer, _start, _end - _start);
        _start = _end = 0;
        try
        {
            int n;
            while ((n = _socket.Receive(_buffer)) > 0) all.Write(_buffer, 0, n);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
        return all.ToArray();
    }

    private bool Fill()
    {
        if (_start == _end) _start = _end = 0;
        if (_end == _buffer.Length)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        int n = _socket.Receive(_buffer, _end, _buffer.Length - _end, SocketFlags.None);
        _end += n;
        return n > 0;
    }

    public void Dispose() => _socket.Dispose();
}
