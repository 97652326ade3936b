using System.CommandLine;
using System.Runtime.InteropServices;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using NetTune.Operator;
using Prometheus;

static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

var kubeconfig = new Option<string?>("--kubeconfig")
{
    Description = "Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account",
    DefaultValueFactory = _ => Env("KUBECONFIG"),
};
var ns = new Option<string>("--namespace")
{
    Description = "Namespace of the agent DaemonSet, the data-plane pods and the leader Lease ($NETTUNE_NAMESPACE)",
    DefaultValueFactory = _ => Env("NETTUNE_NAMESPACE") ?? Env("POD_NAMESPACE") ?? "nettune-system",
};
var agentImage = new Option<string>("--agent-image")
{
    Description = "Container image of the node agent ($NETTUNE_AGENT_IMAGE)",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_IMAGE") ?? "nettune/agent:latest",
};
var metricsPort = new Option<int>("--metrics-port")
{
    Description = "Port of /metrics, /healthz and /readyz ($NETTUNE_METRICS_PORT); 0 disables",
    DefaultValueFactory = _ => int.TryParse(Env("NETTUNE_METRICS_PORT"), out var p) ? p : 8080,
};
var leaderElect = new Option<bool>("--leader-elect")
{
    Description = "Run only while holding the Lease, so replicas take turns ($NETTUNE_LEADER_ELECT)",
    DefaultValueFactory = _ => Env("NETTUNE_LEADER_ELECT") is "true" or "1",
};
var leaseName = new Option<string>("--lease-name")
{
    Description = "Name of the coordination.k8s.io/v1 Lease ($NETTUNE_LEASE_NAME)",
    DefaultValueFactory = _ => Env("NETTUNE_LEASE_NAME") ?? "nettune-operator",
};
var identity = new Option<string>("--identity")
{
    Description = "This replica's name in the Lease ($POD_NAME)",
    DefaultValueFactory = _ => Env("POD_NAME") ?? $"{Environment.MachineName}-{Environment.ProcessId}",
};
var leaseDuration = new Option<double>("--lease-duration-seconds") { DefaultValueFactory = _ => 15, Description = "Lease duration" };
var renewDeadline = new Option<double>("--renew-deadline-seconds") { DefaultValueFactory = _ => 10, Description = "Renew deadline" };
var retryPeriod = new Option<double>("--retry-period-seconds") { DefaultValueFactory = _ => 2, Description = "Lease retry period" };
var revertTimeout = new Option<double>("--revert-timeout-seconds")
{
    Description = "How long a deleted NetworkTuning waits for its nodes to report Reverted",
    DefaultValueFactory = _ => 300,
};
var resync = new Option<double>("--resync-seconds") { DefaultValueFactory = _ => 300, Description = "Reconcile every NetworkTuning at least this often" };
var workers = new Option<int>("--workers") { DefaultValueFactory = _ => 2, Description = "Concurrent reconciles" };
var dataPlaneMemory = new Option<string>("--dataplane-memory") { DefaultValueFactory = _ => "512Mi", Description = "Memory request and limit of each data-plane pod" };
var podGrace = new Option<int?>("--pod-delete-grace-seconds") { Description = "Grace period for deleted data-plane pods (default: the pod's own)" };
var pingSeconds = new Option<double>("--http2-ping-seconds")
{
    Description = "Ping the API server connection after this many idle seconds and drop it when the answer takes as long",
    DefaultValueFactory = _ => 15,
};
var logFormat = new Option<string>("--log-format") { DefaultValueFactory = _ => Env("NETTUNE_LOG_FORMAT") ?? "json", Description = "json or text" };

var root = new RootCommand("NetTune operator: reconciles NetworkTuning objects into the agent DaemonSet, per-node NodeStates and data-plane pods")
{
    kubeconfig, ns, agentImage, metricsPort, leaderElect, leaseName, identity, leaseDuration, renewDeadline, retryPeriod,
    revertTimeout, resync, workers, dataPlaneMemory, podGrace, pingSeconds, logFormat,
};

