using System.CommandLine;
using k8s;
using Microsoft.Extensions.Logging;
using NetTune.Agent;
using NetTune.Agent.Core.Apply;
using Prometheus;

var hostRoot = new Option<string>("--host-root") { Description = "Folder the host's /sys and /proc are under (/host in the DaemonSet).", DefaultValueFactory = _ => "/" };
var nodeName = new Option<string?>("--node-name") { Description = "This node's name; defaults to $NODE_NAME." };
var journalDir = new Option<string>("--journal-dir") { Description = "Host folder of the durable journal of original values.", DefaultValueFactory = _ => "/var/lib/nettune" };
var kubeconfig = new Option<string?>("--kubeconfig") { Description = "Kubeconfig file; in-cluster configuration when absent." };
var metricsPort = new Option<int>("--metrics-port") { Description = "Port of /metrics and /healthz (0 picks a free one).", DefaultValueFactory = _ => 9101 };
var driftInterval = new Option<string>("--drift-interval") { Description = "How often to look for knobs changed by others: 30s, 5m, …", DefaultValueFactory = _ => "30s" };
var logLevel = new Option<LogLevel>("--log-level")
{
    Description = "Minimum log level: Trace, Debug, Information, Warning, Error or Critical ($NETTUNE_LOG_LEVEL).",
    DefaultValueFactory = _ => Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("NETTUNE_LOG_LEVEL"), ignoreCase: true, out var l) ? l : LogLevel.Information,
};
var planOnlyAgent = new Option<bool>("--plan-only")
{
    Description = "Never write to the host, whatever the NodeState says: plans are published with reason DryRun and a revert is refused.",
};
var netNamespace = new Option<NetNamespaceMode>("--net-namespace")
{
    Description = "Host: write net sysctls only when the agent's network namespace is the host's (checked at every run); Own: into whatever namespace the agent runs in (ip netns exec).",
    DefaultValueFactory = _ => NetNamespaceMode.Host,
};
var kubeletRestart = new Option<string?>("--kubelet-restart-command")
{
    Description = "Command (split on spaces, no shell) that restarts this node's kubelet when its capacity lacks hugepages the agent reserved, e.g. 'nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet'. Run once per change of the pools. Without it the agent only reports KubeletRestartRequired.",
};
var kubeletRestartRequestFile = new Option<string?>("--kubelet-restart-request-file")
{
    Description = "File (on a host folder the agent mounts) the agent writes a request to when the kubelet must restart to show hugepages the agent reserved, for a host-side watcher such as a systemd path unit. Ignored when --kubelet-restart-command is given.",
};
var kubeletRestartTimeout = new Option<string>("--kubelet-restart-timeout") { Description = "How long the node's capacity may take to show the hugepages after the restart command or request.", DefaultValueFactory = _ => "2m" };
var connectivityTimeout = new Option<string>("--connectivity-timeout")
{
    Description = "How long the API server may stay unreachable after NIC changes before the agent rolls them back from its journal; 0 disables the check.",
    DefaultValueFactory = _ => "60s",
};
var orphanGrace = new Option<string>("--orphan-revert-after")
{
    Description = "How long the journal may hold changes while this node has no NetworkTuningNodeState (deleted, or its Node deleted with it) before the agent reverts them from the journal; 0 never does.",
    DefaultValueFactory = _ => "10m",
};
var kubeletRootDir = new Option<string>("--kubelet-root-dir")
{
    Description = "The kubelet's root dir on the host (its --root-dir), read under --host-root: its cpu_manager_state tells which CPUs the static CPU manager gave containers exclusively; interrupts, RPS and XPS stay off them. NetTune's seccomp profile for the data-plane pods goes into its seccomp folder with every apply and is removed by the revert.",
    DefaultValueFactory = _ => "/var/lib/kubelet",
};
var devicePluginDir = new Option<string>("--device-plugin-dir")
{
    Description = "The kubelet's device-plugins folder on the host, read under --host-root (every kubelet uses /var/lib/kubelet/device-plugins, whatever its --root-dir). The agent's device plugin serves one extended resource per NUMA node there (nettune.io/numa-node-N, each device naming its NUMA node), through which a data-plane pod asks the Topology Manager for that node's CPUs, and registers it with the kubelet again after every kubelet restart. Empty: no device plugin.",
    DefaultValueFactory = _ => NetTune.Agent.Core.DevicePlugin.NumaDevicePlan.DefaultDirectory,
};
var channelBackend = new Option<ChannelBackend>("--channel-backend") { Description = "Ethtool (SIOCETHTOOL) on a real host; Fixture for fixture host roots.", DefaultValueFactory = _ => ChannelBackend.Ethtool };

