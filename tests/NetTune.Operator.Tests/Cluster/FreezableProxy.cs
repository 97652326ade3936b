using System.Net;
using System.Net.Sockets;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// A loopback TCP relay to the API server whose open connections can be frozen: bytes stop flowing both ways but no
/// connection closes, as with a peer that hangs or a half-open connection. New connections relay normally.
/// </summary>
public sealed class FreezableProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Client, TcpClient Upstream, CancellationTokenSource Frozen)> _connections = [];
    private readonly Task _accept;
    private readonly List<TcpClient> _held = [];

    public FreezableProxy(Uri target)
    {
        _target = new IPEndPoint(IPAddress.Parse(target.Host), target.Port);
        _listener.Start();
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Frozen { get; private set; }

    private volatile bool _partitioned;

    /// <summary>
    /// A network partition: the open connections freeze, and new ones are accepted but never reach the API server
    /// (until <see cref="Heal"/>), so the client cannot get through by reconnecting either.
    /// </summary>
    public void Partition()
    {
        _partitioned = true;
        FreezeOpenConnections();
    }

    /// <summary>New connections relay again; the frozen ones stay silent.</summary>
    public void Heal() => _partitioned = false;

    /// <summary>Stops the bytes of every connection open now.</summary>
    public void FreezeOpenConnections()
    {
        lock (_connections)
        {
            foreach (var c in _connections) c.Frozen.Cancel();
            Frozen += _connections.Count;
            _connections.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (SocketException) { return; }
            if (_partitioned)
            {
                // Accepted and left silent: the client's connect succeeds and its TLS handshake hangs.
                lock (_connections) _held.Add(client);
                continue;
            }
            var upstream = new TcpClient();
            try { await upstream.ConnectAsync(_target, _stop.Token); }
            catch (Exception) { client.Dispose(); upstream.Dispose(); continue; }
            var frozen = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            lock (_connections) _connections.Add((client, upstream, frozen));
            _ = PumpAsync(client.GetStream(), upstream.GetStream(), frozen.Token);
            _ = PumpAsync(upstream.GetStream(), client.GetStream(), frozen.Token);
        }
    }

    private static async Task PumpAsync(NetworkStream from, NetworkStream to, CancellationToken frozen)
    {
        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer, frozen);
                if (n == 0) break;
                await to.WriteAsync(buffer.AsMemory(0, n), frozen);
            }
            to.Socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception) when (frozen.IsCancellationRequested)
        {
            // Frozen: leave both sockets open and silent.
        }
        catch (Exception) { }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accept;
        lock (_connections)
        {
            foreach (var c in _connections) { c.Client.Dispose(); c.Upstream.Dispose(); }
            foreach (var c in _held) c.Dispose();
        }
    }
}
