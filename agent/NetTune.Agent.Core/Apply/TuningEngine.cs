using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Seccomp;
using NetTune.Agent.Core.Status;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;
using NetTune.Api.Validation;

namespace NetTune.Agent.Core.Apply;

public enum RunKind { Applied, Failed, DryRun, InvalidSpec, JournalCorrupt, Reverted, RevertFailed, RolledBack }

/// <summary>What one apply or revert did.</summary>
public sealed record RunReport(RunKind Kind, HostSnapshot? Host, TuningPlan? Plan, IReadOnlyList<KnobResult> Knobs, string? Message)
{
    /// <summary>The journal came from another boot: the kernel had its defaults again and the tuning was applied anew.</summary>
    public bool AfterReboot { get; init; }

    /// <summary>
    /// The API server did not answer before this run's NIC changes, or still did not after they were rolled back: an
    /// outage that was not the change's doing. The NIC knobs were not changed (or were put back) and are tried again.
    /// </summary>
    public bool ApiServerOutage { get; init; }

    /// <summary>Whether the whole apply is worth another try at the next drift interval: failed knobs, or an outage that held NIC changes back.</summary>
    public bool Retry => Kind == RunKind.Failed || ApiServerOutage;

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
    private IReadOnlyDictionary<string, DateTime> _hold = new Dictionary<string, DateTime>();
    private IReadOnlyDictionary<string, FailureHold> _failing = new Dictionary<string, FailureHold>();

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

