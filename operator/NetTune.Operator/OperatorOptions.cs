using NetTune.ControllerRuntime;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;

namespace NetTune.Operator;

public sealed record OperatorOptions
{
    /// <summary>The operator's own namespace: the leader Lease (and the webhook certificate Secret).</summary>
    public string Namespace { get; init; } = "nettune-system";

    /// <summary>
    /// Namespace of the agent DaemonSet and its ServiceAccount and of the data-plane pods; null: <see cref="Namespace"/>.
    /// They need the Pod Security level privileged, so they get a namespace of their own, and the operator's may
    /// enforce restricted.
    /// </summary>
    public string? NodeNamespace { get; init; }

    public string NodeComponentsNamespace => NodeNamespace ?? Namespace;
    /// <summary>Namespace of the Events about NetworkTunings (cluster-scoped objects' events conventionally go to default).</summary>
    public string EventNamespace { get; init; } = "default";
    public string AgentImage { get; init; } = "nettune/agent:latest";
    /// <summary>Secrets in <see cref="Namespace"/> the agent and data-plane pods pull their images with.</summary>
    public IReadOnlyList<string> ImagePullSecrets { get; init; } = [];
    public string DataPlaneMemory { get; init; } = "512Mi";
    /// <summary>CPU in millicores the data-plane pods leave unrequested on a node, beside the other pods' requests.</summary>
    public int DataPlaneCpuMarginMillis { get; init; } = 500;
    /// <summary>How soon a tuning whose pod found no CPU left beside the node's other pods is looked at again.</summary>
    public TimeSpan DataPlaneCpuRecheck { get; init; } = TimeSpan.FromSeconds(30);
    public bool LeaderElect { get; init; }
    public string LeaseName { get; init; } = "nettune-operator";
    public string Identity { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Every NetworkTuning is reconciled at least this often, whatever the watches say.</summary>
    public TimeSpan ResyncPeriod { get; init; } = TimeSpan.FromMinutes(5);
    public TimeSpan RevertTimeout { get; init; } = TimeSpan.FromMinutes(5);
    public int Workers { get; init; } = 2;
    /// <summary>Concurrent NodeState writes within one reconcile.</summary>
    public int WriteParallelism { get; init; } = 16;
    /// <summary>Grace period for deleted data-plane pods; null keeps the pod's own.</summary>
    public int? PodDeleteGraceSeconds { get; init; }
    public InformerOptions Informer { get; init; } = new();
    public WorkQueueOptions Queue { get; init; } = new();

    /// <summary>The agent DaemonSet's settings other than namespace and image (log level, port, resources, placement).</summary>
    public AgentOptions Agent { get; init; } = new("", "");

    /// <summary>The wait before a failed data-plane pod is made again the first time; it doubles up to <see cref="PodBackoffMax"/>.</summary>
    public TimeSpan PodBackoff { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan PodBackoffMax { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The node label the data-plane pods require (Exists); empty: none.</summary>
    public string? DataPlaneRequiredNodeLabel { get; init; } = Names.NodeTunedLabel;

    /// <summary>How the operator learns where a data-plane pod runs.</summary>
    public IDataPlaneProbe DataPlaneProbe { get; init; } = SharedProbe;

    /// <summary>
    /// While some node lacks a ready agent, how often its pods and the DaemonSet's FailedCreate Events are read again:
    /// the controller's retries of a refused pod change neither the DaemonSet nor anything the operator watches.
    /// </summary>
    public TimeSpan AgentHealthRecheck { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long after a failed or missing placement report the tuning is looked at again.</summary>
    public TimeSpan ProbeRetry { get; init; } = TimeSpan.FromSeconds(10);

    private static readonly IDataPlaneProbe SharedProbe = new HttpDataPlaneProbe();

    /// <summary>Images, host paths and ports the tunings' data planes may use (the webhook refuses others too).</summary>
    public DataPlanePolicy DataPlanePolicy { get; init; } = DataPlanePolicy.Any;

    public AgentOptions AgentOptions => Agent with { Namespace = NodeComponentsNamespace, Image = AgentImage, ImagePullSecrets = ImagePullSecrets };

    public PlannerSettings PlannerSettings => new(new DataPlaneOptions(NodeComponentsNamespace, DataPlaneMemory)
    {
        AgentCpuMillis = Agent.Resources.Requests?.TryGetValue("cpu", out var cpu) == true ? (int)decimal.Ceiling(cpu.ToDecimal() * 1000m) : 0,
        CpuMarginMillis = DataPlaneCpuMarginMillis,
        RequiredNodeLabel = DataPlaneRequiredNodeLabel,
        Policy = DataPlanePolicy,
        ImagePullSecrets = ImagePullSecrets,
    }, RevertTimeout)
    {
        PodBackoff = PodBackoff,
        PodBackoffMax = PodBackoffMax,
        CpuRecheck = DataPlaneCpuRecheck,
    };
}
