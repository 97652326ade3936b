using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.ControllerRuntime;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Planning;
using NetTune.Operator.Core.Selection;

namespace NetTune.Operator;

/// <summary>
/// The operator as a value: informers, work queue, reconciler and (optionally) leader election on one client. The
/// executable wraps one; tests start several in one process.
/// </summary>
public sealed class OperatorHost : IAsyncDisposable
{
    private readonly IKubernetes _client;
    private readonly OperatorOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _sessionLock = new();
    private readonly TaskCompletionSource<LeaseOutcome> _lost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _main;
    private Session? _session;

    public OperatorHost(IKubernetes client, OperatorOptions options, ILoggerFactory loggers, OperatorMetrics? metrics = null)
    {
        _client = client;
        _options = options;
        _loggers = loggers;
        _log = loggers.CreateLogger("operator");
        Metrics = metrics ?? new OperatorMetrics();
    }

    public OperatorMetrics Metrics { get; }

    public string Identity => _options.Identity;

    public bool IsLeader { get; private set; }

    /// <summary>
    /// Completes when the leadership was lost (a renewal did not succeed within the renew deadline): the host has
    /// stopped reconciling and will not campaign again; the executable exits so that a fresh process campaigns.
    /// </summary>
    public Task LeadershipLost => _lost.Task;

    /// <summary>Ready: a standby that is campaigning, or a leader whose caches have synced.</summary>
    public bool IsReady
    {
        get
        {
            lock (_sessionLock) return _main is not null && (_session?.Synced ?? _options.LeaderElect);
        }
    }

    public Task StartAsync(CancellationToken ct = default)
    {
        if (_main is not null) throw new InvalidOperationException("already started");
        _main = _options.LeaderElect ? Task.Run(() => CampaignAsync(_stopping.Token), CancellationToken.None) : StartSession();
        return Task.CompletedTask;
    }

    public async Task StopAsync()
    {
        _stopping.Cancel();
        Session? session;
        lock (_sessionLock) session = _session;
        if (session is not null) await session.StopAsync().ConfigureAwait(false);
        if (_main is not null)
        {
            try { await _main.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }
        IsLeader = false;
        Metrics.Leader.Set(0);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task CampaignAsync(CancellationToken ct)
    {
        var elector = new LeaseElector(_client, new LeaseElectorOptions
        {
            Namespace = _options.Namespace,
            Name = _options.LeaseName,
            Identity = _options.Identity,
            LeaseDuration = _options.LeaseDuration,
            RenewDeadline = _options.RenewDeadline,
            RetryPeriod = _options.RetryPeriod,
        }, _loggers.CreateLogger("leader"));
        elector.LeaderObserved += leader => _log.LogInformation("the leader is {Leader}", leader ?? "nobody (released)");
        var outcome = await elector.RunAsync(async term =>
        {
            _log.LogInformation("{Identity} became the leader", _options.Identity);
            IsLeader = true;
            Metrics.Leader.Set(1);
            var session = StartSession(term);
            try { await session.ConfigureAwait(false); }
            finally
            {
                IsLeader = false;
                Metrics.Leader.Set(0);
            }
        }, ct).ConfigureAwait(false);
        if (outcome != LeaseOutcome.Lost) return;
        IsLeader = false;
        Metrics.Leader.Set(0);
        _log.LogError("{Identity} lost the leadership; stopped reconciling and will not campaign again", _options.Identity);
        _lost.TrySetResult(outcome);
    }

    private Task StartSession() => StartSession(_stopping.Token);

    private Task StartSession(CancellationToken term)
    {
        if (!_options.LeaderElect)
        {
            IsLeader = true;
            Metrics.Leader.Set(1);
        }
        var session = new Session(_client, _options, _loggers, Metrics, term);
        lock (_sessionLock)
        {
            if (_stopping.IsCancellationRequested) return Task.CompletedTask;
            _session = session;
        }
        return session.Run;
    }

    /// <summary>
    /// What the operator keeps of a Node: names, labels, uid, whether it is cordoned, its allocatable resources
    /// (CPU and hugepages decide the data-plane pods) and its boot id. Real Nodes carry large statuses (images, conditions) it never reads.
    /// </summary>
    public static V1Node Slim(V1Node n) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = n.Metadata.Name, Uid = n.Metadata.Uid, Labels = n.Metadata.Labels,
            ResourceVersion = n.Metadata.ResourceVersion, DeletionTimestamp = n.Metadata.DeletionTimestamp,
        },
        Spec = n.Spec?.Unschedulable == true ? new V1NodeSpec { Unschedulable = true } : null,
        Status = n.Status?.Allocatable is { Count: > 0 } || n.Status?.NodeInfo?.BootID is { Length: > 0 }
            ? new V1NodeStatus
            {
                Allocatable = n.Status.Allocatable is { Count: > 0 } allocatable ? allocatable : null,
                // The tuned label holds for one boot only.
                NodeInfo = n.Status.NodeInfo?.BootID is { Length: > 0 } boot ? new V1NodeSystemInfo { BootID = boot } : null,
            }
            : null,
    };

