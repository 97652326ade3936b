using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;
using NetTune.Api.Validation;

namespace NetTune.Agent.Core.Apply;

public enum RunKind { Applied, Failed, DryRun, InvalidSpec, JournalCorrupt, Reverted, RevertFailed, RolledBack }

/// <summary>What one apply or revert did.</summary>
public sealed record RunReport(RunKind Kind, HostSnapshot? Host, TuningPlan? Plan, IReadOnlyList<KnobResult> Knobs, string? Message)
{
    public bool Succeeded => Kind is RunKind.Applied or RunKind.DryRun or RunKind.Reverted;
}

/// <summary>
/// Plans and applies a spec against a host: journals each original before the first change, applies in phase
/// order, reads every value back, and reverts exactly from the journal. A run killed at any point leaves the journal
/// holding every value it may have changed, so the next run completes the apply or reverts consistently.
/// </summary>
public sealed class TuningEngine
{
    private readonly IHostFileSystem _fs;
    private readonly IChannelControl _channels;
    private readonly JournalStore _journal;
    private readonly KnobWriter _writer;
    private readonly HugepagesRaiseOptions _hugepagesRaise = new();

    public TuningEngine(IHostFileSystem fs, IChannelControl channels, JournalStore journal, bool planOnly = false)
    {
        _fs = fs;
        _channels = channels;
        _journal = journal;
        _writer = new KnobWriter(fs, channels);
        PlanOnly = planOnly;
    }

    /// <summary>
    /// Never write to the host, whatever the spec says: every apply is a dry run and a revert is refused. For an
    /// agent pointed at a host nobody wants changed (the demo's own machine).
    /// </summary>
    public bool PlanOnly { get; }

    public HostSnapshot Discover() => new TopologyDiscovery(_fs, _channels).Discover();

    /// <summary>Plans against the host as it is now, without changing anything (also the drift check).</summary>
    public (HostSnapshot Host, TuningPlan Plan) PlanNow(NodeStateSpec spec)
    {
        var host = WithNetNamespaceMode(Discover());
        return (host, TuningPlanner.Plan(host, spec));
    }

    /// <summary>
    /// Net sysctls go to the agent's own network namespace, whatever the host's is: for an agent run on purpose inside
    /// a namespace (ip netns exec in the kernel tests). Without it, the agent writes net sysctls only when its
    /// namespace is the host's.
    /// </summary>
    public bool TuneOwnNetNamespace { get; init; }

    /// <summary>
    /// Asked after the NIC knobs of a run changed: does the node still reach the API server? Null: nobody to ask
    /// (the once command, fixtures), so no check.
    /// </summary>
    public IConnectivityCheck? Connectivity { get; init; }