var root = new RootCommand("NetTune node agent: discovers the node's NUMA/NIC topology and applies its NetworkTuningNodeState.")
{
    hostRoot, nodeName, journalDir, kubeconfig, metricsPort, driftInterval, channelBackend, logLevel, planOnlyAgent, netNamespace, kubeletRestart, kubeletRestartRequestFile, kubeletRestartTimeout, connectivityTimeout, orphanGrace, kubeletRootDir, devicePluginDir,
};
root.SetAction(async (parse, ct) =>
{
    var node = parse.GetValue(nodeName) ?? Environment.GetEnvironmentVariable("NODE_NAME");
    if (string.IsNullOrWhiteSpace(node))
    {
        Console.Error.WriteLine("the node name is required: --node-name or NODE_NAME");
        return 2;
    }
    if (!DurationParser.TryParse(parse.GetValue(driftInterval), out var drift))
    {
        Console.Error.WriteLine($"--drift-interval '{parse.GetValue(driftInterval)}' is not a duration such as 30s");
        return 2;
    }
    if (!DurationParser.TryParse(parse.GetValue(kubeletRestartTimeout), out var restartTimeout))
    {
        Console.Error.WriteLine($"--kubelet-restart-timeout '{parse.GetValue(kubeletRestartTimeout)}' is not a duration such as 2m");
        return 2;
    }
    var connectivityText = parse.GetValue(connectivityTimeout);
    var connectivity = TimeSpan.Zero;
    if (connectivityText != "0" && !DurationParser.TryParse(connectivityText, out connectivity))
    {
        Console.Error.WriteLine($"--connectivity-timeout '{connectivityText}' is not a duration such as 60s (or 0)");
        return 2;
    }
    var orphanText = parse.GetValue(orphanGrace);
    var orphan = TimeSpan.Zero;
    if (orphanText != "0" && !DurationParser.TryParse(orphanText, out orphan))
    {
        Console.Error.WriteLine($"--orphan-revert-after '{orphanText}' is not a duration such as 10m (or 0)");
        return 2;
    }
    var options = new AgentOptions
    {
        HostRoot = parse.GetValue(hostRoot)!,
        NodeName = node,
        JournalDir = parse.GetValue(journalDir)!,
        Kubeconfig = parse.GetValue(kubeconfig),
        MetricsPort = parse.GetValue(metricsPort),
        DriftInterval = drift,
        ChannelBackend = parse.GetValue(channelBackend),
        LogLevel = parse.GetValue(logLevel),
        PlanOnly = parse.GetValue(planOnlyAgent),
        NetNamespace = parse.GetValue(netNamespace),
        KubeletRestartCommand = parse.GetValue(kubeletRestart),
        KubeletRestartRequestFile = parse.GetValue(kubeletRestartRequestFile),
        KubeletRestartTimeout = restartTimeout,
        ConnectivityTimeout = connectivity,
        OrphanGrace = orphan,
        KubeletRootDir = parse.GetValue(kubeletRootDir)!,
        DevicePluginDir = parse.GetValue(devicePluginDir) ?? "",
    };
    return await AgentHost.RunAsync(options, ct);
});

var spec = new Option<string?>("--spec") { Description = "A NodeStateSpec as JSON." };
var revert = new Option<bool>("--revert") { Description = "Restore the journaled originals instead of applying." };
var planOnly = new Option<bool>("--plan-only") { Description = "Print the plan and change nothing." };
var once = new Command("once", "Apply a spec file (or revert) once without Kubernetes and print the report as JSON.")
{
    hostRoot, journalDir, channelBackend, spec, revert, planOnly, netNamespace,
};
once.SetAction(parse => OnceCommand.Run(parse.GetValue(hostRoot)!, parse.GetValue(journalDir)!, parse.GetValue(channelBackend),
    parse.GetValue(spec), parse.GetValue(revert), parse.GetValue(planOnly), parse.GetValue(netNamespace)));