    /// <summary>One term of office: caches, queue and workers, from winning the leadership until losing it.</summary>
    private sealed class Session
    {
        private readonly CancellationTokenSource _cts;
        private readonly OperatorCaches _caches;
        private readonly WorkQueue _queue;

        public Task Run { get; }
        public bool Synced { get; private set; }

        public Session(IKubernetes client, OperatorOptions options, ILoggerFactory loggers, OperatorMetrics metrics, CancellationToken stopping)
        {
            _cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            var log = loggers.CreateLogger("controller");
            var io = options.Informer;
            _caches = new OperatorCaches(
                new Informer<NetworkTuning>(ListWatch.ClusterCustom<NetworkTuning, NetworkTuningList>(client, NetworkTuning.KindName, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural), io, loggers.CreateLogger("informer")),
                new Informer<NetworkTuningNodeState>(ListWatch.ClusterCustom<NetworkTuningNodeState, NetworkTuningNodeStateList>(client, NetworkTuningNodeState.KindName, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural), io, loggers.CreateLogger("informer")),
                new Informer<V1Node>(ListWatch.Nodes(client), io, loggers.CreateLogger("informer"), Slim),
                new Informer<V1Pod>(ListWatch.Pods(client, options.NodeComponentsNamespace, $"{Names.AppName}={Names.DataPlaneApp}"), io, loggers.CreateLogger("informer")),
                new Informer<V1DaemonSet>(ListWatch.DaemonSets(client, options.NodeComponentsNamespace, $"{Names.AppName}={Names.AgentApp}"), io, loggers.CreateLogger("informer")));
            _queue = new WorkQueue(options.Queue);
            _queue.Waited += w =>
            {
                metrics.QueueLatency.Observe(w.TotalSeconds);
                metrics.QueueDepth.Set(_queue.Depth);
            };
            var reconciler = new OperatorReconciler(client, _caches, options, metrics, loggers.CreateLogger("reconciler"));
            reconciler.AgentTroublesChanged += () =>
            {
                foreach (var t in _caches.Tunings.List()) EnqueueTuning(t.Metadata.Name);
            };
            var controller = new Controller("networktuning", _queue, reconciler, options.Workers, log);
            controller.Reconciled += (key, outcome, duration) =>
            {
                var kind = key == OperatorReconciler.AgentKey ? "DaemonSet"
                    : key.StartsWith(OperatorReconciler.NodePrefix, StringComparison.Ordinal) ? "Node" : "NetworkTuning";
                metrics.Reconciles.WithLabels(kind, outcome).Inc();
                metrics.ReconcileDuration.WithLabels(kind).Observe(duration.TotalSeconds);
                metrics.QueueDepth.Set(_queue.Depth);
            };
            Wire(metrics);
            Run = RunAsync(controller, options, log);
        }

