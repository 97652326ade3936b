using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.DevicePlugin;

namespace NetTune.Agent.DevicePlugin;

/// <summary>
/// Keeps the NUMA resources registered with the node's kubelet: serves them and registers once a kubelet socket is
/// there, and again whenever the kubelet restarted (its socket is new, or ours are gone). It looks when an entry of the
/// folder changes (inotify), or every <see cref="AgentOptions.DevicePluginPollInterval"/> while the folder cannot be
/// watched (no kubelet yet) and after a failed round.
/// </summary>
public sealed class NumaDevicePlugin(AgentOptions options, TuningEngine engine, ILoggerFactory loggers) : BackgroundService
{
    private readonly ILogger _log = loggers.CreateLogger<NumaDevicePlugin>();
    private readonly IDevicePluginFolder _folder = new DevicePluginFolder(Path.Join(options.HostRoot, options.DevicePluginDir));
    private readonly IKubeletRegistration _registration = new GrpcKubeletRegistration();

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        var resources = NumaDevicePlan.Plan(engine.Discover().NumaNodes);
        if (resources.Count == 0)
        {
            _log.LogWarning("no NUMA node with CPUs found: the device plugin offers nothing");
            return;
        }
        DevicePluginServer? server = null;
        SocketIdentity? registeredWith = null;
        var waitingLogged = false;
        using var watch = new FolderWatch(_folder.Path);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var failed = false;
                // Watching before looking: a kubelet restart in between wakes the next round.
                watch.Ensure();
                // Nothing here may end the agent (a failed hosted service stops the host): every failure is logged
                // and the next round tries again.
                try
                {
                    var kubelet = _folder.KubeletSocket();
                    var ours = server is not null && resources.All(r => _folder.Exists(r.SocketName));
                    switch (RegistrationWatch.Decide(registeredWith, kubelet, ours))
                    {
                        case RegistrationAction.WaitForKubelet:
                            if (!waitingLogged) _log.LogInformation("waiting for the kubelet's {Socket} in {Folder}", NumaDevicePlan.KubeletSocketName, _folder.Path);
                            waitingLogged = true;
                            break;
                        case RegistrationAction.ServeAndRegister:
                            registeredWith = null;
                            if (server is not null) await server.DisposeAsync();
                            server = null;
                            server = await DevicePluginServer.StartAsync(_folder.Path, resources, loggers, stop);
                            foreach (var resource in resources)
                                await _registration.RegisterAsync(Path.Combine(_folder.Path, NumaDevicePlan.KubeletSocketName), resource, stop);
                            registeredWith = kubelet;
                            waitingLogged = false;
                            _log.LogInformation("registered {Resources} with the kubelet ({Count} devices each)",
                                string.Join(", ", resources.Select(r => r.ResourceName)), NumaDevicePlan.DevicesPerNumaNode);
                            break;
                    }
                }
                catch (Exception e) when (!stop.IsCancellationRequested)
                {
                    registeredWith = null;
                    failed = true;
                    _log.LogWarning("device plugin: {Error}; trying again", e.Message);
                }
                await watch.WaitAsync(watch.Watching && !failed ? options.WatchedFolderRecheckInterval : options.DevicePluginPollInterval, stop);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        finally
        {
            if (server is not null) await server.DisposeAsync();
        }
    }
}