    /// <summary>How long the API server may stay unreachable after NIC changes before they are rolled back.</summary>
    public TimeSpan ConnectivityBound { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Step size and free-memory floor for raising hugepage pools.</summary>
    public HugepagesRaiseOptions HugepagesRaise
    {
        get => _hugepagesRaise;
        init
        {
            _hugepagesRaise = value;
            _writer = new KnobWriter(_fs, _channels, value);
        }
    }

    private HostSnapshot WithNetNamespaceMode(HostSnapshot host) =>
        TuneOwnNetNamespace ? host with { NetNamespace = new(true, "net sysctls go to the agent's own network namespace (--net-namespace own)") } : host;

    public RunReport Apply(NodeStateSpec spec, Action<HostSnapshot, TuningPlan>? planned = null)
    {
        TuningJournal journal;
        try
        {
            journal = _journal.Load();
        }
        catch (JournalCorruptException e)
        {
            return new RunReport(RunKind.JournalCorrupt, null, null, [], e.Message);
        }
        _writer.ForgetWrites();
        var errors = NetworkTuningValidator.Validate(spec);
        if (errors.Count > 0) return new RunReport(RunKind.InvalidSpec, null, null, [], string.Join("; ", errors));

        var (host, plan) = PlanNow(spec);
        planned?.Invoke(host, plan);
        if (spec.DryRun) return new RunReport(RunKind.DryRun, host, plan, [], $"{plan.Changes.Count} changes planned, none applied (dry run)");
        if (PlanOnly) return new RunReport(RunKind.DryRun, host, plan, [], $"{plan.Changes.Count} changes planned, none applied (the agent runs with --plan-only)");

        var results = new List<KnobResult>();
        var restored = results.Count;
        journal = RestoreNoLongerWanted(journal, host, plan, results);
        // Channels put back rebuild the queues: plan against what is there now, so queue originals are read afresh.
        if (results.Skip(restored).Any(r => r.Knob.EndsWith("/channels", StringComparison.Ordinal))) (host, plan) = PlanNow(spec);

        var channelsChanged = false;
        for (var phase = 0; phase <= 4; phase++)
        {
            if (phase == 1 && channelsChanged)
            {
                // The kernel rebuilt the queues (and drivers may have reallocated IRQs): plan the rest against what is there now.
                (host, plan) = PlanNow(spec);
            }
            var knobs = plan.Desired.Where(d => d.Phase == phase).ToArray();
            var recordable = knobs.Where(d => d.NeedsChange && d.Current is not null && !journal.Contains(d.Knob))
                .Select(d => new JournalEntry(d.Knob, d.Kind, d.Path, d.Current!, d.Identity)).ToList();
            if (phase == 0) recordable.AddRange(QueueSettingsLostToChannels(host, knobs));
            if (recordable.Count > 0)
            {
                journal = journal.With(recordable);
                try
                {
                    _journal.Save(journal);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Without its original on disk a knob must not change: stop here, with what is done so far.
                    results.Add(new KnobResult { Knob = "journal", Result = KnobOutcome.Failed, Message = $"cannot save the journal {_journal.FilePath}: {e.Message}" });
                    return new RunReport(RunKind.Failed, Discover(), plan, results, $"cannot save the journal {_journal.FilePath}: {e.Message}; no further knob was changed");
                }
            }
            foreach (var d in knobs)
            {
                KnobResult r;
                if (!d.NeedsChange) r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Applied, Value = d.Current };
                else if (d.Current is null && d.Phase == 1 && !_fs.Exists(d.Path))
                    r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Skipped, Message = $"{d.Path} does not exist: the NIC does not have the channels this queue needs" };
                else if (d.Current is null) r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Failed, Message = $"cannot read {d.Path}; left unchanged since its original could not be journaled" };
                else r = _writer.Write(d.Knob, d.Kind, d.Path, d.Target, d.Identity);
                if (d.Kind == KnobKind.Channels && d.NeedsChange && r.Result == KnobOutcome.Applied) channelsChanged = true;
                results.Add(r);
            }
        }
        if (RollBackIfCutOff(results, plan) is { } rolledBack) return rolledBack;
        foreach (var note in plan.Notes)
            results.Add(new KnobResult { Knob = note.Knob, Result = note.Outcome, Message = note.Message });

        var failed = results.Where(r => r.Result is KnobOutcome.Failed or KnobOutcome.Shortfall).ToArray();
        var finalHost = Discover();
        return failed.Length == 0
            ? new RunReport(RunKind.Applied, finalHost, plan, results, $"{results.Count(r => r.Result == KnobOutcome.Applied)} knobs at their targets")
            : new RunReport(RunKind.Failed, finalHost, plan, results, $"{failed.Length} knobs failed: " + string.Join("; ", failed.Take(5).Select(f => $"{f.Knob}: {f.Message}")));
    }

    /// <summary>Puts back every journaled original, channels first so the queues exist again before their settings return.</summary>
    public RunReport Revert()
    {
        TuningJournal journal;
        try
        {
            journal = _journal.Load();
        }
        catch (JournalCorruptException e)
        {
            return new RunReport(RunKind.JournalCorrupt, null, null, [], e.Message);
        }
        if (PlanOnly)
        {
            // Nothing journaled means nothing was changed here: the revert is complete as it stands, and
            // saying so lets the operator finish a deletion at once instead of waiting out its timeout.
            return journal.Entries.Count == 0
                ? new RunReport(RunKind.Reverted, Discover(), null, [],
                    "nothing to restore: the journal holds no originals (the agent runs with --plan-only and changed nothing)")
                : new RunReport(RunKind.RevertFailed, null, null, [],
                    "revert refused: the agent runs with --plan-only and writes nothing to this host; the originals an earlier agent journaled are left as they are");
        }
        var results = new List<KnobResult>();
        foreach (var phase in journal.Entries.Select(e => KnobValues.Phase(e.Kind)).Distinct().Order().ToArray())
        {
            var done = new List<string>();
            foreach (var e in journal.Entries.Where(e => KnobValues.Phase(e.Kind) == phase))
            {
                var r = RestoreEntry(e, queueMustExist: false);
                results.Add(r);
                if (r.Result != KnobOutcome.Failed) done.Add(e.Knob);
            }
            journal = journal.Without(done);
            try
            {
                if (journal.Entries.Count > 0) _journal.Save(journal);
                else _journal.Delete();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The values are back; the old journal still lists them, so the next revert writes them again: harmless.
                return new RunReport(RunKind.RevertFailed, Discover(), null, results, $"restored, but cannot update the journal {_journal.FilePath}: {e.Message}");
            }
        }
        if (journal.Entries.Count == 0) _journal.Delete();
        var failed = results.Where(r => r.Result == KnobOutcome.Failed).ToArray();
        return failed.Length == 0
            ? new RunReport(RunKind.Reverted, Discover(), null, results, $"{results.Count} knobs restored to their journaled originals")
            : new RunReport(RunKind.RevertFailed, Discover(), null, results, $"{failed.Length} knobs could not be restored: " + string.Join("; ", failed.Take(5).Select(f => $"{f.Knob}: {f.Message}")));
    }

    private KnobResult RestoreEntry(JournalEntry e, bool queueMustExist)
    {
        if (e.Kind is KnobKind.RpsCpus or KnobKind.RpsFlowCount or KnobKind.XpsCpus && !_fs.Exists(e.Path))
        {
            // The queue went with a channel change the agent did not make; its setting went with it.
            return new KnobResult { Knob = e.Knob, Result = queueMustExist ? KnobOutcome.Failed : KnobOutcome.Reverted, Message = $"{e.Path} no longer exists" };
        }
        var r = _writer.Write(e.Knob, e.Kind, e.Path, e.Original, e.Identity);
        return r.Result == KnobOutcome.Applied ? new KnobResult { Knob = e.Knob, Result = KnobOutcome.Reverted, Value = r.Value, Message = r.Message } : r;
    }

    /// <summary>
    /// After a run that changed NIC knobs: when the node cannot reach the API server within the bound, every NIC knob
    /// this run wrote goes back to its journaled original (channels first, then the queue settings of those NICs, then
    /// IRQs), and the report says so. The checkpoint-and-rollback of kubernetes-nmstate: a change that cuts the node
    /// off undoes itself instead of waiting for a human. What was written is taken from the writer, so it holds
    /// however the phases are ordered.
    /// </summary>
    private RunReport? RollBackIfCutOff(List<KnobResult> results, TuningPlan plan)
    {
        var written = _writer.Written.Where(p => KnobValues.Phase(KnobWriter.KindOfPath(p)) <= KnobValues.Phase(KnobKind.IrqAffinity)).ToHashSet(StringComparer.Ordinal);
        if (Connectivity is null || written.Count == 0) return null;
        var (reachable, detail) = Connectivity.WaitUntilReachable(ConnectivityBound);
        if (reachable) return null;

        var journal = _journal.Load();
        // A NIC whose channels changed got new queues: every queue setting journaled for it goes back too.
        var queuesOf = written.Where(p => p.StartsWith("ethtool:", StringComparison.Ordinal)).Select(p => $"sys/class/net/{p["ethtool:".Length..]}/queues/").ToArray();
        var undo = journal.Entries.Where(e => written.Contains(e.Path) || (KnobValues.Phase(e.Kind) == 1 && queuesOf.Any(q => e.Path.StartsWith(q, StringComparison.Ordinal))))
            .OrderBy(e => KnobValues.Phase(e.Kind)).ToArray();
        var done = new List<JournalEntry>();
        var undone = new List<KnobResult>();
        foreach (var e in undo)
        {
            var r = RestoreEntry(e, queueMustExist: false);
            undone.Add(r);
            if (r.Result != KnobOutcome.Failed) done.Add(e);
        }
        journal = journal with { Entries = journal.Entries.Except(done).ToArray() };
        if (journal.Entries.Count > 0) _journal.Save(journal);
        else _journal.Delete();
        var (back, afterDetail) = Connectivity.WaitUntilReachable(ConnectivityBound);
        var undoneKnobs = undone.Select(u => u.Knob).ToHashSet(StringComparer.Ordinal);
        var report = results.Where(r => !undoneKnobs.Contains(r.Knob)).Concat(undone).ToList();
        var failed = undone.Count(u => u.Result == KnobOutcome.Failed);
        return new RunReport(RunKind.RolledBack, Discover(), plan, report,
            $"the API server was unreachable for {ConnectivityBound.TotalSeconds:0} s after {written.Count} NIC changes ({detail}); " +
            $"rolled them back from the journal ({done.Count} knobs{(failed > 0 ? $", {failed} could not be restored" : "")}; hugepages and sysctls are kept); " +
            (back ? "the API server is reachable again" : $"the API server is still unreachable ({afterDetail})") +
            "; this generation is not applied again until the spec changes");
    }

    /// <summary>Knobs an earlier spec changed that this one no longer wants go back to their originals.</summary>
    private TuningJournal RestoreNoLongerWanted(TuningJournal journal, HostSnapshot host, TuningPlan plan, List<KnobResult> results)
    {
        var wanted = plan.Desired.Select(d => d.Knob).Concat(plan.Notes.Select(n => n.Knob)).ToHashSet(StringComparer.Ordinal);
        // A queue setting journaled because a channel change removed its queue waits for the channels' own revert,
        // as long as the agent still holds that NIC's channels (someone else may have grown them back meanwhile).
        var stale = journal.Entries.Where(e => !wanted.Contains(e.Knob) && !WaitsForChannelRevert(e, journal, wanted))
            .OrderBy(e => KnobValues.Phase(e.Kind)).ToArray();
        if (stale.Length == 0) return journal;
        var done = new List<string>();
        foreach (var e in stale)
        {
            var r = RestoreEntry(e, queueMustExist: false);
            results.Add(r);
            if (r.Result != KnobOutcome.Failed) done.Add(e.Knob);
        }
        journal = journal.Without(done);
        if (journal.Entries.Count > 0) _journal.Save(journal);
        else _journal.Delete();
        return journal;
    }

    private bool WaitsForChannelRevert(JournalEntry e, TuningJournal journal, HashSet<string> wanted)
    {
        if (KnobValues.Phase(e.Kind) != 1) return false;
        if (!_fs.Exists(e.Path)) return true;
        if (e.LostWithChannels != true) return false;
        var parts = e.Knob.Split('/');
        var channels = parts.Length > 1 ? $"nic/{parts[1]}/channels" : "";
        return journal.Contains(channels) && wanted.Contains(channels);
    }

    /// <summary>
    /// A channel change that shrinks a NIC takes the settings of the removed queues with it; journal them too, so a
    /// revert that grows the NIC back can restore them exactly.
    /// </summary>
    private static IEnumerable<JournalEntry> QueueSettingsLostToChannels(HostSnapshot host, IEnumerable<DesiredKnob> channelKnobs)
    {
        foreach (var k in channelKnobs.Where(k => k.Kind == KnobKind.Channels && k.NeedsChange))
        {
            var nic = host.Nics.FirstOrDefault(n => $"nic/{n.Name}/channels" == k.Knob);
            if (nic is null || !ChannelCounts.TryParse(k.Target, out var target)) continue;
            var dir = $"sys/class/net/{nic.Name}/queues";
            foreach (var q in nic.RxQueues.Where(q => q.Index >= target.Combined + target.Rx))
            {
                if (q.RpsCpus is not null) yield return new JournalEntry($"nic/{nic.Name}/rx-{q.Index}/rps_cpus", KnobKind.RpsCpus, $"{dir}/rx-{q.Index}/rps_cpus", q.RpsCpus, LostWithChannels: true);
                if (q.RpsFlowCnt is not null) yield return new JournalEntry($"nic/{nic.Name}/rx-{q.Index}/rps_flow_cnt", KnobKind.RpsFlowCount, $"{dir}/rx-{q.Index}/rps_flow_cnt", q.RpsFlowCnt, LostWithChannels: true);
            }
            foreach (var q in nic.TxQueues.Where(q => q.Index >= target.Combined + target.Tx && q.XpsCpus is not null))
                yield return new JournalEntry($"nic/{nic.Name}/tx-{q.Index}/xps_cpus", KnobKind.XpsCpus, $"{dir}/tx-{q.Index}/xps_cpus", q.XpsCpus!, LostWithChannels: true);
        }
    }
}