        private async Task RunAsync(Controller controller, OperatorOptions options, ILogger log)
        {
            var ct = _cts.Token;
            var informers = new[]
            {
                Task.Run(() => _caches.Tunings.RunAsync(ct), CancellationToken.None),
                Task.Run(() => _caches.NodeStates.RunAsync(ct), CancellationToken.None),
                Task.Run(() => _caches.Nodes.RunAsync(ct), CancellationToken.None),
                Task.Run(() => _caches.Pods.RunAsync(ct), CancellationToken.None),
                Task.Run(() => _caches.DaemonSets.RunAsync(ct), CancellationToken.None),
            };
            try
            {
                // Reconciling on half-filled caches would take missing objects for deleted ones.
                await Task.WhenAll(_caches.Tunings.Synced, _caches.NodeStates.Synced, _caches.Nodes.Synced, _caches.Pods.Synced, _caches.DaemonSets.Synced)
                    .WaitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await Task.WhenAll(informers).ConfigureAwait(false);
                return;
            }
            Synced = true;
            log.LogInformation("caches synced: {Tunings} tunings, {Nodes} nodes, {States} node states", _caches.Tunings.Count, _caches.Nodes.Count, _caches.NodeStates.Count);
            EnqueueAll();
            var resync = Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(options.ResyncPeriod);
                try
                {
                    while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false)) EnqueueAll();
                }
                catch (OperationCanceledException) { }
            }, CancellationToken.None);
            var work = controller.RunAsync(ct);
            try { await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
            _queue.ShutDown();
            await Task.WhenAll([.. informers, resync, work]).ConfigureAwait(false);
        }

        public async Task StopAsync()
        {
            _cts.Cancel();
            try { await Run.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
        }

        private void EnqueueAll()
        {
            _queue.Add(OperatorReconciler.AgentKey);
            foreach (var t in _caches.Tunings.List()) _queue.Add(OperatorReconciler.TuningPrefix + t.Metadata.Name);
            EnqueueNodes();
        }

        private void EnqueueNodes()
        {
            foreach (var n in _caches.Nodes.List()) _queue.Add(OperatorReconciler.NodePrefix + n.Metadata.Name);
        }

        private void EnqueueTuning(string name) => _queue.Add(OperatorReconciler.TuningPrefix + name);

        /// <summary>The "owns" watches: every change maps back to the NetworkTunings it concerns.</summary>
        private void Wire(OperatorMetrics metrics)
        {
            _caches.Tunings.Changed += (kind, old, now) =>
            {
                var t = now ?? old!;
                EnqueueTuning(t.Metadata.Name);
                var specChanged = kind != CacheEvent.Updated || old!.Metadata.Generation != now!.Metadata.Generation
                                  || (old.Metadata.DeletionTimestamp is null) != (now.Metadata.DeletionTimestamp is null);
                if (!specChanged) return;
                // Another tuning's spec decides this one's conflicts, and every tuning's selector which nodes need an agent.
                _queue.Add(OperatorReconciler.AgentKey);
                foreach (var other in _caches.Tunings.List()) EnqueueTuning(other.Metadata.Name);
                EnqueueNodes();
            };
            _caches.NodeStates.Changed += (_, old, now) =>
            {
                // A node's labels follow its NodeState: the agent label (kept until the node reported Reverted), the tuned label.
                _queue.Add(OperatorReconciler.NodePrefix + (now ?? old)!.Metadata.Name);
                // The agent DaemonSet stays while any node has something left to revert.
                if (old is null || now is null || AgentPlacement.Settled(old) != AgentPlacement.Settled(now)) _queue.Add(OperatorReconciler.AgentKey);
                foreach (var state in new[] { old, now })
                {
                    if (state is null) continue;
                    foreach (var source in state.Spec.Sources ?? []) EnqueueTuning(source.Name);
                    if (Names.Annotation(state.Metadata, TuningPlanner.RevertedForAnnotation) is { } reverted)
                        foreach (var name in reverted.Split(',', StringSplitOptions.RemoveEmptyEntries)) EnqueueTuning(name);
                }
            };
            _caches.Nodes.Changed += (kind, old, now) =>
            {
                // Node status heartbeats change nothing here; only new, gone, relabelled or cordoned nodes, a change of what
                // they can allocate (hugepages the kubelet counted after a restart) or a new boot, do.
                if (kind == CacheEvent.Updated && SameNode(old!, now!, ignoreAgentLabel: false)) return;
                _queue.Add(OperatorReconciler.NodePrefix + (now ?? old)!.Metadata.Name);
                // The agent label is the operator's own and no tuning's plan reads it: a change of it alone (every node
                // of a first rollout gets it) reaches only the tunings whose selection of the node it changes. Waking
                // every tuning for each of them made a rollout of N nodes N planner runs over N nodes.
                var agentLabelOnly = kind == CacheEvent.Updated && SameNode(old!, now!, ignoreAgentLabel: true);
                foreach (var t in _caches.Tunings.List())
                {
                    var before = old is not null && NodeSelection.Selects(t.Spec, old.Metadata.Labels);
                    var after = now is not null && NodeSelection.Selects(t.Spec, now.Metadata.Labels);
                    if (agentLabelOnly ? before != after : before || after) EnqueueTuning(t.Metadata.Name);
                }
                if (agentLabelOnly) return;
                var state = _caches.NodeStates.Get((now ?? old)!.Metadata.Name);
                foreach (var source in state?.Spec.Sources ?? []) EnqueueTuning(source.Name);
            };
            _caches.Pods.Changed += (_, old, now) =>
            {
                foreach (var owner in (now ?? old)!.Metadata.OwnerReferences ?? [])
                    if (owner.Kind == NetworkTuning.KindName) EnqueueTuning(owner.Name);
            };
            _caches.DaemonSets.Changed += (_, _, _) => _queue.Add(OperatorReconciler.AgentKey);

            foreach (var (kind, informer) in new (string, Action<Action<string>>)[]
                     {
                         (NetworkTuning.KindName, h => _caches.Tunings.WatchRestarted += h),
                         (NetworkTuningNodeState.KindName, h => _caches.NodeStates.WatchRestarted += h),
                         ("Node", h => _caches.Nodes.WatchRestarted += h),
                         ("Pod", h => _caches.Pods.WatchRestarted += h),
                         ("DaemonSet", h => _caches.DaemonSets.WatchRestarted += h),
                     })
            {
                informer(reason => metrics.WatchRestarts.WithLabels(kind, reason).Inc());
            }
        }

        /// <summary>Nothing the operator acts on changed: labels (but the agent label, if told), cordon, allocatable, boot.</summary>
        private static bool SameNode(V1Node old, V1Node now, bool ignoreAgentLabel) =>
            SameLabels(Labels(old, ignoreAgentLabel), Labels(now, ignoreAgentLabel))
            && (old.Spec?.Unschedulable == true) == (now.Spec?.Unschedulable == true)
            && SameLabels(Quantities(old), Quantities(now))
            && old.Status?.NodeInfo?.BootID == now.Status?.NodeInfo?.BootID;

        private static IDictionary<string, string>? Labels(V1Node node, bool withoutAgentLabel) =>
            withoutAgentLabel && node.Metadata.Labels?.ContainsKey(Names.AgentNodeLabel) == true
                ? node.Metadata.Labels.Where(kv => kv.Key != Names.AgentNodeLabel).ToDictionary()
                : node.Metadata.Labels;

        private static Dictionary<string, string> Quantities(V1Node node) =>
            (node.Status?.Allocatable ?? new Dictionary<string, ResourceQuantity>()).ToDictionary(kv => kv.Key, kv => kv.Value.ToString());

        private static bool SameLabels(IDictionary<string, string>? a, IDictionary<string, string>? b)
        {
            a ??= new Dictionary<string, string>();
            b ??= new Dictionary<string, string>();
            return a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
        }
    }
}
