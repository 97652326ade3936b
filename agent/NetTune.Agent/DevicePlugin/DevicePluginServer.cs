using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using NetTune.Agent.Core.DevicePlugin;

namespace NetTune.Agent.DevicePlugin;

/// <summary>Which NUMA resource each open connection came in on (one socket per resource), by Kestrel's connection id.</summary>
public sealed class ConnectionResources
{
    private readonly ConcurrentDictionary<string, NumaResource> _byConnection = new(StringComparer.Ordinal);

    public NumaResource? Of(string connectionId) => _byConnection.GetValueOrDefault(connectionId);

    /// <summary>
    /// Kestrel connection middleware: remembers the connection's resource and hands Kestrel the client's bytes with
    /// every :authority emptied (<see cref="Http2AuthorityRewriter"/>: kubelets before 1.26 send the socket path there).
    /// </summary>
    public async Task ServeAsync(ConnectionContext connection, NumaResource resource, ConnectionDelegate next)
    {
        _byConnection[connection.ConnectionId] = resource;
        var original = connection.Transport;
        var rewritten = new Pipe();
        var pump = PumpAsync(original.Input, rewritten.Writer);
        connection.Transport = new DuplexPipe(rewritten.Reader, original.Output);
        try
        {
            await next(connection);
        }
        finally
        {
            connection.Transport = original;
            _byConnection.TryRemove(connection.ConnectionId, out _);
            await rewritten.Reader.CompleteAsync();
            original.Input.CancelPendingRead();
            await pump;
        }
    }

    private static async Task PumpAsync(PipeReader input, PipeWriter output)
    {
        var rewriter = new Http2AuthorityRewriter();
        try
        {
            while (true)
            {
                var read = await input.ReadAsync();
                if (read.IsCanceled) break;
                var buffer = read.Buffer;
                var consumed = buffer.IsSingleSegment ? rewriter.Process(buffer.FirstSpan, output) : rewriter.Process(buffer.ToArray(), output);
                input.AdvanceTo(buffer.GetPosition(consumed), buffer.End);
                var flushed = await output.FlushAsync();
                if (read.IsCompleted || flushed.IsCompleted) break;
            }
            await output.CompleteAsync();
        }
        catch (Exception e) when (e is IOException or ConnectionResetException or InvalidOperationException or OperationCanceledException)
        {
            await output.CompleteAsync(e);
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;
        public PipeWriter Output => output;
    }
}

/// <summary>
/// The device plugin's gRPC server: Kestrel (HTTP/2 without TLS) on one Unix socket per NUMA resource in the
/// kubelet's device-plugins folder. Started anew for each registration: a kubelet that restarts deletes the sockets,
/// and a listener cannot get its path back.
/// </summary>
public sealed class DevicePluginServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly IReadOnlyList<string> _paths;

    private DevicePluginServer(WebApplication app, IReadOnlyList<string> paths)
    {
        _app = app;
        _paths = paths;
    }

    public static async Task<DevicePluginServer> StartAsync(string directory, IReadOnlyList<NumaResource> resources, ILoggerFactory loggers, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(AgentHost.WebOptions);
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        var connections = new ConnectionResources();
        var paths = new List<string>();
        builder.WebHost.UseKestrel(kestrel =>
        {
            foreach (var resource in resources)
            {
                var path = Path.Combine(directory, resource.SocketName);
                // A socket file left by an agent that died would make the bind fail.
                File.Delete(path);
                paths.Add(path);
                kestrel.ListenUnixSocket(path, listen =>
                {
                    listen.Protocols = HttpProtocols.Http2;
                    listen.Use(next => connection => connections.ServeAsync(connection, resource, next));
                });
            }
        });
        builder.Services.AddSingleton(connections);
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<NumaDevicePluginService>();
        await app.StartAsync(ct);
        return new DevicePluginServer(app, paths);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (var path in _paths)
            try { File.Delete(path); } catch (IOException) { }
    }
}