    /// <summary>How long a NIC whose link was up may take to come back after its channels change before the change is undone.</summary>
    public TimeSpan LinkWait { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The journal this engine records originals in (and the agent its hugepages Shortfall tries).</summary>
    public JournalStore Journal => _journal;

    public HostSnapshot Discover() => new TopologyDiscovery(_fs, _channels) { KubeletRootDir = KubeletRootDir, ReadSettingsOf = _readSettingsOf }.Discover();

    /// <summary>The NICs of the last spec planned: only theirs rings, coalescing, pause and features are read (and shown in status).</summary>
    private Func<string, string?, bool> _readSettingsOf = (_, _) => false;

    /// <summary>The kubelet's root dir on the host (its CPU manager checkpoint tells which CPUs are containers' exclusively).</summary>
    public string KubeletRootDir { get; init; } = KubeletCpuAssignment.DefaultKubeletRootDir;

    /// <summary>The kubelet's exclusive CPU assignment as it is now: cheap (one small file), for watching it between runs.</summary>
    public KubeletCpuAssignment KubeletCpus() => new HostFactsDiscovery(_fs).KubeletCpus(KubeletRootDir);

    /// <summary>Plans against the host as it is now, without changing anything (also the drift check).</summary>
    public (HostSnapshot Host, TuningPlan Plan) PlanNow(NodeStateSpec spec)
    {
        var selector = spec.Nic?.Interfaces;
        _readSettingsOf = (name, driver) => InterfaceMatcher.Matches(selector, name, driver);
        var host = WithNetNamespaceMode(Discover());
        var plan = TuningPlanner.Plan(host, spec);
        if (SeccompProfilePath is { } path)
            plan = plan with { Desired = [.. plan.Desired, new DesiredKnob(SeccompKnob, KnobKind.SeccompProfile, path, SeccompProfileFile.Value(HostPath(path)), SeccompProfileFile.Fingerprint(_profileJson))] };
        return (host, plan);
    }

    /// <summary>The knob of NetTune's seccomp profile in plans, results and the journal.</summary>
    public const string SeccompKnob = "seccomp/" + SeccompProfiles.NetTuneLocalhostProfile;

    /// <summary>
    /// Where NetTune's seccomp profile for the data-plane pods goes, relative to the host root (under the kubelet's
    /// seccomp folder; see <see cref="DataPlaneSeccompProfile.HostPath"/>); null: none is installed. Installed by every
    /// apply after the other knobs and removed by the revert, so it exists before the operator makes the pods that
    /// name it (it makes them once the node reports Applied).
    /// </summary>
    public string? SeccompProfilePath { get; init; }

    private readonly string _profileJson = DataPlaneSeccompProfile.Json();

    private string HostPath(string path) => Path.Join(_fs.Root, path);

    private KnobResult WriteProfile(string knob, string path, string target)
    {
        var full = HostPath(path);
        var error = target == SeccompProfileFile.Absent ? SeccompProfileFile.Remove(full) : SeccompProfileFile.Install(full, _profileJson);
        var value = SeccompProfileFile.Value(full);
        if (error is not null) return new KnobResult { Knob = knob, Result = KnobOutcome.Failed, Value = value, Message = $"{(target == SeccompProfileFile.Absent ? "remove" : "write")} {path}: {error}" };
        return value == target
            ? new KnobResult { Knob = knob, Result = KnobOutcome.Applied, Value = value }
            : new KnobResult { Knob = knob, Result = KnobOutcome.Failed, Value = value, Message = $"wrote {path} but read back {value ?? "nothing"}" };
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

    /// <summary>How long the API server may take to answer before a run's NIC changes; when it does not, they wait for the next run.</summary>
    public TimeSpan ConnectivityPrecheckBound { get; init; } = TimeSpan.FromSeconds(5);

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


    /// <param name="hold">Knobs not to set back until the given time (drift back-off): reported Skipped.</param>
    /// <param name="givenUp">Hugepage pools whose Shortfall is not retried (see ShortfallRetries): left as they are and
    /// reported Shortfall with the given message.</param>
    /// <param name="failing">Knobs whose writes kept failing (see Status.FailureBackoff): not written until the given
    /// time, and reported Failed with the error they last failed with.</param>
    public RunReport Apply(NodeStateSpec spec, Action<HostSnapshot, TuningPlan>? planned = null, IReadOnlyDictionary<string, DateTime>? hold = null,
        IReadOnlyDictionary<string, string>? givenUp = null, IReadOnlyDictionary<string, FailureHold>? failing = null)
    {
        _hold = hold ?? new Dictionary<string, DateTime>();
        _failing = failing ?? new Dictionary<string, FailureHold>();
        givenUp ??= new Dictionary<string, string>();
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
        if (spec.DryRun) return Preview(host, plan, "none applied (dry run)");
        if (PlanOnly) return Preview(host, plan, "none applied (the agent runs with --plan-only)");

        // A journal from another boot: none of the knobs survives a reboot, so every one of them is at the value this
        // boot began with (its kernel command line, its boot scripts), and that is what a revert must give back, not
        // the previous boot's. The old originals go; this run records the current values as it changes them.
        var boot = host.BootId;
        var afterReboot = IsFromAnotherBoot(journal, boot);
        if (afterReboot)
        {
            journal = TuningJournal.Empty;
            try
            {
                _journal.Delete();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return new RunReport(RunKind.Failed, host, plan, [], $"cannot drop the previous boot's journal {_journal.FilePath}: {e.Message}; nothing was changed");
            }
        }
        journal = journal with { BootId = boot ?? journal.BootId, AppliedBootId = boot is null ? null : journal.AppliedBootId };

        // The rollback below tells "this change cut the node off" by the API server not answering after it; that
        // means nothing when it did not answer before either. NIC changes then wait until it answers again.
        string? unreachableBefore = null;
        if (Connectivity is not null && ChangesNics(journal, plan))
        {
            var (reachable, detail) = Connectivity.WaitUntilReachable(ConnectivityPrecheckBound);
            if (!reachable) unreachableBefore = detail;
        }

        var results = new List<KnobResult>();
        var restored = results.Count;
        journal = RestoreNoLongerWanted(journal, host, plan, results, nics: unreachableBefore is null);
        // Channels put back rebuild the queues: plan against what is there now, so queue originals are read afresh.
        if (results.Skip(restored).Any(r => r.Knob.EndsWith("/channels", StringComparison.Ordinal) && r.Result == KnobOutcome.Reverted)) (host, plan) = PlanNow(spec);

        for (var phase = KnobValues.ChannelPhase; phase <= KnobValues.LastPhase; phase++)
        {
            if (unreachableBefore is not null && phase <= NicPhase)
            {
                results.AddRange(plan.Desired.Where(d => d.Phase == phase).Select(d => d.NeedsChange
                    ? new KnobResult
                    {
                        Knob = d.Knob, Result = KnobOutcome.Failed, Value = d.Current,
                        Message = $"not changed yet: the API server did not answer before the change ({unreachableBefore}), so a rollback could not tell whether the change cut the node off; changed once it answers",
                    }
                    : new KnobResult { Knob = d.Knob, Result = KnobOutcome.Applied, Value = d.Current }));
                continue;
            }
            if (phase == KnobValues.ChannelPhase)
            {
                var channelResult = ApplyChannels(spec, journal, host, plan, results);
                if (channelResult.Failed is not null) return channelResult.Failed;
                (journal, host, plan) = (channelResult.Journal, channelResult.Host, channelResult.Plan);
                continue;
            }
            if (phase == KnobValues.NicSettingPhase)
            {
                var settingsResult = ApplyNicSettings(spec, journal, host, plan, results);
                if (settingsResult.Failed is not null) return settingsResult.Failed;
                (journal, host, plan) = (settingsResult.Journal, settingsResult.Host, settingsResult.Plan);
                continue;
            }
            var knobs = plan.Desired.Where(d => d.Phase == phase).ToArray();
            // NetTune's profile is journaled as absent even when it is there already: its folder is NetTune's, so a file
            // found there is an earlier agent's, and the revert removes it.
            var recordable = knobs.Where(d => (d.NeedsChange || d.Kind == KnobKind.SeccompProfile) && d.Current is not null && !journal.Contains(JournalKeys.Of(d)))
                .Select(d => new JournalEntry(d.Knob, d.Kind, d.Path, d.Kind == KnobKind.SeccompProfile ? SeccompProfileFile.Absent : d.Current!, d.Identity)).ToList();
            if (recordable.Count > 0 && SaveOrFail(journal = journal.With(recordable), plan, results) is { } saveFailed) return saveFailed;
            foreach (var d in knobs)
            {
                KnobResult r;
                if (!d.NeedsChange) r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Applied, Value = d.Current };
                else if (Held(d) is { } held) r = held;
                else if (givenUp.TryGetValue(d.Knob, out var why)) r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Shortfall, Value = d.Current, Message = why };
                else if (d.Current is null && d.Phase == KnobValues.QueuePhase && !_fs.Exists(d.Path))
                    r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Skipped, Message = $"{d.Path} does not exist: the NIC does not have the channels this queue needs" };
                else if (d.Current is null) r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Failed, Message = $"cannot read {d.Path}; left unchanged since its original could not be journaled" };
                else if (d.Kind == KnobKind.SeccompProfile) r = WriteProfile(d.Knob, d.Path, d.Target);
                else r = _writer.Write(d.Knob, d.Kind, d.Path, d.Target, d.Identity);
                results.Add(r);
            }
        }
        if (RollBackIfCutOff(results, plan) is { } rolledBack) return rolledBack;
        foreach (var note in plan.Notes)
            results.Add(new KnobResult { Knob = note.Knob, Result = note.Outcome, Message = note.Message });

        var failed = results.Where(r => r.Result is KnobOutcome.Failed or KnobOutcome.Shortfall).ToArray();
        var applied = results.Where(r => r.Result == KnobOutcome.Applied).Select(r => r.Knob).ToHashSet(StringComparer.Ordinal);
        StampBoot(boot, failed.Length == 0 ? boot : null, failed.Length > 0 ? null
            : plan.Desired.Where(d => d.Kind == KnobKind.Hugepages && applied.Contains(d.Knob)).Select(d => new ReservedHugepages(d.Knob, d.Path, d.Target)).ToArray());
        var finalHost = Discover();
        var rebootNote = afterReboot ? $"; applied again after a reboot (boot {boot}), with this boot's values as the originals to restore" : "";
        if (unreachableBefore is not null)
            return new RunReport(RunKind.Failed, finalHost, plan, results,
                $"the API server did not answer before the NIC changes ({unreachableBefore}): {failed.Length} NIC knobs wait until it does, so that a rollback can tell whether a change cut the node off; the other knobs were applied{rebootNote}")
                { AfterReboot = afterReboot, ApiServerOutage = true };
        return failed.Length == 0
            ? new RunReport(RunKind.Applied, finalHost, plan, results, $"{results.Count(r => r.Result == KnobOutcome.Applied)} knobs at their targets{rebootNote}") { AfterReboot = afterReboot }
            : new RunReport(RunKind.Failed, finalHost, plan, results, $"{failed.Length} knobs failed: " + string.Join("; ", failed.Take(5).Select(f => $"{f.Knob}: {f.Message}")) + rebootNote) { AfterReboot = afterReboot };
    }

    /// <summary>
    /// A plan shown without applying it: the changes, and for every knob the planner could not plan the reason, as that
    /// knob's result and in the message, so a preview of an impossible request says why it plans nothing.
    /// </summary>
    public static RunReport Preview(HostSnapshot host, TuningPlan plan, string? applied = null)
    {
        var notPlanned = plan.Notes.Select(n => new KnobResult { Knob = n.Knob, Result = n.Outcome, Message = n.Message }).ToArray();
        var message = $"{plan.Changes.Count} changes planned" + (applied is null ? "" : $", {applied}");
        if (notPlanned.Length > 0)
            message += $"; {notPlanned.Length} knobs not planned: " + string.Join("; ", notPlanned.Take(5).Select(n => $"{n.Knob}: {n.Message}"))
                + (notPlanned.Length > 5 ? $"; … ({notPlanned.Length - 5} more in the knob results)" : "");
        return new RunReport(RunKind.DryRun, host, plan, notPlanned, message);
    }

    /// <summary>
    /// Whether the journal was last saved in another boot than <paramref name="boot"/>. Every change is journaled (with
    /// the boot) before it is made, so such a journal holds nothing this boot changed. Unknown boots (a format-1
    /// journal, a host without a boot id) count as this one: the originals are then all there is.
    /// </summary>
    private static bool IsFromAnotherBoot(TuningJournal journal, string? boot) =>
        journal.BootId is not null && boot is not null && journal.BootId != boot;

    /// <summary>
    /// Records in the journal whether this boot has the tuning applied, and the hugepage pools it reserved (null: as
    /// they were); a journal without entries is not kept, so it says nothing.
    /// </summary>
    private void StampBoot(string? boot, string? appliedBoot, IReadOnlyList<ReservedHugepages>? reserved)
    {
        var onDisk = _journal.Load();
        var stamped = onDisk with { BootId = boot ?? onDisk.BootId, AppliedBootId = appliedBoot, ReservedHugepages = reserved ?? onDisk.ReservedHugepages };
        if (onDisk.Entries.Count == 0 || (onDisk.BootId == stamped.BootId && onDisk.AppliedBootId == appliedBoot
            && (onDisk.ReservedHugepages ?? []).SequenceEqual(stamped.ReservedHugepages ?? []))) return;
        try
        {
            _journal.Save(stamped);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only readiness after an agent restart depends on it: the next apply stamps it again.
        }
    }

    /// <summary>
    /// Early in an agent's start after a reboot: the hugepage pools the previous boot reserved at run time (see
    /// <see cref="TuningJournal.ReservedHugepages"/>) are reserved again at once, before the first apply asks for the
    /// kubelet restart that makes them allocatable, and before memory fragments. The previous boot's journal goes (its
    /// originals are not this boot's); this boot's values are journaled as the originals. Null when there is nothing to
    /// do: no reboot, nothing reserved, a plan-only agent. With the kubelet's Static Memory Manager nothing is changed
    /// at run time: the pages belong on the kernel command line.
    /// </summary>
    public RunReport? ReserveHugepagesAfterReboot()
    {
        if (PlanOnly) return null;
        TuningJournal journal;
        try
        {
            journal = _journal.Load();
        }
        catch (JournalCorruptException)
        {
            return null; // the first apply reports it
        }
        var host = Discover();
        if (!IsFromAnotherBoot(journal, host.BootId) || journal.ReservedHugepages is not { Count: > 0 } pools) return null;
        if (host.KubeletMemoryManager.Static)
            return new RunReport(RunKind.Failed, host, null, [], $"not reserved again after the reboot: the kubelet's Memory Manager runs the Static policy " +
                $"({host.KubeletMemoryManager.Source}); reserve the pages on the kernel command line: " +
                HugepagesPlanner.BootCommandLine(pools.Select(p => (NodeOf(p.Knob), SizeOf(p.Knob), long.Parse(p.Pages, System.Globalization.CultureInfo.InvariantCulture)))));
        var values = new TopologyDiscovery(_fs, _channels);
        var originals = pools.Select(p => (Pool: p, Current: values.Value(p.Path))).Where(p => p.Current is not null).ToArray();
        var fresh = TuningJournal.Empty.With(originals.Select(p => new JournalEntry(p.Pool.Knob, KnobKind.Hugepages, p.Pool.Path, p.Current!)))
            with { BootId = host.BootId, ReservedHugepages = pools };
        try
        {
            _journal.Save(fresh);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new RunReport(RunKind.Failed, host, null, [], $"cannot journal this boot's hugepage pools in {_journal.FilePath}: {e.Message}; nothing was reserved");
        }
        var results = originals.Select(p => _writer.Write(p.Pool.Knob, KnobKind.Hugepages, p.Pool.Path, p.Pool.Pages, null)).ToList();
        results.AddRange(pools.Where(p => originals.All(o => o.Pool != p))
            .Select(p => new KnobResult { Knob = p.Knob, Result = KnobOutcome.Failed, Message = $"cannot read {p.Path}" }));
        var failed = results.Where(r => r.Result != KnobOutcome.Applied).ToArray();
        return new RunReport(failed.Length == 0 ? RunKind.Applied : RunKind.Failed, Discover(), null, results,
            $"after a reboot (boot {host.BootId}): reserved the {pools.Count} hugepage pools of the previous boot again" +
            (failed.Length == 0 ? "" : $"; {failed.Length} fell short or failed: " + string.Join("; ", failed.Select(f => $"{f.Knob}: {f.Message}"))))
            { AfterReboot = true };

        static int NodeOf(string knob) => int.Parse(knob.Split('/')[1]["node".Length..], System.Globalization.CultureInfo.InvariantCulture);
        static string SizeOf(string knob) => knob.Split('/')[2];
    }

    /// <summary>
    /// Whether the current boot has this node's tuning applied, as the journal last said: false after a reboot (a new
    /// boot id), after a failed apply, and when there is no journal (a fresh agent proves it by applying).
    /// </summary>
    public bool TunedThisBoot()
    {
        try
        {
            var journal = _journal.Load();
            var boot = new TopologyDiscovery(_fs, _channels).BootId();
            return journal.Entries.Count > 0 && boot is not null && journal.AppliedBootId == boot;
        }
        catch (JournalCorruptException)
        {
            return false;
        }
    }

    /// <summary>How many originals the journal holds: knobs changed and not yet restored (0 without a journal; a damaged one counts as -1).</summary>
    public int JournaledChanges()
    {
        try
        {
            return _journal.Load().Entries.Count;
        }
        catch (JournalCorruptException)
        {
            return -1;
        }
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
        if (journal.Entries.Count > 0 && IsFromAnotherBoot(journal, new TopologyDiscovery(_fs, _channels).BootId()))
        {
            // The reboot already put every knob back to what this boot began with; the previous boot's originals
            // would undo this boot's own settings (hugepages reserved at boot, say).
            if (PlanOnly)
                return new RunReport(RunKind.Reverted, Discover(), null, [], "nothing to restore: the journal is from a previous boot and this boot was never tuned");
            try
            {
                _journal.Delete();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return new RunReport(RunKind.RevertFailed, Discover(), null, [], $"cannot remove the previous boot's journal {_journal.FilePath}: {e.Message}");
            }
            return new RunReport(RunKind.Reverted, Discover(), null, [],
                $"nothing to restore: the journal's {journal.Entries.Count} originals are from a previous boot (boot {journal.BootId}); this boot was never tuned, every knob has the value it began with");
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
        foreach (var phase in journal.Entries.Select(e => KnobValues.RestorePhase(e.Kind)).Distinct().Order().ToArray())
        {
            var done = new List<string>();
            foreach (var e in journal.Entries.Where(e => KnobValues.RestorePhase(e.Kind) == phase))
            {
                var r = RestoreEntry(e, queueMustExist: false);
                results.Add(r);
                if (r.Result != KnobOutcome.Failed) done.Add(e.Key);
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
        if (e.Kind == KnobKind.Channels)
        {
            var nic = e.Path["ethtool:".Length..];
            var operBefore = OperState(nic);
            var c = _writer.Write(e.Knob, e.Kind, e.Path, e.Original, e.Identity);
            if (c.Result != KnobOutcome.Applied) return c;
            // One NIC at a time here too: the next one changes only once this link is back (or the wait ran out).
            return WaitForLink(nic, operBefore)
                ? new KnobResult { Knob = e.Knob, Result = KnobOutcome.Reverted, Value = c.Value }
                : new KnobResult { Knob = e.Knob, Result = KnobOutcome.Reverted, Value = c.Value, Message = $"restored, but the link of {nic} did not come back within {LinkWait.TotalSeconds:0.#} s" };
        }
        if (e.Kind == KnobKind.SeccompProfile)
        {
            var p = WriteProfile(e.Knob, e.Path, e.Original);
            return p.Result == KnobOutcome.Applied ? new KnobResult { Knob = e.Knob, Result = KnobOutcome.Reverted, Value = p.Value } : p;
        }
        // An IRQ is found by its name: the driver may have given it a new number when the channels changed back.
        var path = ResolveIrqPath(e) ?? e.Path;
        var r = _writer.Write(e.Knob, e.Kind, path, e.Original, e.Identity);
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
        var changedNics = written.Where(p => p.StartsWith("ethtool:", StringComparison.Ordinal) || p.StartsWith("ethtool-rings:", StringComparison.Ordinal))
            .Select(p => p[(p.IndexOf(':') + 1)..]).ToHashSet(StringComparer.Ordinal);
        var queuesOf = changedNics.Select(n => $"sys/class/net/{n}/queues/").ToArray();
        // ...and so does everything journaled of it before its channels changed (its IRQs too: the driver reset them).
        var undo = journal.Entries.Where(e => written.Contains(e.Path)
                || (KnobValues.Phase(e.Kind) == KnobValues.QueuePhase && queuesOf.Any(q => e.Path.StartsWith(q, StringComparison.Ordinal)))
                || (e.BeforeChannels == true && e.Nic is { } nic && changedNics.Contains(nic)))
            .OrderBy(e => KnobValues.RestorePhase(e.Kind)).ToArray();
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
        var rolledBack = $"the API server was unreachable for {ConnectivityBound.TotalSeconds:0} s after {written.Count} NIC changes ({detail}); " +
            $"rolled them back from the journal ({done.Count} knobs{(failed > 0 ? $", {failed} could not be restored" : "")}; hugepages and sysctls are kept); ";
        // Answering again once the changes are undone is what convicts them. Still silent after the rollback, the API
        // server went down by itself (it answered before the changes): they are made again once it answers.
        return back
            ? new RunReport(RunKind.RolledBack, Discover(), plan, report, rolledBack + "the API server is reachable again; this generation is not applied again until the spec changes")
            : new RunReport(RunKind.RolledBack, Discover(), plan, report, rolledBack +
                $"the API server is still unreachable without them ({afterDetail}), so they are not taken for the cause: they are made again once it answers")
                { ApiServerOutage = true };
    }

    /// <summary>NIC knobs (channels, rings and the other ethtool settings, queue settings, IRQ affinity) come before hugepages and sysctls; only they can cut the node off.</summary>
    private const int NicPhase = KnobValues.IrqPhase;

    /// <summary>Whether this run would write a NIC knob: a planned change, or one the spec no longer wants going back.</summary>
    private static bool ChangesNics(TuningJournal journal, TuningPlan plan)
    {
        if (plan.Desired.Any(d => d.Phase <= NicPhase && d.NeedsChange)) return true;
        var wanted = Wanted(plan);
        return journal.Entries.Any(e => KnobValues.Phase(e.Kind) <= NicPhase && !wanted.Contains(e.Key));
    }

    /// <summary>The journal keys of every knob the plan holds on to, changed or not.</summary>
    private static HashSet<string> Wanted(TuningPlan plan) =>
        plan.Desired.Select(JournalKeys.Of).Concat(plan.Notes.Select(n => n.Kind is { } k ? JournalKeys.Of(k, n.Knob, n.Identity) : n.Knob)).ToHashSet(StringComparer.Ordinal);

    /// <summary>Knobs an earlier spec changed that this one no longer wants go back to their originals (NIC knobs only when <paramref name="nics"/>).</summary>
    private TuningJournal RestoreNoLongerWanted(TuningJournal journal, HostSnapshot host, TuningPlan plan, List<KnobResult> results, bool nics)
    {
        var wanted = Wanted(plan);
        var stale = journal.Entries.Where(e => !wanted.Contains(e.Key) && (nics || KnobValues.Phase(e.Kind) > NicPhase)).OrderBy(e => KnobValues.RestorePhase(e.Kind)).ToArray();
        if (stale.Length == 0) return journal;
        var done = new List<string>();
        foreach (var e in stale)
        {
            var hold = HeldForChannelRevert(e, journal, wanted);
            if (hold == Hold.Wait) continue;
            if (hold == Hold.RestoreAndKeep)
            {
                // Restored now, and kept: the channel revert resets it again on drivers such as mlx5, and must restore it after.
                if (ResolveIrqPath(e) is { } p && !KnobValues.Same(e.Kind, new TopologyDiscovery(_fs, _channels).Value(p), e.Original))
                    results.Add(RestoreEntry(e, queueMustExist: false));
                continue;
            }
            var r = RestoreEntry(e, queueMustExist: false);
            results.Add(r);
            if (r.Result != KnobOutcome.Failed) done.Add(e.Key);
        }
        if (done.Count == 0) return journal;
        journal = journal.Without(done);
        if (journal.Entries.Count > 0) _journal.Save(journal);
        else _journal.Delete();
        return journal;
    }

    private enum Hold { No, Wait, RestoreAndKeep }

    /// <summary>
    /// Whether an entry the spec no longer wants must stay for the channel revert: as long as the agent still holds
    /// the NIC's channels, settings of queues or IRQs the change removed wait for it (someone else may have grown
    /// them back meanwhile), and settings read before the change are restored now but kept.
    /// </summary>
    private Hold HeldForChannelRevert(JournalEntry e, TuningJournal journal, HashSet<string> wanted)
    {
        var phase = KnobValues.Phase(e.Kind);
        if (phase is not (KnobValues.QueuePhase or KnobValues.IrqPhase)) return Hold.No;
        var nicName = e.Nic ?? (phase == KnobValues.QueuePhase && e.Knob.Split('/') is { Length: > 1 } parts ? parts[1] : null);
        var channels = nicName is null ? null : $"nic/{nicName}/channels";
        var rings = nicName is null ? null : $"nic/{nicName}/rings";
        var held = (channels is not null && journal.Contains(channels) && wanted.Contains(channels))
            || (rings is not null && journal.Contains(rings) && wanted.Contains(rings));
        var exists = phase == KnobValues.QueuePhase ? _fs.Exists(e.Path) : ResolveIrqPath(e) is not null && _fs.Exists(ResolveIrqPath(e)!);
        if (!exists) return phase == KnobValues.QueuePhase || held ? Hold.Wait : Hold.No;
        if (e.LostWithChannels == true) return held ? Hold.Wait : Hold.No;
        if (e.BeforeChannels == true && held) return Hold.RestoreAndKeep;
        return Hold.No;
    }

    private KnobResult? Held(DesiredKnob d)
    {
        if (_failing.TryGetValue(d.Knob, out var failing))
            return new KnobResult
            {
                Knob = d.Knob, Result = KnobOutcome.Failed, Value = d.Current,
                Message = $"not tried again until {failing.Until:yyyy-MM-ddTHH:mm:ssZ}: setting {d.Target} kept failing" + (failing.LastError is null ? "" : $" (last: {failing.LastError})"),
            };
        return _hold.TryGetValue(d.Knob, out var until)
            ? new KnobResult
            {
                Knob = d.Knob, Result = KnobOutcome.Skipped, Value = d.Current,
                Message = $"not set back to {d.Target}: something else keeps changing it; the agent backs off until {until:yyyy-MM-ddTHH:mm:ssZ}",
            }
            : null;
    }

    private RunReport? SaveOrFail(TuningJournal journal, TuningPlan plan, List<KnobResult> results)
    {
        try
        {
            _journal.Save(journal);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Without its original on disk a knob must not change: stop here, with what is done so far.
            results.Add(new KnobResult { Knob = "journal", Result = KnobOutcome.Failed, Message = $"cannot save the journal {_journal.FilePath}: {e.Message}" });
            return new RunReport(RunKind.Failed, Discover(), plan, results, $"cannot save the journal {_journal.FilePath}: {e.Message}; no further knob was changed");
        }
    }

    private sealed record ChannelPhase(TuningJournal Journal, HostSnapshot Host, TuningPlan Plan, RunReport? Failed);

    /// <summary>
    /// Rings, features, coalescing and pause, journaled before the first change of each. A ring or pause change that
    /// takes a link that was up down for longer than <see cref="LinkWait"/> is put back at once (ice, ENA and others
    /// restart the link for them). When anything changed, the rest is planned again against what the drivers left:
    /// a ring change rebuilds the queues on mlx5 and ENA, and the queue settings and IRQs after it are read anew.
    /// </summary>
    private ChannelPhase ApplyNicSettings(NodeStateSpec spec, TuningJournal journal, HostSnapshot host, TuningPlan plan, List<KnobResult> results)
    {
        var knobs = plan.Desired.Where(d => d.Phase == KnobValues.NicSettingPhase).ToArray();
        var recordable = knobs.Where(d => d.NeedsChange && d.Current is not null && !journal.Contains(JournalKeys.Of(d)))
            .Select(d => new JournalEntry(d.Knob, d.Kind, d.Path, d.Current!, d.Identity, Nic: NicOf(d.Path))).ToList();
        if (recordable.Count > 0 && SaveOrFail(journal = journal.With(recordable), plan, results) is { } saveFailed)
            return new ChannelPhase(journal, host, plan, saveFailed);
        var changed = false;
        var ringsChanged = false;
        foreach (var d in knobs)
        {
            KnobResult r;
            if (!d.NeedsChange) r = new KnobResult { Knob = d.Knob, Result = KnobOutcome.Applied, Value = d.Current };
            else if (Held(d) is { } held) r = held;
            else
            {
                var nic = NicOf(d.Path);
                // A ring change rebuilds the queues on mlx5 and ENA, and ENA requests its vectors anew with their default
                // affinity: what it may reset is journaled first, as for a channel change, and put back below.
                if (d.Kind == KnobKind.Rings && host.Nics.FirstOrDefault(n => n.Name == nic) is { } ringNic)
                {
                    var sideEffects = SnapshotBeforeChannels(ringNic, null).Where(e => !journal.Contains(e.Key)).ToList();
                    if (sideEffects.Count > 0 && SaveOrFail(journal = journal.With(sideEffects), plan, results) is { } snapFailed)
                        return new ChannelPhase(journal, host, plan, snapFailed);
                }
                var operBefore = d.Kind is KnobKind.Rings or KnobKind.Pause ? OperState(nic) : null;
                r = _writer.Write(d.Knob, d.Kind, d.Path, d.Target, d.Identity);
                changed |= r.Result != KnobOutcome.Skipped;
                ringsChanged |= d.Kind == KnobKind.Rings && r.Result != KnobOutcome.Skipped;
                if (r.Result == KnobOutcome.Applied && !WaitForLink(nic, operBefore))
                {
                    var back = _writer.Write(d.Knob, d.Kind, d.Path, d.Current!, d.Identity);
                    r = new KnobResult
                    {
                        Knob = d.Knob, Result = KnobOutcome.Failed, Value = back.Value,
                        Message = $"the link of {nic} did not come back within {LinkWait.TotalSeconds:0.#} s after {d.Target}; " +
                                  (back.Result == KnobOutcome.Applied ? $"put back to {d.Current}" : $"putting back {d.Current} failed too: {back.Message}"),
                    };
                }
            }
            results.Add(r);
        }
        if (changed) (host, plan) = PlanNow(spec);
        // Settings the spec does not manage that a ring change reset go back to what they were at once (and stay
        // journaled: the ring revert resets them again).
        if (ringsChanged) journal = RestoreNoLongerWanted(journal, host, plan, results, nics: true);
        return new ChannelPhase(journal, host, plan, null);
    }

    /// <summary>The interface of an ethtool path: ethtool-rings:eth0, ethtool-feature:eth0/rx-gro.</summary>
    private static string NicOf(string path)
    {
        var name = path[(path.IndexOf(':') + 1)..];
        return name.Contains('/') ? name[..name.IndexOf('/')] : name;
    }

    /// <summary>
    /// Channel changes, one NIC at a time: journal every queue setting and queue IRQ affinity of the NIC first (drivers
    /// reset them on a channel change), change, wait for a link that was up to come back within <see cref="LinkWait"/>
    /// (or put the original count back), and plan again against what the driver rebuilt before the next NIC. Members of
    /// one bond are therefore never changed together, and after one fails to come back the others are left alone.
    /// </summary>
    private ChannelPhase ApplyChannels(NodeStateSpec spec, TuningJournal journal, HostSnapshot host, TuningPlan plan, List<KnobResult> results)
    {
        var failedBonds = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var knob in plan.Desired.Where(d => d.Phase == 0).Select(d => d.Knob).ToArray())
        {
            // Each NIC's change may have moved IRQs or queues: take this one's knob from the latest plan.
            var d = plan.Desired.FirstOrDefault(x => x.Knob == knob);
            if (d is null) continue;
            if (!d.NeedsChange)
            {
                results.Add(new KnobResult { Knob = d.Knob, Result = KnobOutcome.Applied, Value = d.Current });
                continue;
            }
            if (Held(d) is { } held)
            {
                results.Add(held);
                continue;
            }
            var nic = host.Nics.First(n => $"nic/{n.Name}/channels" == d.Knob);
            var bond = BondOf(nic.Name);
            if (bond is not null && failedBonds.TryGetValue(bond, out var peer))
            {
                results.Add(new KnobResult
                {
                    Knob = d.Knob, Result = KnobOutcome.Failed, Value = d.Current,
                    Message = $"left unchanged: {peer}, another member of {bond}, did not come back after its channel change",
                });
                continue;
            }
            var recordable = new List<JournalEntry>();
            if (!journal.Contains(d.Knob)) recordable.Add(new JournalEntry(d.Knob, d.Kind, d.Path, d.Current!, d.Identity, Nic: nic.Name));
            if (ChannelCounts.TryParse(d.Target, out var target))
                recordable.AddRange(SnapshotBeforeChannels(nic, target).Where(e => !journal.Contains(e.Key)));
            if (recordable.Count > 0 && SaveOrFail(journal = journal.With(recordable), plan, results) is { } failed)
                return new ChannelPhase(journal, host, plan, failed);

            if (ChannelCounts.TryParse(d.Target, out var counts) && TableInTheWay(nic, counts, journal, plan) is { } table)
            {
                // The kernel refuses fewer receive queues than a table set by hand uses. NetTune's own table (journaled,
                // or about to be replaced after the channels) goes back to the default spread first; its original is
                // journaled before, so a revert still restores it.
                var rssKnob = $"nic/{nic.Name}/rss/indirection";
                if (!journal.Contains(rssKnob) && SaveOrFail(journal = journal.With([new JournalEntry(rssKnob, KnobKind.RssIndirection, NicSettingsPlanner.RssPath(nic.Name), table.ToString(), Nic: nic.Name)]), plan, results) is { } rssFailed)
                    return new ChannelPhase(journal, host, plan, rssFailed);
                var size = table.Indirection.Length;
                results.Add(_writer.Write(rssKnob + "/before-channels", KnobKind.RssIndirection, NicSettingsPlanner.RssPath(nic.Name),
                    RssIndirection.Format(RssIndirection.Equal(size, Math.Max(table.RxRings, 1)), table.RxRings), null));
            }
            var operBefore = OperState(nic.Name);
            var r = _writer.Write(d.Knob, d.Kind, d.Path, d.Target, d.Identity);
            if (r.Result == KnobOutcome.Applied && !WaitForLink(nic.Name, operBefore))
            {
                // A link that does not come back may be the node's way out: undo at once, then say so.
                var back = _writer.Write(d.Knob, d.Kind, d.Path, d.Current!, d.Identity);
                var up = WaitForLink(nic.Name, operBefore);
                r = new KnobResult
                {
                    Knob = d.Knob, Result = KnobOutcome.Failed, Value = back.Value,
                    Message = $"the link of {nic.Name} did not come back within {LinkWait.TotalSeconds:0.#} s after {d.Target}; " +
                              (back.Result == KnobOutcome.Applied ? $"put back to {d.Current}" : $"putting back {d.Current} failed too: {back.Message}") +
                              (up ? "" : $", and the link is still {OperState(nic.Name) ?? "unknown"}"),
                };
                if (bond is not null) failedBonds[bond] = nic.Name;
            }
            results.Add(r);
            // The driver rebuilt queues and maybe IRQs: whatever it did, plan the rest (and the next NIC) against it.
            (host, plan) = PlanNow(spec);
        }
        return new ChannelPhase(journal, host, plan, null);
    }

    /// <summary>
    /// The NIC's indirection table when it uses a receive queue that <paramref name="counts"/> would remove and it is
    /// NetTune's to change: journaled by an earlier apply, or planned anew after the channels.
    /// </summary>
    private static RssTable? TableInTheWay(Nic nic, ChannelCounts counts, TuningJournal journal, TuningPlan plan)
    {
        if (nic.Rss?.Table is not { } table || table.Indirection.Length == 0 || table.Indirection.Max() < counts.Combined + counts.Rx) return null;
        var knob = $"nic/{nic.Name}/rss/indirection";
        return journal.Contains(knob) || plan.Desired.Any(d => d.Knob == knob) ? table : null;
    }

    private string? OperState(string nic) => new TopologyDiscovery(_fs, _channels).Value($"sys/class/net/{nic}/operstate");

    private string? BondOf(string nic) =>
        _fs.ResolveLink($"sys/class/net/{nic}/master") is { } master ? Path.GetFileName(master) : null;

    private bool WaitForLink(string nic, string? operBefore)
    {
        if (operBefore != "up") return true;
        var deadline = DateTime.UtcNow + LinkWait;
        while (true)
        {
            if (OperState(nic) == "up") return true;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return false;
            Thread.Sleep(left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
        }
    }

    /// <summary>
    /// Everything a channel change (or a ring change: <paramref name="target"/> null, no queue removed) may take or reset on <paramref name="nic"/>: each queue's rps_cpus, rps_flow_cnt and
    /// xps_cpus and each queue IRQ's affinity (keyed by its name), as they are before the change. Queues the new counts
    /// remove are marked <see cref="JournalEntry.LostWithChannels"/>; the rest <see cref="JournalEntry.BeforeChannels"/>.
    /// </summary>
    private static IEnumerable<JournalEntry> SnapshotBeforeChannels(Nic nic, ChannelCounts? target)
    {
        var dir = $"sys/class/net/{nic.Name}/queues";
        foreach (var q in nic.RxQueues)
        {
            bool? lost = target is { } t && q.Index >= t.Combined + t.Rx ? true : null;
            bool? kept = lost is null ? true : null;
            if (q.RpsCpus is not null) yield return new JournalEntry($"nic/{nic.Name}/rx-{q.Index}/rps_cpus", KnobKind.RpsCpus, $"{dir}/rx-{q.Index}/rps_cpus", q.RpsCpus, null, lost, nic.Name, kept);
            if (q.RpsFlowCnt is not null) yield return new JournalEntry($"nic/{nic.Name}/rx-{q.Index}/rps_flow_cnt", KnobKind.RpsFlowCount, $"{dir}/rx-{q.Index}/rps_flow_cnt", q.RpsFlowCnt, null, lost, nic.Name, kept);
        }
        foreach (var q in nic.TxQueues.Where(q => q.XpsCpus is not null))
        {
            bool? lost = target is { } t && q.Index >= t.Combined + t.Tx ? true : null;
            yield return new JournalEntry($"nic/{nic.Name}/tx-{q.Index}/xps_cpus", KnobKind.XpsCpus, $"{dir}/tx-{q.Index}/xps_cpus", q.XpsCpus!, null, lost, nic.Name, lost is null ? true : null);
        }
        foreach (var irq in nic.Irqs.Where(i => !i.Managed && i.AffinityList is not null))
            yield return new JournalEntry($"irq/{irq.Irq}/affinity", KnobKind.IrqAffinity, $"proc/irq/{irq.Irq}/smp_affinity_list", irq.AffinityList!, irq.Name, null, nic.Name, true);
    }

    /// <summary>Where an IRQ journaled by name is now: drivers that reallocate vectors give the same name a new number.</summary>
    private string? ResolveIrqPath(JournalEntry e)
    {
        if (e.Kind != KnobKind.IrqAffinity || e.Identity is null) return e.Path;
        var dir = Path.GetDirectoryName(e.Path)!;
        if (_fs.Exists($"{dir}/{e.Identity}")) return e.Path;
        foreach (var irq in _fs.List("proc/irq"))
            if (int.TryParse(irq, out _) && _fs.Exists($"proc/irq/{irq}/{e.Identity}")) return $"proc/irq/{irq}/smp_affinity_list";
        return null;
    }
}
