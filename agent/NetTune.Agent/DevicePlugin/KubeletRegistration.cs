using System.Net.Sockets;
using Grpc.Net.Client;
using NetTune.Agent.Core.DevicePlugin;
using NetTune.Agent.DevicePlugin.V1Beta1;

namespace NetTune.Agent.DevicePlugin;

/// <summary>The kubelet's device-plugins folder as the plugin sees it: the kubelet's socket and the plugin's own.</summary>
public interface IDevicePluginFolder
{
    string Path { get; }

    /// <summary>The kubelet's registration socket now, or null when there is none.</summary>
    SocketIdentity? KubeletSocket();

    bool Exists(string socketName);
}

/// <summary>The Register call to the kubelet.</summary>
public interface IKubeletRegistration
{
    Task RegisterAsync(string kubeletSocket, NumaResource resource, CancellationToken ct);
}

public sealed class DevicePluginFolder(string path) : IDevicePluginFolder
{
    public string Path => path;

    public SocketIdentity? KubeletSocket()
    {
        var socket = new FileInfo(System.IO.Path.Combine(path, NumaDevicePlan.KubeletSocketName));
        if (!socket.Exists) return null;
        return new SocketIdentity(socket.CreationTimeUtc.Ticks, socket.LastWriteTimeUtc.Ticks);
    }

    // A socket is no regular file: FileInfo.Exists says false for it, File.Exists too on some runtimes.
    public bool Exists(string socketName) => Directory.EnumerateFileSystemEntries(path, socketName).Any();
}

/// <summary>Registers over the kubelet's Unix socket with gRPC (HTTP/2 without TLS).</summary>
public sealed class GrpcKubeletRegistration : IKubeletRegistration
{
    public async Task RegisterAsync(string kubeletSocket, NumaResource resource, CancellationToken ct)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(kubeletSocket), token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        var client = new Registration.RegistrationClient(channel);
        await client.RegisterAsync(new RegisterRequest
        {
            Version = NumaDevicePlan.ApiVersion,
            Endpoint = resource.SocketName,
            ResourceName = resource.ResourceName,
            Options = NumaDevicePluginService.Options,
        }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
    }
}