root.Add(once);

var count = new Option<int>("--count") { Description = "Exit after this many notifications.", DefaultValueFactory = _ => 1 };
var timeout = new Option<int>("--timeout-seconds") { Description = "Exit with 1 when they have not come by then.", DefaultValueFactory = _ => 30 };
var monitor = new Command("monitor", "Print ethtool netlink notifications (one JSON object per line) in this network namespace.") { count, timeout };
monitor.SetAction(parse => MonitorCommand.Run(parse.GetValue(count), TimeSpan.FromSeconds(parse.GetValue(timeout))));
root.Add(monitor);

return await root.Parse(args).InvokeAsync();

namespace NetTune.Agent
{
    public static class AgentHost
    {
        /// <summary>
        /// The options of the agent's web hosts (metrics and health, device plugin). The agent reads no appsettings.json,
        /// and the hosts' default reload of configuration files would watch the working directory and everything under it
        /// with inotify: a thread, and a wake-up for every change in that tree (measured: 287 wake-ups per second at rest
        /// with /tmp as the working directory).
        /// </summary>
        public static WebApplicationOptions WebOptions => new() { Args = ["--hostBuilder:reloadConfigOnChange=false"] };

        public static async Task<int> RunAsync(AgentOptions options, CancellationToken ct)
        {
            var builder = WebApplication.CreateSlimBuilder(WebOptions);
            builder.Logging.ClearProviders();
            builder.Logging.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ");
            builder.Logging.SetMinimumLevel(options.LogLevel);
            // Kestrel logs every kubelet probe and scrape at Information; only its warnings are worth a line.
            builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
            builder.WebHost.UseKestrel(k => k.ListenAnyIP(options.MetricsPort));
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(25));

            var config = options.Kubeconfig is { } path
                ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path)
                : KubernetesClientConfiguration.InClusterConfig();
            var registry = Metrics.NewCustomRegistry();
            var metrics = new AgentMetrics(registry);
            var kubernetes = new Kubernetes(config);
            var engine = EngineFactory.Create(options.HostRoot, options.JournalDir, options.ChannelBackend, out var hostFs, options.PlanOnly, options.NetNamespace,
                options.ConnectivityTimeout > TimeSpan.Zero ? new ApiServerReachability(kubernetes) : null, options.ConnectivityTimeout, options.KubeletRootDir,
                installSeccompProfile: true);
            builder.Services.AddSingleton(options);
            builder.Services.AddSingleton(new NodeStateClient(kubernetes, options.NodeName));
            builder.Services.AddSingleton(engine);
            builder.Services.AddSingleton(metrics);
            // The loop wakes at least every drift interval; three missed wake-ups (and at least two minutes) mean it is stuck.
            builder.Services.AddSingleton(new AgentHealth(TimeSpan.FromTicks(Math.Max(options.DriftInterval.Ticks * 3, TimeSpan.FromMinutes(2).Ticks))));
            builder.Services.AddHostedService<AgentWorker>();
            if (options.DevicePluginDir.Length > 0) builder.Services.AddHostedService<NetTune.Agent.DevicePlugin.NumaDevicePlugin>();

            var app = builder.Build();
            app.MapMetrics("/metrics", registry);
            app.MapGet("/healthz", (AgentHealth health) => health.Stuck
                ? Results.Text($"stuck: no reconcile since {health.LastBeat:O}\n", statusCode: 503)
                : Results.Text(health.LastError is null ? "ok\n" : $"ok (last reconcile failed: {health.LastError})\n"));
            metrics.Observe(engine.Discover());
            registry.AddBeforeCollectCallback(() => metrics.ObserveInterrupts(hostFs.Read("proc/interrupts").Text));
            await app.RunAsync(ct);
            return 0;
        }
    }
}
