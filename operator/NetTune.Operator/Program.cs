using System.CommandLine;
using System.Runtime.InteropServices;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using NetTune.Operator;
using NetTune.Operator.Admission;
using NetTune.Operator.Core.Builders;
using Prometheus;

static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

var kubeconfig = new Option<string?>("--kubeconfig")
{
    Description = "Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account",
    DefaultValueFactory = _ => Env("KUBECONFIG"),
};
var ns = new Option<string>("--namespace")
{
    Description = "The operator's namespace: its leader Lease and webhook certificate Secret; also the node components' unless --node-namespace is given ($NETTUNE_NAMESPACE)",
    DefaultValueFactory = _ => Env("NETTUNE_NAMESPACE") ?? Env("POD_NAMESPACE") ?? "nettune-system",
};
var nodeNamespace = new Option<string?>("--node-namespace")
{
    Description = "Namespace of the agent DaemonSet and the data-plane pods, which need the Pod Security level privileged (host network, host paths, a privileged agent); default: --namespace ($NETTUNE_NODE_NAMESPACE)",
    DefaultValueFactory = _ => Env("NETTUNE_NODE_NAMESPACE"),
};
var agentImage = new Option<string>("--agent-image")
{
    Description = "Container image of the node agent ($NETTUNE_AGENT_IMAGE)",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_IMAGE") ?? "nettune/agent:latest",
};
var imagePullSecrets = new Option<string?>("--image-pull-secrets")
{
    Description = "Comma-separated Secrets in the namespace that the agent and data-plane pods pull their images with ($NETTUNE_IMAGE_PULL_SECRETS)",
    DefaultValueFactory = _ => Env("NETTUNE_IMAGE_PULL_SECRETS"),
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
var dataPlaneCpuMargin = new Option<string>("--dataplane-cpu-margin")
{
    DefaultValueFactory = _ => "500m",
    Description = "CPU the data-plane pods leave unrequested on a node when they are sized from its allocatable CPU less its other pods' requests",
};
var dataPlaneCpuRecheck = new Option<double>("--dataplane-cpu-recheck-seconds")
{
    DefaultValueFactory = _ => 30,
    Description = "How soon a tuning whose data-plane pod found no CPU left beside its node's other pods is looked at again",
};
var dataPlaneNodeLabel = new Option<string>("--dataplane-node-label")
{
    DefaultValueFactory = _ => Env("NETTUNE_DATAPLANE_NODE_LABEL") ?? Names.NodeTunedLabel,
    Description = "Node label the data-plane pods require (Exists): the agent's 'tuned for this boot' label; empty: none",
};
var podGrace = new Option<int?>("--pod-delete-grace-seconds") { Description = "Grace period for deleted data-plane pods (default: the pod's own)" };
var pingSeconds = new Option<double>("--http2-ping-seconds")
{
    Description = "Ping the API server connection after this many idle seconds and drop it when the answer takes as long",
    DefaultValueFactory = _ => 15,
};
var logFormat = new Option<string>("--log-format") { DefaultValueFactory = _ => Env("NETTUNE_LOG_FORMAT") ?? "json", Description = "json or text" };
var logLevel = new Option<string>("--log-level")
{
    Description = "Minimum log level: Trace, Debug, Information, Warning, Error or Critical ($NETTUNE_LOG_LEVEL)",
    DefaultValueFactory = _ => Env("NETTUNE_LOG_LEVEL") ?? "Information",
};
var eventNamespace = new Option<string>("--event-namespace")
{
    Description = "Namespace the Events about NetworkTunings are written in ($NETTUNE_EVENT_NAMESPACE); the API server takes events about cluster-scoped objects only in default",
    DefaultValueFactory = _ => Env("NETTUNE_EVENT_NAMESPACE") ?? "default",
};
var agentLogLevel = new Option<string?>("--agent-log-level")
{
    Description = "The agents' --log-level ($NETTUNE_AGENT_LOG_LEVEL); default: the agent's own",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_LOG_LEVEL"),
};
var agentMetricsPort = new Option<int>("--agent-metrics-port")
{
    Description = "Port of the agents' /metrics and /healthz on each node's host network ($NETTUNE_AGENT_METRICS_PORT)",
    DefaultValueFactory = _ => int.TryParse(Env("NETTUNE_AGENT_METRICS_PORT"), out var p) ? p : 9101,
};
var agentResources = new Option<string?>("--agent-resources")
{
    Description = "The agent container's resources as JSON, e.g. '{\"requests\":{\"cpu\":\"20m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"256Mi\"}}' ($NETTUNE_AGENT_RESOURCES)",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_RESOURCES"),
};
var agentTolerations = new Option<string?>("--agent-tolerations")
{
    Description = "The agent pods' tolerations as a JSON list ($NETTUNE_AGENT_TOLERATIONS); default: every taint ([{\"operator\":\"Exists\"}])",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_TOLERATIONS"),
};
var agentKubeletRestart = new Option<string>("--agent-kubelet-restart")
{
    Description = "How agents get their kubelet restarted when it does not show hugepages they reserved ($NETTUNE_AGENT_KUBELET_RESTART): none (report KubeletRestartRequired only), request-file (write kubelet-restart-request in the agent's host folder /var/lib/nettune for a host-side watcher) or command:COMMAND (run in the agent pod, which then gets the host's PID namespace)",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_KUBELET_RESTART") ?? "none",
};
var agentKubeletRootDir = new Option<string>("--agent-kubelet-root-dir")
{
    Description = "The kubelet's root dir on the nodes (its --root-dir), mounted read-only into the agents for its CPU manager checkpoint: interrupts, RPS and XPS stay off CPUs it gave containers exclusively; its seccomp folder is mounted read-write, for NetTune's seccomp profile for the data-plane pods ($NETTUNE_AGENT_KUBELET_ROOT_DIR)",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_KUBELET_ROOT_DIR") ?? NetTune.Api.V1Alpha1.SeccompProfiles.DefaultKubeletRootDir,
};
var agentNodeSelector = new Option<string?>("--agent-node-selector")
{
    Description = "Labels every agent node must have, as a JSON object, on top of the tunings' selectors ($NETTUNE_AGENT_NODE_SELECTOR)",
    DefaultValueFactory = _ => Env("NETTUNE_AGENT_NODE_SELECTOR"),
};

var webhookPort = new Option<int>("--webhook-port")
{
    Description = "HTTPS port of the admission webhooks ($NETTUNE_WEBHOOK_PORT); 0 disables",
    DefaultValueFactory = _ => int.TryParse(Env("NETTUNE_WEBHOOK_PORT"), out var p) ? p : 0,
};
var webhookCertDir = new Option<string>("--webhook-cert-dir")
{
    Description = "Without --webhook-cert-secret: folder with the webhooks' tls.crt and tls.key (e.g. cert-manager's Secret), read again when they change ($NETTUNE_WEBHOOK_CERT_DIR)",
    DefaultValueFactory = _ => Env("NETTUNE_WEBHOOK_CERT_DIR") ?? "/etc/nettune/webhook",
};
var webhookCertSecret = new Option<string?>("--webhook-cert-secret")
{
    Description = "Secret in --namespace in which the operator keeps its own webhook CA and serving certificate, renewing them and the webhook configurations' caBundle ($NETTUNE_WEBHOOK_CERT_SECRET); it must exist (the chart makes it empty); unset: read --webhook-cert-dir",
    DefaultValueFactory = _ => Env("NETTUNE_WEBHOOK_CERT_SECRET"),
};
var webhookConfigurations = new Option<string?>("--webhook-configurations")
{
    Description = "Comma-separated ValidatingWebhookConfigurations whose caBundle the operator keeps with --webhook-cert-secret ($NETTUNE_WEBHOOK_CONFIGURATIONS)",
    DefaultValueFactory = _ => Env("NETTUNE_WEBHOOK_CONFIGURATIONS"),
};
var webhookCertHosts = new Option<string?>("--webhook-cert-hosts")
{
    Description = "Comma-separated DNS names (the webhook Service's) or IP addresses of the serving certificate with --webhook-cert-secret ($NETTUNE_WEBHOOK_CERT_HOSTS)",
    DefaultValueFactory = _ => Env("NETTUNE_WEBHOOK_CERT_HOSTS"),
};
var webhookCertValidity = new Option<double>("--webhook-cert-validity-seconds") { DefaultValueFactory = _ => TimeSpan.FromDays(90).TotalSeconds, Description = "Lifetime of a serving certificate the operator makes" };
var webhookCertRenewBefore = new Option<double>("--webhook-cert-renew-before-seconds") { DefaultValueFactory = _ => TimeSpan.FromDays(30).TotalSeconds, Description = "Renew the serving certificate when it has less than this left" };
var webhookCaValidity = new Option<double>("--webhook-ca-validity-seconds")
{
    DefaultValueFactory = _ => TimeSpan.FromDays(365).TotalSeconds,
    Description = "Lifetime of the webhook CA; it is replaced (old and new trusted side by side) when it can no longer sign a full serving certificate",
};
var webhookCertCheck = new Option<double>("--webhook-cert-check-seconds") { DefaultValueFactory = _ => 60, Description = "How often every replica reads the certificate Secret (and the leader renews)" };
// The allow-lists: an empty value allows nothing; "*" (or "/" for folders) allows anything and is the default only
// where an unset flag has always meant it (images, folders). The chart always passes them, empty ones as `--flag=`,
// which the parser would take for a missing argument: an empty value is a value here.
static Option<string> AllowList(string name, string description, Func<string> unset) => new(name)
{
    Description = description,
    Arity = ArgumentArity.ZeroOrOne,
    CustomParser = result => result.Tokens.Count == 0 ? "" : result.Tokens[0].Value,
    DefaultValueFactory = _ => unset(),
};
var allowedImages = AllowList("--dataplane-allowed-images",
    "Comma-separated image patterns ('*' matches anything) a NetworkTuning's data plane may use ($NETTUNE_DATAPLANE_ALLOWED_IMAGES); empty: none; default: *",
    () => Env("NETTUNE_DATAPLANE_ALLOWED_IMAGES") ?? DataPlanePolicy.AnyValue);
var allowedHostPaths = AllowList("--dataplane-allowed-host-paths",
    "Comma-separated absolute folders below which a data plane may serve staticFiles.hostPath ($NETTUNE_DATAPLANE_ALLOWED_HOST_PATHS); empty: none; default: /",
    () => Env("NETTUNE_DATAPLANE_ALLOWED_HOST_PATHS") ?? "/");
var allowedPriorityClasses = AllowList("--dataplane-allowed-priority-classes",
    "Comma-separated PriorityClass names (patterns, '*' for any) spec.dataPlane.priorityClassName may name ($NETTUNE_DATAPLANE_ALLOWED_PRIORITY_CLASSES); default: none",
    () => Env("NETTUNE_DATAPLANE_ALLOWED_PRIORITY_CLASSES") ?? "");
var allowedUpstreamNetworks = AllowList("--dataplane-allowed-upstream-networks",
    "Comma-separated CIDRs ('*' for any) where proxy upstreams may be although loopback, link-local or unspecified ($NETTUNE_DATAPLANE_ALLOWED_UPSTREAM_NETWORKS); default: none",
    () => Env("NETTUNE_DATAPLANE_ALLOWED_UPSTREAM_NETWORKS") ?? "");

var root = new RootCommand("NetTune operator: reconciles NetworkTuning objects into the agent DaemonSet, per-node NodeStates and data-plane pods")
{
    kubeconfig, ns, nodeNamespace, agentImage, imagePullSecrets, metricsPort, leaderElect, leaseName, identity, leaseDuration, renewDeadline, retryPeriod,
    revertTimeout, resync, workers, dataPlaneMemory, dataPlaneCpuMargin, dataPlaneCpuRecheck, dataPlaneNodeLabel, podGrace, pingSeconds, logFormat, logLevel, eventNamespace,
    agentLogLevel, agentMetricsPort, agentResources, agentTolerations, agentNodeSelector, agentKubeletRestart, agentKubeletRootDir, webhookPort, webhookCertDir,
    webhookCertSecret, webhookConfigurations, webhookCertHosts, webhookCertValidity, webhookCertRenewBefore, webhookCaValidity, webhookCertCheck,
    allowedImages, allowedHostPaths, allowedPriorityClasses, allowedUpstreamNetworks,
};

root.SetAction(async (parsed, invocationToken) =>
{
    // SIGTERM (and SIGINT) end the wait below; the web host's own lifetime would otherwise swallow the signal.
    using var stop = CancellationTokenSource.CreateLinkedTokenSource(invocationToken);
    using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
    using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
    var ct = stop.Token;
    var settingErrors = new List<string>();
    if (!AgentSettingsParser.TryParseLogLevel(parsed.GetValue(logLevel)!, out var level, out var levelError)) settingErrors.Add("--log-level: " + levelError);
    var agent = new AgentOptions("", "", MetricsPort: parsed.GetValue(agentMetricsPort));
    if (agent.MetricsPort is < 1 or > 65535) settingErrors.Add($"--agent-metrics-port: {agent.MetricsPort} is not a port");
    if (parsed.GetValue(agentLogLevel) is { } agentLevelText)
    {
        if (AgentSettingsParser.TryParseLogLevel(agentLevelText, out var agentLevel, out var e)) agent = agent with { LogLevel = agentLevel };
        else settingErrors.Add("--agent-log-level: " + e);
    }
    if (parsed.GetValue(agentResources) is { } resourcesJson)
    {
        if (AgentSettingsParser.TryParseResources(resourcesJson, out var r, out var e)) agent = agent with { Resources = r };
        else settingErrors.Add("--agent-resources: " + e);
    }
    if (parsed.GetValue(agentTolerations) is { } tolerationsJson)
    {
        if (AgentSettingsParser.TryParseTolerations(tolerationsJson, out var t, out var e)) agent = agent with { Tolerations = t };
        else settingErrors.Add("--agent-tolerations: " + e);
    }
    if (parsed.GetValue(agentNodeSelector) is { } selectorJson)
    {
        if (AgentSettingsParser.TryParseNodeSelector(selectorJson, out var n, out var e)) agent = agent with { NodeSelector = n };
        else settingErrors.Add("--agent-node-selector: " + e);
    }
    if (parsed.GetValue(agentKubeletRootDir) is { } kubeletRoot && AgentSettingsParser.IsHostDirectory(kubeletRoot)) agent = agent with { KubeletRootDir = kubeletRoot };
    else settingErrors.Add($"--agent-kubelet-root-dir: '{parsed.GetValue(agentKubeletRootDir)}' is not an absolute folder such as /var/lib/kubelet");
    if (KubeletRestart.TryParse(parsed.GetValue(agentKubeletRestart)!, out var restart, out var restartError)) agent = agent with { KubeletRestart = restart };
    else settingErrors.Add("--agent-kubelet-restart: " + restartError);
    // The API server accepts Events about cluster-scoped objects (every NetworkTuning) only in namespace default:
    // anywhere else each one is refused with 422 "involvedObject.namespace does not match event.namespace".
    if (parsed.GetValue(eventNamespace) is { } events && events != "default")
        settingErrors.Add($"--event-namespace: '{events}': the API server accepts Events about cluster-scoped objects such as NetworkTuning only in namespace default");
    static List<string> Split(string? list) => [.. (list ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    var policy = new DataPlanePolicy(Split(parsed.GetValue(allowedImages)), Split(parsed.GetValue(allowedHostPaths)),
        Split(parsed.GetValue(allowedPriorityClasses)), Split(parsed.GetValue(allowedUpstreamNetworks)));
    var pullSecrets = Split(parsed.GetValue(imagePullSecrets));
    settingErrors.AddRange(pullSecrets.Select(PullSecrets.Problem).OfType<string>().Select(p => "--image-pull-secrets: " + p));
    foreach (var path in policy.HostPaths.Where(p => !p.StartsWith('/')))
        settingErrors.Add($"--dataplane-allowed-host-paths: '{path}' is not an absolute path");
    foreach (var network in policy.UpstreamNetworks.Where(n => n != DataPlanePolicy.AnyValue && !System.Net.IPNetwork.TryParse(n, out _)))
        settingErrors.Add($"--dataplane-allowed-upstream-networks: '{network}' is not a CIDR such as 10.0.0.0/8 (or * for any)");
    var cpuMargin = CpuMillis(parsed.GetValue(dataPlaneCpuMargin));
    if (cpuMargin is null) settingErrors.Add($"--dataplane-cpu-margin: '{parsed.GetValue(dataPlaneCpuMargin)}' is not a CPU quantity such as 500m or 1");
    if (parsed.GetValue(dataPlaneCpuRecheck) is <= 0 or > 86400) settingErrors.Add($"--dataplane-cpu-recheck-seconds: {parsed.GetValue(dataPlaneCpuRecheck)} is not between 0 and 86400");
    if (parsed.GetValue(webhookPort) is < 0 or > 65535) settingErrors.Add($"--webhook-port: {parsed.GetValue(webhookPort)} is not a port");
    var certPolicy = new CertificatePolicy(TimeSpan.FromSeconds(parsed.GetValue(webhookCertValidity)), TimeSpan.FromSeconds(parsed.GetValue(webhookCertRenewBefore)),
        TimeSpan.FromSeconds(parsed.GetValue(webhookCaValidity)), Split(parsed.GetValue(webhookCertHosts)));
    var certCheck = TimeSpan.FromSeconds(parsed.GetValue(webhookCertCheck));
    if (parsed.GetValue(webhookPort) > 0 && parsed.GetValue(webhookCertSecret) is { Length: > 0 })
    {
        settingErrors.AddRange(certPolicy.Problems(certCheck).Select(p => "--webhook-cert-*: " + p));
        if (Split(parsed.GetValue(webhookConfigurations)).Count == 0)
            settingErrors.Add("--webhook-configurations: --webhook-cert-secret needs the webhook configurations whose caBundle to keep");
    }
    if (settingErrors.Count > 0)
    {
        foreach (var error in settingErrors) Console.Error.WriteLine(error);
        return 2;
    }
    using var loggers = LoggerFactory.Create(b =>
    {
        if (parsed.GetValue(logFormat) == "text") b.AddSimpleConsole(o => o.SingleLine = true);
        else b.AddJsonConsole(o => o.IncludeScopes = false);
        b.SetMinimumLevel(Enum.Parse<LogLevel>(level));
    });
    var log = loggers.CreateLogger("main");
    KubernetesClientConfiguration config;
    try
    {
        config = ClientConfig(parsed.GetValue(kubeconfig));
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
        NodeNamespace = parsed.GetValue(nodeNamespace) is { Length: > 0 } nodes ? nodes : null,
        AgentImage = parsed.GetValue(agentImage)!,
        ImagePullSecrets = pullSecrets,
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
        DataPlaneCpuMarginMillis = cpuMargin!.Value,
        DataPlaneCpuRecheck = TimeSpan.FromSeconds(parsed.GetValue(dataPlaneCpuRecheck)),
        DataPlaneRequiredNodeLabel = parsed.GetValue(dataPlaneNodeLabel),
        PodDeleteGraceSeconds = parsed.GetValue(podGrace),
        EventNamespace = parsed.GetValue(eventNamespace)!,
        Agent = agent,
        DataPlanePolicy = policy,
    };
    await using var host = new OperatorHost(client, options, loggers, metrics);

    CertificateRotator? rotator = null;
    if (parsed.GetValue(webhookPort) > 0 && parsed.GetValue(webhookCertSecret) is { Length: > 0 } secretName)
        rotator = new CertificateRotator(client, options.Namespace, secretName, Split(parsed.GetValue(webhookConfigurations)), certPolicy, certCheck,
            () => host.IsLeader, loggers.CreateLogger("certificates"));

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
        // The webhook Service sends calls only to ready replicas: one without a certificate yet would fail them.
        web.MapGet("/readyz", () => !host.IsReady ? Results.Text("caches not synced", statusCode: 503)
            : rotator is { Loaded.IsCompleted: false } ? Results.Text("no webhook certificate yet", statusCode: 503)
            : Results.Text("ok"));
        await web.StartAsync(CancellationToken.None);
        log.LogInformation("serving /metrics, /healthz and /readyz on port {Port}", port);
    }

    WebhookServer? webhooks = null;
    if (parsed.GetValue(webhookPort) is > 0 and var hookPort)
    {
        Func<System.Security.Cryptography.X509Certificates.X509Certificate2?> certificate;
        if (rotator is not null) certificate = rotator.Current;
        else
        {
            var dir = parsed.GetValue(webhookCertDir)!;
            var files = new CertificateFiles(Path.Combine(dir, "tls.crt"), Path.Combine(dir, "tls.key"));
            try { files.Current(); }
            catch (Exception e)
            {
                log.LogCritical("no usable webhook certificate in {Dir}: {Error}", dir, e.Message);
                return 2;
            }
            certificate = files.Current;
        }
        webhooks = await WebhookServer.StartAsync(System.Net.IPAddress.Any, hookPort, certificate,
            new NodeStateAdmission(client, options.NodeComponentsNamespace), policy, loggers.CreateLogger("webhook"), new PortAdmission(client));
        log.LogInformation("serving the admission webhooks on port {Port}", hookPort);
    }

    await host.StartAsync(CancellationToken.None);
    using var stopRotator = new CancellationTokenSource();
    var rotating = rotator is null ? Task.CompletedTask : Task.Run(() => rotator.RunAsync(stopRotator.Token), CancellationToken.None);
    log.LogInformation("operator {Identity} started (namespace {Namespace}, node components in {NodeNamespace}, events in {EventNamespace}, leader election {LeaderElect})",
        options.Identity, options.Namespace, options.NodeComponentsNamespace, options.EventNamespace, options.LeaderElect);
    var signalled = Task.Delay(Timeout.Infinite, ct);
    if (await Task.WhenAny(signalled, host.LeadershipLost) == host.LeadershipLost)
    {
        // As controller-runtime does: a replica whose renewals failed may be partitioned with work in flight, so it
        // neither goes on nor campaigns again; the kubelet restarts it as a fresh candidate.
        log.LogCritical("leadership lost; exiting");
        await stopRotator.CancelAsync();
        await rotating;
        await host.StopAsync();
        if (web is not null) await web.StopAsync(CancellationToken.None);
        if (webhooks is not null) await webhooks.DisposeAsync();
        return 1;
    }
    // SIGTERM: stop taking work, let running reconciles finish, release the Lease, then close the endpoints.
    log.LogInformation("shutting down");
    await stopRotator.CancelAsync();
    await rotating;
    await host.StopAsync();
    if (web is not null) await web.StopAsync(CancellationToken.None);
    if (webhooks is not null) await webhooks.DisposeAsync();
    return 0;
});

var uninstallTimeout = new Option<double>("--timeout-seconds")
{
    Description = "How long to wait for every node to revert and NetTune's objects to go; then exit 1 naming what is left",
    DefaultValueFactory = _ => 600,
};
var uninstall = new Command("uninstall", "Delete every NetworkTuning and wait (bounded) until the nodes reverted and the agents and data-plane pods are gone; the chart's pre-delete hook")
{
    kubeconfig, ns, nodeNamespace, uninstallTimeout,
};
uninstall.SetAction(async (parsed, ct) =>
{
    using var client = HookClient(parsed.GetValue(kubeconfig));
    if (client is null) return 2;
    return await new Uninstaller(client, parsed.GetValue(nodeNamespace) is { Length: > 0 } nodes ? nodes : parsed.GetValue(ns)!, Console.Out).RunAsync(TimeSpan.FromSeconds(parsed.GetValue(uninstallTimeout)), ct);
});
root.Subcommands.Add(uninstall);

var crdDir = new Option<string>("--dir") { Description = "Folder of the CRD files (*.yaml) to apply", Required = true };
var crdTimeout = new Option<double>("--timeout-seconds") { DefaultValueFactory = _ => 120, Description = "Give up after this long" };
var applyCrds = new Command("apply-crds", "Replace (or create) NetTune's CRDs with the ones in --dir and wait until they are served; the chart's pre-upgrade hook")
{
    kubeconfig, crdDir, crdTimeout,
};
applyCrds.SetAction(async (parsed, ct) =>
{
    using var client = HookClient(parsed.GetValue(kubeconfig));
    if (client is null) return 2;
    return await new CrdUpgrader(client, Console.Out).RunAsync(parsed.GetValue(crdDir)!, TimeSpan.FromSeconds(parsed.GetValue(crdTimeout)), ct);
});
root.Subcommands.Add(applyCrds);

return await root.Parse(args).InvokeAsync();

// The kubeconfig given, else in-cluster, else the default one; throws when none is usable.
static KubernetesClientConfiguration ClientConfig(string? path) =>
    path is not null ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path)
        : KubernetesClientConfiguration.IsInCluster() ? KubernetesClientConfiguration.InClusterConfig()
        : KubernetesClientConfiguration.BuildConfigFromConfigFile();

// The hooks' client (uninstall, apply-crds): the kubeconfig given, else in-cluster, else the default one; null (said on
// stderr) when none is usable.
static Kubernetes? HookClient(string? path)
{
    try
    {
        return new Kubernetes(ClientConfig(path));
    }
    catch (Exception e)
    {
        Console.Error.WriteLine($"no usable cluster configuration: {e.Message}");
        return null;
    }
}

// A CPU quantity (500m, 1, 0.5) in millicores; null when it is not one or is negative.
static int? CpuMillis(string? text)
{
    try
    {
        var millis = new k8s.Models.ResourceQuantity(text).ToDecimal() * 1000m;
        return millis is >= 0 and <= int.MaxValue ? (int)decimal.Ceiling(millis) : null;
    }
    catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
    {
        return null;
    }
}
