using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Seccomp;

namespace NetTune.Agent;

public static class EngineFactory
{
    public static TuningEngine Create(string hostRoot, string journalDir, ChannelBackend backend, out HostFileSystem fs, bool planOnly = false, NetNamespaceMode netNamespace = NetNamespaceMode.Host,
        IConnectivityCheck? connectivity = null, TimeSpan? connectivityBound = null, string kubeletRootDir = Core.Topology.KubeletCpuAssignment.DefaultKubeletRootDir,
        bool installSeccompProfile = false)
    {
        fs = new HostFileSystem(hostRoot);
        // Only the agent serving the operator installs it, and only where a kubelet keeps its root dir (the DaemonSet
        // mounts it, so it is there on every node): `once` and host roots without a kubelet get no profile.
        var seccompProfilePath = installSeccompProfile && fs.Exists(kubeletRootDir) ? DataPlaneSeccompProfile.HostPath(kubeletRootDir) : null;
        IChannelControl channels = backend == ChannelBackend.Fixture ? new SimulatedChannelControl(fs) : new EthtoolChannelControl();
        return new TuningEngine(fs, channels, new JournalStore(journalDir), planOnly)
        {
            TuneOwnNetNamespace = netNamespace == NetNamespaceMode.Own,
            Connectivity = connectivity,
            ConnectivityBound = connectivityBound ?? TimeSpan.FromSeconds(60),
            KubeletRootDir = kubeletRootDir,
            SeccompProfilePath = seccompProfilePath,
        };
    }
}
