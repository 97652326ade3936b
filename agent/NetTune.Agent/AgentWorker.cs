using System.Diagnostics;
using System.Threading.Channels;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Status;
using NetTune.Api.V1Alpha1;
using k8s.Models;

namespace NetTune.Agent;

/// <summary>
/// The agent's loop: on every change of its NodeState (and at each drift interval) it applies, dry-runs or reverts,
/// and writes the result into the status. Runs are sequential; SIGTERM lets the current run finish.
/// </summary>
public sealed class AgentWorker(AgentOptions options, NodeStateClient api, TuningEngine engine, AgentMetrics metrics, AgentHealth health, ILogger<AgentWorker> log)
    : BackgroundService
{
    public static readonly string Version = typeof(AgentWorker).Assembly.GetName().Version?.ToString() ?? "0.0.0";

    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Dictionary<string, DriftCounter> _drift = new(StringComparer.Ordinal);
    private long? _appliedGeneration;
    private long? _revertedGeneration;
    private bool _lastApplyFailed;
    private readonly DriftBackoff _backoff = new();
    private readonly FailureBackoff _failures = new();
    private readonly ShortfallRetries _shortfalls = new(engine.PlanOnly ? null : engine.Journal);
    private List<KnobResult> _lastKnobs = [];
    private readonly KubeletRestarter? _restarter = KubeletRestarter.From(options.KubeletRestartCommand, options.KubeletRestartRequestFile);
    // The last apply left hugepages the node's capacity does not show yet: each drift tick looks again.
    private bool _kubeletPending;
    // Since when this node has had no NodeState while the journal held changes.
    private DateTime? _orphanedSince;
    // The kernel's hugepages the kubelet was last restarted for: one restart per change of the pools, never a loop.
    private string? _restartedFor;
    // What the restart for _restartedFor did: later reconciles (drift, a re-pinned pod) keep saying how the kubelet came to see the pages.
    private string? _restartDetail;
    // The boot this process runs in (one process, one boot): every status says which boot it describes, and the
    // operator sets the node's tuned label only for the Node's current boot.
    private string? _bootId;
    private (long Generation, RunReport Report)? _unreportedRevert;

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        log.LogInformation("agent {Version} for node {Node}, host root {Root}, journal {Journal}{PlanOnly}", Version, options.NodeName, options.HostRoot, options.JournalDir,
            engine.PlanOnly ? ", plan only: nothing is written to the host" : "");
        // Checked at start (and at every run): net sysctls written from another namespace would tune nothing of the host.
        var host = engine.Discover();
        _bootId = host.BootId;
        var netns = host.NetNamespace;
        if (netns.SameAsHost == true) log.LogInformation("{Detail}", netns.Detail);
        else log.LogWarning("{Detail}: net sysctls will be refused (run the agent with hostNetwork)", netns.Detail);
        // After a reboot the run-time hugepage pools are gone, and the kubelet turns away the data-plane pods that need
        // them: they are reserved again first thing, from the journal, without waiting for the API server; the first
        // apply then finds them in place and asks for the kubelet restart that makes them allocatable.
        if (engine.ReserveHugepagesAfterReboot() is { } reserved)
        {
            if (reserved.Kind == RunKind.Applied) log.LogInformation("{Message}", reserved.Message);
            else log.LogWarning("{Message}", reserved.Message);
        }
        var watch = Task.Run(() => WatchLoopAsync(stop), stop);
        var kubeletCpus = Task.Run(() => WatchKubeletCpusAsync(stop), stop);
        var notifications = options.ChannelBackend == ChannelBackend.Ethtool
            ? Task.Factory.StartNew(() => ListenForEthtoolChanges(stop), stop, TaskCreationOptions.LongRunning, TaskScheduler.Default)
            : Task.CompletedTask;
        _wake.Writer.TryWrite(true);
        var nextDrift = DateTime.UtcNow + options.DriftInterval;
        while (!stop.IsCancellationRequested)
        {
            var wait = nextDrift - DateTime.UtcNow;
            var woke = false;
            if (wait > TimeSpan.Zero)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                timeout.CancelAfter(wait);
                try
                {
                    woke = await _wake.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
                    _wake.Reader.TryRead(out _);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
            var driftTick = !woke || Interlocked.Exchange(ref _driftRequested, 0) == 1;
            if (driftTick) nextDrift = DateTime.UtcNow + options.DriftInterval;
            try
            {
                await ReconcileAsync(driftTick, stop).ConfigureAwait(false);
                health.Beat();
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                log.LogError(e, "reconcile of node {Node} failed; retrying in 5 s", options.NodeName);
                health.Beat(e.Message);
                try { await Task.Delay(TimeSpan.FromSeconds(5), stop).ConfigureAwait(false); } catch (OperationCanceledException) { break; }
                _wake.Writer.TryWrite(true);
            }
        }
        log.LogInformation("agent stopping");
        try { await watch.ConfigureAwait(false); } catch (OperationCanceledException) { }
        try { await notifications.ConfigureAwait(false); } catch (OperationCanceledException) { }
        try { await kubeletCpus.ConfigureAwait(false); } catch (OperationCanceledException) { }
    }

    private int _driftRequested;
    private int _cpuAssignmentChanged;

    /// <summary>
    /// A Guaranteed pod that starts or ends changes which CPUs the kubelet gave containers exclusively, and with them
    /// the CPUs interrupts, RPS and XPS may use: the checkpoint (one small file, and the device checkpoint that says
    /// which containers are the data plane) is read again whenever an entry of the kubelet's root dir changes (inotify;
    /// every <see cref="AgentOptions.KubeletCpuPollInterval"/> while that folder cannot be watched), and a change, a
    /// data-plane pod re-pinned to other CPUs included, plans and applies again at once.
    /// </summary>
    private async Task WatchKubeletCpusAsync(CancellationToken stop)
    {
        using var folder = new FolderWatch(Path.Join(options.HostRoot, options.KubeletRootDir));
        // Watching before the first read: a checkpoint written in between is not missed.
        if (folder.Ensure() is { } unwatched) log.LogInformation("the kubelet's CPU assignment is read every {Interval} s: {Reason}", options.KubeletCpuPollInterval.TotalSeconds, unwatched);
        var last = engine.KubeletCpus();
        if (last.Found && last.Error is null) log.LogInformation("{Detail}", last.Describe());
        else log.LogWarning("{Detail}", last.Describe());
        while (!stop.IsCancellationRequested)
        {
            await folder.WaitAsync(folder.Watching ? options.WatchedFolderRecheckInterval : options.KubeletCpuPollInterval, stop).ConfigureAwait(false);
            folder.Ensure();
            var now = engine.KubeletCpus();
            if (now.SameAs(last)) continue;
            log.LogInformation("the kubelet's exclusive CPUs changed from {Before} to {After} (data plane: {DataPlanes}): planning again",
                Cpus(last), Cpus(now), now.DataPlanes.Count == 0 ? "none" : string.Join("; ", now.DataPlanes));
            last = now;
            Interlocked.Exchange(ref _cpuAssignmentChanged, 1);
            Interlocked.Exchange(ref _driftRequested, 1);
            _wake.Writer.TryWrite(true);
        }

        static string Cpus(Core.Topology.KubeletCpuAssignment a) => a.ExclusiveCpus.Count == 0 ? "none" : NetTune.Api.V1Alpha1.CpuList.Format(a.ExclusiveCpus);
    }

    /// <summary>A channels, rings, coalescing, pause or features notification means someone may have undone the agent's work: look now.</summary>
    private void ListenForEthtoolChanges(CancellationToken stop)
    {
        using var listener = EthtoolNotifications.TrySubscribe(out var error);
        if (listener is null)
        {
            log.LogInformation("no ethtool netlink notifications ({Error}); drift is found by the periodic check only", error);
            return;
        }
        listener.Run((command, ifName) =>
        {
            if (!EthtoolNotifications.AboutManagedSetting(command)) return;
            log.LogDebug("ethtool notification {Command} for {Interface}", command, ifName);
            Interlocked.Exchange(ref _driftRequested, 1);
            _wake.Writer.TryWrite(true);
        }, stop);
    }

    private async Task WatchLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await api.WatchAsync(() => _wake.Writer.TryWrite(true), stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                log.LogWarning("watch of NetworkTuningNodeState {Node} ended: {Error}; reconnecting", options.NodeName, e.Message);
                try { await Task.Delay(TimeSpan.FromSeconds(2), stop).ConfigureAwait(false); } catch (OperationCanceledException) { return; }
            }
            // Whatever happened while no watch was open is picked up by a fresh read.
            _wake.Writer.TryWrite(true);
        }
    }

    private async Task ReconcileAsync(bool driftTick, CancellationToken ct)
    {
        var state = await api.GetAsync(ct).ConfigureAwait(false);
        if (state is null)
        {
            await WithoutNodeStateAsync(ct).ConfigureAwait(false);
            return;
        }
        _orphanedSince = null;
        var generation = state.Metadata.Generation ?? 0;
        var spec = state.Spec;
        var status = state.Status ?? new NodeStateStatus();
        var conditions = status.Conditions?.ToList() ?? [];
        var step = NextStep.Decide(state, _appliedGeneration, _revertedGeneration, driftTick, _lastApplyFailed);
        // A changed CPU assignment moves the targets, not the knobs: applied again, not counted as drift.
        var cpusChanged = step is AgentStep.CheckDrift or AgentStep.Apply && Interlocked.Exchange(ref _cpuAssignmentChanged, 0) == 1;
        if (cpusChanged) step = AgentStep.Apply;
        if (step == AgentStep.Nothing) return;

        if (step == AgentStep.Revert)
        {
            // A revert whose status write failed is reported again, not run again: the journal is empty by now, and
            // a second run would report nothing restored.
            var report = _unreportedRevert is { } pending && pending.Generation == generation ? pending.Report : null;
            if (report is null)
            {
                var sw = Stopwatch.StartNew();
                report = await Task.Run(engine.Revert, ct).ConfigureAwait(false);
                metrics.Observe(report, "revert", sw.Elapsed);
                log.LogInformation("revert of generation {Generation}: {Kind} in {Ms} ms: {Message}", generation, report.Kind, sw.ElapsedMilliseconds, report.Message);
            }
            StatusBuilder.ApplyConditions(conditions, report, generation, DateTime.UtcNow);
            _appliedGeneration = null;
            _kubeletPending = false;
            _lastKnobs = [.. report.Knobs];
            // The operator takes the node's tuned label off only once the status says Reverted: a failed status write
            // (apiserver or webhook down) throws here, and the loop's retry writes this report again.
            _unreportedRevert = (generation, report);
            await WriteStatusAsync(status, conditions, generation, report, planned: null).ConfigureAwait(false);
            _unreportedRevert = null;
            // A plan-only agent's refusal stands until the spec changes: asking again would change nothing.
            if (report.Kind == RunKind.Reverted || engine.PlanOnly) _revertedGeneration = generation;
            return;
        }
        _revertedGeneration = null;

        // A retry of a failed apply runs like a drift repair: the plan and the Applying condition were published already.
        var isNew = step == AgentStep.Apply && (_appliedGeneration != generation || status.ObservedGeneration != generation);
        if (step == AgentStep.CheckDrift)
        {
            // What the plan would change now is what someone else changed since the last apply.
            var (_, plan) = await Task.Run(() => engine.PlanNow(spec), ct).ConfigureAwait(false);
            var now = DateTime.UtcNow;
            var drifted = DriftDetector.Drifted(plan.Changes, _lastKnobs);
            // A knob whose back-off ran out gets one more repair; if it drifts again it is left alone for longer.
            var retry = _backoff.TakeExpired(now);
            if (drifted.Count == 0 && retry.Count == 0)
            {
                if (_kubeletPending) await RecheckKubeletAsync(spec, status, conditions, generation, ct).ConfigureAwait(false);
                return;
            }
            foreach (var c in drifted)
            {
                Drift(c.Knob).Detected++;
                // Kinds, not knob names, as label values: one series per queue would grow with the NICs.
                metrics.DriftDetected.WithLabels(AgentMetrics.KindOf(c.Knob)).Inc();
                if (_backoff.RecordDrift(c.Knob, now) is { } until)
                    log.LogWarning("{Knob} keeps being changed by something else: not set back until {Until:O}", c.Knob, until);
            }
            if (drifted.Count > 0)
                log.LogWarning("drift on {Count} knobs: {Knobs}", drifted.Count, string.Join(", ", drifted.Take(10).Select(c => $"{c.Knob} {c.Target}→{c.Current}")));
        }
        if (isNew)
        {
            _backoff.Reset();
            _failures.Reset();
        }
        var hold = isNew ? null : _backoff.Held(DateTime.UtcNow);
        var failing = _failures.Held(DateTime.UtcNow);
        var givenUp = _shortfalls.GivenUp(generation);

        List<PlannedChange>? published = null;
        var watch = Stopwatch.StartNew();
        var run = await Task.Run(() => engine.Apply(spec, (host, plan) =>
        {
            published = StatusBuilder.Planned(plan);
            if (!isNew) return;
            // Publish the plan before the first write, so the operator (and a human) can see what is about to change.
            var planning = Copy(status);
            planning.Topology = StatusBuilder.Topology(host);
            planning.PlannedChanges = published;
            var planConditions = conditions.ToList();
            if (!spec.DryRun)
                StatusBuilder.SetCondition(planConditions, ConditionTypes.Applied, ConditionStatus.False, ConditionReasons.Applying, $"applying {plan.Changes.Count} changes", generation, DateTime.UtcNow);
            planning.Conditions = planConditions;
            planning.ObservedGeneration = generation;
            api.PatchStatusAsync(planning, ct).GetAwaiter().GetResult();
        }, hold, givenUp, failing), ct).ConfigureAwait(false);
        metrics.Observe(run, isNew ? "apply" : "repair", watch.Elapsed);
        log.LogInformation("apply of generation {Generation}{Drift}: {Kind} in {Ms} ms: {Message}", generation,
            isNew ? "" : cpusChanged ? " (the kubelet's exclusive CPUs changed)" : " (drift repair)", run.Kind, watch.ElapsedMilliseconds, run.Message);

        if (!isNew)
        {
            foreach (var k in run.Knobs.Where(k => k.Result == KnobOutcome.Applied && _drift.ContainsKey(k.Knob)))
            {
                var d = Drift(k.Knob);
                if (d.Repaired < d.Detected)
                {
                    d.Repaired++;
                    metrics.DriftRepaired.WithLabels(AgentMetrics.KindOf(k.Knob)).Inc();
                }
            }
        }
        StatusBuilder.ApplyConditions(conditions, run, generation, DateTime.UtcNow);
        _shortfalls.Record(generation, run.Knobs);
        // NIC knobs held back by an API server outage did not fail at the driver: not counted.
        if (!run.ApiServerOutage) _failures.Record(run.Knobs, DateTime.UtcNow);
        StatusBuilder.ShortfallConditions(conditions, run, _shortfalls.GivenUp(generation), generation, DateTime.UtcNow);
        StatusBuilder.IrqAffinityCondition(conditions, run.Plan, generation, DateTime.UtcNow);
        if (run.Plan?.IrqBalance is { } irqbalance && isNew)
            log.LogWarning("irqbalance (pid {Pid}) runs on this node: {Count} IRQs left to it, see the {Condition} condition", irqbalance.Pid, irqbalance.UnbannedIrqs.Count, IrqAffinityConditions.Type);
        // Hugepages count as applied once pods can get them: when the node's capacity shows them.
        var kubeletSees = run.Kind != RunKind.Applied || spec.Hugepages is not { Count: > 0 } || run.Host is null
            || await GateOnKubeletAsync(run.Host, spec, conditions, generation, ct).ConfigureAwait(false);
        _kubeletPending = !kubeletSees;
        if (run.Kind == RunKind.Applied && kubeletSees) status.LastAppliedGeneration = generation;
        // A rollback is not retried (the same NIC changes would cut the node off again), unless the API server was
        // down whatever the changes did: then they are made once it answers. Nor is a Shortfall tried again forever.
        _lastApplyFailed = _shortfalls.WorthRetrying(generation, run);
        _appliedGeneration = generation;
        _lastKnobs = [.. run.Knobs];
        await WriteStatusAsync(status, conditions, generation, run, published).ConfigureAwait(false);
    }

    /// <summary>
    /// No NetworkTuningNodeState: none was made for this node yet, or it was deleted (by hand, or with its Node, which
    /// owns it) while changes were applied. Nobody would ever ask this agent to revert them, so once the journal has held
    /// changes for longer than the grace period without a NodeState, the agent reverts from the journal and says so in
    /// its log, an Event on the Node and a metric. A NodeState that comes back within the grace period resumes as usual.
    /// </summary>
    private async Task WithoutNodeStateAsync(CancellationToken ct)
    {
        var journaled = engine.JournaledChanges();
        if (journaled == 0 || options.OrphanGrace <= TimeSpan.Zero)
        {
            _orphanedSince = null;
            log.LogDebug("no NetworkTuningNodeState {Node}", options.NodeName);
            return;
        }
        var now = DateTime.UtcNow;
        if (_orphanedSince is null)
        {
            _orphanedSince = now;
            log.LogWarning("no NetworkTuningNodeState {Node}, but the journal holds {Count} changed knobs: reverting them from the journal at {At:O} unless it comes back",
                options.NodeName, journaled, now + options.OrphanGrace);
        }
        if (now - _orphanedSince < options.OrphanGrace) return;

        var sw = Stopwatch.StartNew();
        var report = await Task.Run(engine.Revert, ct).ConfigureAwait(false);
        metrics.Observe(report, "revert", sw.Elapsed);
        metrics.OrphanReverts.WithLabels(report.Kind.ToString()).Inc();
        var message = $"no NetworkTuningNodeState {options.NodeName} for {(now - _orphanedSince.Value).TotalSeconds:0} s while the journal held changes: reverted from the journal: {report.Kind}: {report.Message}";
        if (report.Kind == RunKind.Reverted) log.LogWarning("{Message}", message);
        else log.LogError("{Message}", message);
        try
        {
            await api.RecordNodeEventAsync("Warning",
                report.Kind == RunKind.Reverted ? "RevertedWithoutNodeState" : "RevertWithoutNodeStateFailed", message, ct).ConfigureAwait(false);
        }
        catch (k8s.Autorest.HttpOperationException e)
        {
            log.LogWarning("could not record the Event about node {Node}: {Status} {Error}", options.NodeName, (int)e.Response.StatusCode, e.Response.Content);
        }
        // A failed revert (a damaged journal, a knob the kernel refuses) is tried again one grace period later, not at
        // every run; a done one leaves nothing journaled, so nothing happens until a NodeState comes.
        _orphanedSince = report.Kind == RunKind.Reverted ? null : now;
        _appliedGeneration = null;
        _revertedGeneration = null;
        _kubeletPending = false;
        _lastKnobs = [.. report.Knobs];
    }

    private async Task RecheckKubeletAsync(NodeStateSpec spec, NodeStateStatus status, List<V1Condition> conditions, long generation, CancellationToken ct)
    {
        var host = await Task.Run(engine.Discover, ct).ConfigureAwait(false);
        if (!await GateOnKubeletAsync(host, spec, conditions, generation, ct).ConfigureAwait(false)) return;
        _kubeletPending = false;
        StatusBuilder.SetCondition(conditions, ConditionTypes.Applied, ConditionStatus.True, ConditionReasons.Applied,
            "every knob at its target, and the node's capacity shows the hugepages", generation, DateTime.UtcNow);
        status.LastAppliedGeneration = generation;
        log.LogInformation("the node's capacity shows the hugepages now: generation {Generation} applied", generation);
        // Applied now: the operator sets the tuned label it held back while pods could not get the pages.
        await WriteStatusAsync(status, conditions, generation, new RunReport(RunKind.Applied, host, null, _lastKnobs, null), status.PlannedChanges).ConfigureAwait(false);
    }

    /// <summary>
    /// Compares the kernel's hugepages with the node's capacity, restarts the kubelet once when configured to, and sets
    /// KubeletRestartRequired (and Applied false while pods cannot get the pages). Returns whether the kubelet sees them.
    /// </summary>
    private async Task<bool> GateOnKubeletAsync(Core.Topology.HostSnapshot host, NodeStateSpec spec, List<V1Condition> conditions, long generation, CancellationToken ct)
    {
        var check = await CheckKubeletAsync(host, spec, ct).ConfigureAwait(false);
        if (check.State == KubeletHugepagesState.RestartRequired && _restarter is not null)
        {
            if (_restartedFor == check.Signature)
            {
                check = check with { State = KubeletHugepagesState.RestartFailed, Message = $"the kubelet was restarted once already for these pages ({_restarter.Description}); {check.Message}" };
            }
            else
            {
                _restartedFor = check.Signature;
                var (ok, detail) = await _restarter.RunAsync(check.Signature, ct).ConfigureAwait(false);
                _restartDetail = detail;
                log.LogWarning("kubelet restart for hugepages: {Detail}", detail);
                var deadline = DateTime.UtcNow + options.KubeletRestartTimeout;
                while (ok && check.State != KubeletHugepagesState.Visible && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
                    check = await CheckKubeletAsync(host, spec, ct).ConfigureAwait(false);
                }
                if (check.State != KubeletHugepagesState.Visible)
                    check = check with { State = KubeletHugepagesState.RestartFailed, Message = $"{detail}; {(ok ? $"{options.KubeletRestartTimeout.TotalSeconds:0} s later " : "")}{check.Message}" };
            }
        }
        if (check.State == KubeletHugepagesState.Visible && _restartedFor == check.Signature && _restartDetail is not null)
            check = check with { Message = $"after {_restartDetail}: {check.Message}" };
        return StatusBuilder.KubeletConditions(conditions, check, generation, DateTime.UtcNow);
    }

    private async Task<KubeletHugepagesCheck> CheckKubeletAsync(Core.Topology.HostSnapshot host, NodeStateSpec spec, CancellationToken ct)
    {
        try
        {
            var node = await api.GetNodeAsync(ct).ConfigureAwait(false);
            return KubeletHugepages.Compare(host, spec.Hugepages!, node.Status?.Capacity ?? new Dictionary<string, ResourceQuantity>(), node.Status?.Allocatable);
        }
        catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException)
        {
            return KubeletHugepages.Compare(host, spec.Hugepages!, null, null, e.Message);
        }
    }

    private DriftCounter Drift(string knob)
    {
        if (!_drift.TryGetValue(knob, out var d)) _drift[knob] = d = new DriftCounter { Knob = knob };
        return d;
    }

    private async Task WriteStatusAsync(NodeStateStatus status, List<V1Condition> conditions, long generation, RunReport report, List<PlannedChange>? planned)
    {
        var next = Copy(status);
        next.ObservedGeneration = generation;
        next.Conditions = conditions;
        if (report.Host is not null) next.Topology = StatusBuilder.Topology(report.Host, _lastKnobs);
        next.PlannedChanges = planned ?? [];
        // The test cluster's apiserver reads an empty string in a status patch as null and refuses it.
        next.Knobs = _lastKnobs.Select(k => new KnobResult { Knob = k.Knob, Result = k.Result, Value = NullIfEmpty(k.Value), Message = NullIfEmpty(k.Message) }).ToList();
        next.PlannedChanges = next.PlannedChanges.Select(c => new PlannedChange { Knob = c.Knob, Path = c.Path, Current = NullIfEmpty(c.Current), Target = NullIfEmpty(c.Target) }).ToList();
        next.Drift = _drift.Values.OrderBy(d => d.Knob, StringComparer.Ordinal).ToList();
        next.AgentVersion = Version;
        next.BootId = _bootId;
        // A run that finished during shutdown still reports what it did: the status write gets its own deadline.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await api.PatchStatusAsync(next, deadline.Token).ConfigureAwait(false);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private NodeStateStatus Copy(NodeStateStatus s) => new()
    {
        ObservedGeneration = s.ObservedGeneration,
        LastAppliedGeneration = s.LastAppliedGeneration,
        Conditions = s.Conditions,
        Topology = s.Topology,
        PlannedChanges = s.PlannedChanges ?? [],
        Knobs = s.Knobs ?? [],
        Drift = s.Drift ?? [],
        AgentVersion = Version,
        BootId = _bootId,
    };
}

/// <summary>
/// What /healthz (the DaemonSet's liveness probe) reports: healthy while the loop keeps turning. A failing reconcile
/// (the apiserver away, a corrupt journal) is reported in the body, the log and the status, but does not fail the
/// probe, since restarting the agent would not fix it.
/// </summary>
public sealed class AgentHealth(TimeSpan stuckAfter)
{
    private long _lastBeatTicks = DateTime.UtcNow.Ticks;
    private volatile string? _lastError;

    public void Beat(string? error = null)
    {
        _lastError = error;
        Interlocked.Exchange(ref _lastBeatTicks, DateTime.UtcNow.Ticks);
    }

    public string? LastError => _lastError;
    public DateTime LastBeat => new(Interlocked.Read(ref _lastBeatTicks), DateTimeKind.Utc);
    public bool Stuck => DateTime.UtcNow - LastBeat > stuckAfter;
}