root.SetAction(async (parsed, invocationToken) =>
{
    // SIGTERM (and SIGINT) end the wait below; the web host's own lifetime would otherwise swallow the signal.
    using var stop = CancellationTokenSource.CreateLinkedTokenSource(invocationToken);
    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
    var ct = stop.Token;
    using var loggers = LoggerFactory.Create(b =>
    {
        if (parsed.GetValue(logFormat) == "text") b.AddSimpleConsole(o => o.SingleLine = true);
        else b.AddJsonConsole(o => o.IncludeScopes = false);
        b.SetMinimumLevel(LogLevel.Information);
    });
    var log = loggers.CreateLogger("main");
    KubernetesClientConfiguration config;
    try
    {
        var path = parsed.GetValue(kubeconfig);
        config = path is not null ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path)
            : KubernetesClientConfiguration.IsInCluster() ? KubernetesClientConfiguration.InClusterConfig()
            : KubernetesClientConfiguration.BuildConfigFromConfigFile();
    }
    catch (Exception e)
    {
        log.LogCritical("no usable cluster configuration: {Error}", e.Message);
        return 2;
    }

    config.WithKeepAlivePings(TimeSpan.FromSeconds(parsed.GetValue(pingSeconds)), TimeSpan.FromSeconds(parsed.GetValue(pingSeconds)));
    var metrics = new OperatorMetrics();
    using var client = new Kubernetes(config, new CountingHandler(metrics.ApiRequests));
    var options = new OperatorOptions
    {
        Namespace = parsed.GetValue(ns)!,
        AgentImage = parsed.GetValue(agentImage)!,
        LeaderElect = parsed.GetValue(leaderElect),
        LeaseName = parsed.GetValue(leaseName)!,
        Identity = parsed.GetValue(identity)!,
        LeaseDuration = TimeSpan.FromSeconds(parsed.GetValue(leaseDuration)),
        RenewDeadline = TimeSpan.FromSeconds(parsed.GetValue(renewDeadline)),
        RetryPeriod = TimeSpan.FromSeconds(parsed.GetValue(retryPeriod)),
        RevertTimeout = TimeSpan.FromSeconds(parsed.GetValue(revertTimeout)),
        ResyncPeriod = TimeSpan.FromSeconds(parsed.GetValue(resync)),
        Workers = parsed.GetValue(workers),
        DataPlaneMemory = parsed.GetValue(dataPlaneMemory)!,
        PodDeleteGraceSeconds = parsed.GetValue(podGrace),
    };
    await using var host = new OperatorHost(client, options, loggers, metrics);

    WebApplication? web = null;
    var port = parsed.GetValue(metricsPort);
    if (port > 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.ListenAnyIP(port));
        web = builder.Build();
        web.MapGet("/metrics", async (HttpContext http) =>
        {
            http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(http.Response.Body, http.RequestAborted);
        });
        web.MapGet("/healthz", () => Results.Text("ok"));
        web.MapGet("/readyz", () => host.IsReady ? Results.Text("ok") : Results.Text("caches not synced", statusCode: 503));
        await web.StartAsync(CancellationToken.None);
        log.LogInformation("serving /metrics, /healthz and /readyz on port {Port}", port);
    }

    await host.StartAsync(CancellationToken.None);
    log.LogInformation("operator {Identity} started (namespace {Namespace}, leader election {LeaderElect})", options.Identity, options.Namespace, options.LeaderElect);
    try { await Task.Delay(Timeout.Infinite, ct); }
    catch (OperationCanceledException) { }
    // SIGTERM: stop taking work, let running reconciles finish, then close the endpoints.
    log.LogInformation("shutting down");
    await host.StopAsync();
    if (web is not null) await web.StopAsync(CancellationToken.None);
    return 0;
});

return await root.Parse(args).InvokeAsync();
