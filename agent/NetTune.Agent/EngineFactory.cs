using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Seccomp;

namespace NetTune.Agent;

public static class EngineFactory
{
    public static TuningEngine Create(string hostRoot, string journalDir, ChannelBackend backend, out HostFileSystem fs, bool planOnly = false, NetNamespaceMode netNamespace = NetNamespaceMode.Host,
        IConnectivityCheck? connectivity = null, TimeSpan? connectivityBound = null, string? kubeletRootDir = null)
    {
        fs = new HostFileSystem(hostRoot);
        IChannelControl channels = backend == ChannelBackend.Fixture ? new SimulatedChannelControl(fs) : new EthtoolChannelControl();
        return new TuningEngine(fs, channels, new JournalStore(journalDir), planOnly)
        {
            TuneOwnNetNamespace = netNamespace == NetNamespaceMode.Own,
            Connectivity = connectivity,
            ConnectivityBound = connectivityBound ?? TimeSpan.FromSeconds(60),
            SeccompProfilePath = kubeletRootDir is null ? null : DataPlaneSeccompProfile.HostPath(kubeletRootDir),
        };
    }
}
