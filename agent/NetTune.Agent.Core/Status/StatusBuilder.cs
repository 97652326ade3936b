using k8s.Models;
using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

/// <summary>Turns discovery, plans and run reports into the NodeState status the operator reads.</summary>
public static class StatusBuilder
{
    /// <param name="knobs">The last run's knob results: each NIC's status lists its own by outcome.</param>
    public static NodeTopology Topology(HostSnapshot host, IReadOnlyList<KnobResult>? knobs = null) => new()
    {
        OnlineCpus = CpuList.Format(host.OnlineCpus),
        IsolatedCpus = host.IsolatedCpus.Count == 0 ? null : CpuList.Format(host.IsolatedCpus),
        Cpus = host.Cpus.Select(c => new CpuTopology { Id = c.Id, Package = c.Package, Core = c.Core, ThreadSiblings = c.ThreadSiblings }).ToList(),
        NumaNodes = host.NumaNodes.Select(n => new NumaNodeInfo
        {
            Id = n.Id,
            Cpus = CpuList.Format(n.Cpus),
            MemoryBytes = n.MemoryBytes,
            Distances = [.. n.Distances],
            Hugepages = n.Hugepages.Select(p => new HugepagesInfo { Size = p.Size, Total = p.Total, Free = p.Free }).ToList(),
        }).ToList(),
        Nics = host.Nics.Select(n => new NicInfo
        {
            Name = n.Name,
            Driver = n.Driver,
            PciAddress = n.PciAddress,
            NumaNode = n.NumaNode,
            LocalCpus = n.LocalCpus is null ? null : CpuList.Format(n.LocalCpus),
            RxQueues = n.RxQueues.Count,
            TxQueues = n.TxQueues.Count,
            Channels = n.Channels is { } c ? new ChannelInfo
            {
                Rx = c.Current.Rx, Tx = c.Current.Tx, Other = c.Current.Other, Combined = c.Current.Combined,
                MaxRx = c.Max.Rx, MaxTx = c.Max.Tx, MaxOther = c.Max.Other, MaxCombined = c.Max.Combined,
            } : null,
            Irqs = n.Irqs.Select(i => new IrqInfo { Irq = i.Irq, Name = i.Name, Queue = i.Queue, Cpus = i.AffinityList, Managed = i.Managed }).ToList(),
            Queues = Queues(n, host.DataPlanes),
            Rings = Setting(n, Host.NicSettingGroup.Rings),
            Coalesce = Setting(n, Host.NicSettingGroup.Coalesce),
            Pause = Setting(n, Host.NicSettingGroup.Pause),
            Offloads = Offloads(n),
            KnobResults = knobs is null ? null : Summary(n, knobs),
        }).ToList(),
    };

    /// <summary>
    /// One entry per queue index: its interrupts and their CPUs, RPS and XPS as cpulists rather than hex masks, and the
    /// data-plane worker on the interrupts' CPU when they have one (what alignment is for, read back from the kernel).
    /// </summary>
    public static List<QueueStatus> Queues(Nic nic, IReadOnlyList<DataPlaneCpus>? dataPlanes = null)
    {
        var count = Math.Max(nic.RxQueues.Count, nic.TxQueues.Count);
        var queues = new List<QueueStatus>(count);
        for (var q = 0; q < count; q++)
        {
            var irqs = nic.Irqs.Where(i => i.Queue == q).ToArray();
            queues.Add(new QueueStatus
            {
                Queue = q,
                Irqs = irqs.Length == 0 ? null : string.Join(",", irqs.Select(i => i.Irq)),
                IrqCpus = irqs.Length == 0 ? null : string.Join(" ", irqs.Select(i => i.AffinityList).Distinct()),
                RpsCpus = AsCpuList(nic.RxQueues.FirstOrDefault(r => r.Index == q)?.RpsCpus),
                XpsCpus = AsCpuList(nic.TxQueues.FirstOrDefault(t => t.Index == q)?.XpsCpus),
                Worker = WorkerOn(irqs, dataPlanes ?? []),
            });
        }
        return queues;
    }

    private static DataPlaneWorkerRef? WorkerOn(QueueIrq[] irqs, IReadOnlyList<DataPlaneCpus> dataPlanes)
    {
        var cpus = irqs.Select(i => CpuList.TryParse(i.AffinityList, out var c) && c.Count == 1 ? c[0] : -1).Distinct().ToArray();
        if (cpus is not [var cpu and >= 0]) return null;
        foreach (var pod in dataPlanes)
        {
            var index = pod.Cpus.ToList().IndexOf(cpu);
            if (index >= 0) return new DataPlaneWorkerRef { PodUid = pod.PodUid, NumaNode = pod.NumaNode, Cpu = cpu, Index = index };
        }
        return null;
    }

    // No CPUs is left out rather than written as "": the v1.20 API server refused such a status (422, the empty
    // strings of these list items read as null against the schema's type string).
    private static string? AsCpuList(string? mask) => CpuMask.TryParse(mask, out var cpus) && cpus.Count > 0 ? CpuList.Format(cpus) : null;

    private static string? Setting(Nic nic, Host.NicSettingGroup group)
    {
        if (!nic.Settings.TryGetValue(group, out var read)) return null;
        if (read.Setting is not { } s) return $"unknown: {Host.Errnos.Describe(read.Errno)}";
        return s.Max is { } max ? $"{s.Current} (max {max})" : s.Current.ToString();
    }

    private static string? Offloads(Nic nic)
    {
        if (nic.Settings.Count == 0) return null;
        if (nic.Features is not { } features) return $"unknown: {Host.Errnos.Describe(nic.FeaturesErrno)}";
        var names = NicSettingsPlanner.Offloads.SelectMany(o => o.Features).ToHashSet(StringComparer.Ordinal);
        return string.Join(",", features.Where(f => names.Contains(f.Name)).Select(f =>
            $"{f.Name}={(f.Requested ? "on" : "off")}{(f.Changeable ? "" : " [fixed]")}{(f.Requested && !f.Active ? " (inactive)" : "")}"));
    }

    /// <summary>The NIC's knobs of the last run (its nic/NAME/... knobs and its queue interrupts) by outcome.</summary>
    public static NicKnobSummary Summary(Nic nic, IReadOnlyList<KnobResult> knobs)
    {
        var prefix = $"nic/{nic.Name}/";
        var irqs = nic.Irqs.Select(i => $"irq/{i.Irq}/affinity").ToHashSet(StringComparer.Ordinal);
        var own = knobs.Where(k => k.Knob.StartsWith(prefix, StringComparison.Ordinal) || irqs.Contains(k.Knob)).ToArray();
        List<KnobNote>? Notes(KnobOutcome outcome) => own.Where(k => k.Result == outcome).Take(1024)
            .Select(k => new KnobNote { Knob = k.Knob, Reason = string.IsNullOrEmpty(k.Message) ? null : k.Message }).ToList() is { Count: > 0 } l ? l : null;
        var applied = own.Where(k => k.Result is KnobOutcome.Applied or KnobOutcome.Reverted or KnobOutcome.Managed).Select(k => k.Knob).Take(4096).ToList();
        return new NicKnobSummary
        {
            Applied = applied.Count > 0 ? applied : null,
            Skipped = Notes(KnobOutcome.Skipped),
            Failed = Notes(KnobOutcome.Failed),
        };
    }

    public static List<PlannedChange> Planned(TuningPlan plan) =>
        plan.Changes.Select(c => new PlannedChange
        {
            Knob = c.Knob,
            Path = c.Path,
            // The test cluster's apiserver reads an empty string in a status patch as null and refuses it.
            Current = string.IsNullOrEmpty(c.Current) ? null : c.Current,
            Target = string.IsNullOrEmpty(c.Target) ? null : c.Target,
        }).ToList();

    /// <summary>Sets a condition, keeping its transition time when its status did not change.</summary>
    public static void SetCondition(List<V1Condition> conditions, string type, string status, string reason, string? message, long? generation, DateTime now)
    {
        var existing = conditions.FirstOrDefault(c => c.Type == type);
        var transition = existing is not null && existing.Status == status ? existing.LastTransitionTime : now;
        conditions.RemoveAll(c => c.Type == type);
        conditions.Add(new V1Condition
        {
            Type = type,
            Status = status,
            Reason = reason,
            // Never empty: the test cluster's apiserver reads an empty string in a status patch as null.
            Message = Truncate(string.IsNullOrEmpty(message) ? reason : message, 32768),
            ObservedGeneration = generation,
            LastTransitionTime = transition,
        });
        conditions.Sort((a, b) => Order(a.Type).CompareTo(Order(b.Type)));
    }

    /// <summary>Applied / Degraded / Reverted after one run.</summary>
    public static void ApplyConditions(List<V1Condition> conditions, RunReport report, long generation, DateTime now)
    {
        const string T = ConditionStatus.True, F = ConditionStatus.False;
        switch (report.Kind)
        {
            case RunKind.Applied:
                SetCondition(conditions, ConditionTypes.Applied, T, ConditionReasons.Applied, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, F, ConditionReasons.AsExpected, "", generation, now);
                SetCondition(conditions, ConditionTypes.Reverted, F, ConditionReasons.Applied, "", generation, now);
                break;
            case RunKind.DryRun:
                SetCondition(conditions, ConditionTypes.Applied, F, ConditionReasons.DryRun, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, F, ConditionReasons.AsExpected, "", generation, now);
                break;
            case RunKind.Failed:
                var reason = FailureReason(report);
                SetCondition(conditions, ConditionTypes.Applied, F, reason, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, T, reason, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Reverted, F, reason, "", generation, now);
                break;
            case RunKind.InvalidSpec:
                SetCondition(conditions, ConditionTypes.Applied, F, ConditionReasons.InvalidSpec, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, T, ConditionReasons.InvalidSpec, report.Message, generation, now);
                break;
            case RunKind.JournalCorrupt:
                SetCondition(conditions, ConditionTypes.Applied, F, ConditionReasons.JournalCorrupt, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, T, ConditionReasons.JournalCorrupt, report.Message, generation, now);
                break;
            case RunKind.Reverted:
                SetCondition(conditions, ConditionTypes.Reverted, T, ConditionReasons.Reverted, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Applied, F, ConditionReasons.Reverted, "", generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, F, ConditionReasons.AsExpected, "", generation, now);
                break;
            case RunKind.RolledBack:
                SetCondition(conditions, ConditionTypes.Applied, F, ConditionReasons.RolledBack, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, T, ConditionReasons.RolledBack, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Reverted, F, ConditionReasons.RolledBack, "", generation, now);
                break;
            case RunKind.RevertFailed:
                SetCondition(conditions, ConditionTypes.Reverted, F, ConditionReasons.RevertFailed, report.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Applied, F, ConditionReasons.RevertFailed, "", generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, T, ConditionReasons.RevertFailed, report.Message, generation, now);
                break;
        }
    }

    /// <summary>
    /// ApplyFailed, unless every failure is a hugepage pool the planner refused for one reason: the kubelet's Static
    /// Memory Manager (reserve the pages at boot) or the node's hugepages budget.
    /// </summary>
    private static string FailureReason(RunReport report)
    {
        var failed = report.Knobs.Where(k => k.Result is KnobOutcome.Failed or KnobOutcome.Shortfall).ToArray();
        if (failed.Length == 0 || report.ApiServerOutage) return ConditionReasons.ApplyFailed;
        bool All(string prefix) => failed.All(k => k.Message?.StartsWith(prefix, StringComparison.Ordinal) == true);
        return All(HugepagesPlanner.MemoryManagerRefusal) ? ConditionReasons.HugepagesNeedBootReservation
            : All(HugepagesPlanner.BudgetRefusal) ? ConditionReasons.HugepagesOverBudget
            : ConditionReasons.ApplyFailed;
    }

    /// <summary>
    /// A failed apply whose only failures are hugepage pools given up on (see ShortfallRetries) is not retried:
    /// Applied and Degraded say so with their own reason, and the pools' numbers, rather than ApplyFailed.
    /// </summary>
    public static void ShortfallConditions(List<V1Condition> conditions, RunReport report, IReadOnlyDictionary<string, string> givenUp, long generation, DateTime now)
    {
        var failed = report.Knobs.Where(k => k.Result is KnobOutcome.Failed or KnobOutcome.Shortfall).ToArray();
        if (report.Kind != RunKind.Failed || report.ApiServerOutage || failed.Length == 0 || !failed.All(k => givenUp.ContainsKey(k.Knob))) return;
        var message = $"{failed.Length} hugepage pools have fewer pages than asked and are not tried again for this generation: "
            + string.Join("; ", failed.Select(k => $"{k.Knob}: {k.Message}"));
        SetCondition(conditions, ConditionTypes.Applied, ConditionStatus.False, ConditionReasons.HugepagesShortfall, message, generation, now);
        SetCondition(conditions, ConditionTypes.Degraded, ConditionStatus.True, ConditionReasons.HugepagesShortfall, message, generation, now);
    }

    /// <summary>
    /// After an apply that left hugepages in the kernel: Applied only once the node's capacity shows them, with
    /// KubeletRestartRequired saying what is missing. Returns whether the kubelet sees them (or cannot be asked).
    /// </summary>
    public static bool KubeletConditions(List<V1Condition> conditions, KubeletHugepagesCheck check, long generation, DateTime now)
    {
        const string T = ConditionStatus.True, F = ConditionStatus.False;
        switch (check.State)
        {
            case KubeletHugepagesState.Visible:
                SetCondition(conditions, ConditionTypes.KubeletRestartRequired, F, ConditionReasons.KubeletSeesHugepages, check.Message, generation, now);
                return true;
            case KubeletHugepagesState.Unknown:
                SetCondition(conditions, ConditionTypes.KubeletRestartRequired, ConditionStatus.Unknown, ConditionReasons.NodeUnreadable, check.Message, generation, now);
                return true;
            default:
                var reason = check.State == KubeletHugepagesState.RestartFailed ? ConditionReasons.KubeletRestartFailed : ConditionReasons.KubeletRestartRequired;
                SetCondition(conditions, ConditionTypes.KubeletRestartRequired, T, reason, check.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Applied, F, reason, "the kernel holds the hugepages, but pods cannot get them yet: " + check.Message, generation, now);
                SetCondition(conditions, ConditionTypes.Degraded, F, ConditionReasons.AsExpected, "", generation, now);
                return false;
        }
    }

    /// <summary>
    /// IrqAffinityManaged: absent when the spec places no IRQs; False with irqbalance's pid, the IRQs it would move back
    /// and how to fix it; True otherwise.
    /// </summary>
    public static void IrqAffinityCondition(List<V1Condition> conditions, TuningPlan? plan, long generation, DateTime now)
    {
        if (plan is null) return;
        if (!plan.ManagesIrqs)
        {
            conditions.RemoveAll(c => c.Type == IrqAffinityConditions.Type);
            return;
        }
        if (plan.IrqBalance is not { } ib)
        {
            SetCondition(conditions, IrqAffinityConditions.Type, ConditionStatus.True, IrqAffinityConditions.Managed, "the agent places the IRQs the spec asks for", generation, now);
            return;
        }
        var irqs = string.Join(",", ib.UnbannedIrqs.Take(32)) + (ib.UnbannedIrqs.Count > 32 ? $",… ({ib.UnbannedIrqs.Count} in all)" : "");
        SetCondition(conditions, IrqAffinityConditions.Type, ConditionStatus.False, IrqAffinityConditions.IrqBalanceRunning,
            $"irqbalance (pid {ib.Pid}: {ib.CommandLine}) runs on this node and rewrites IRQ affinity about every 10 s, so the agent leaves " +
            $"IRQs {irqs} where they are rather than fight it (it could only ban them with a restart: --banirq and " +
            "IRQBALANCE_BANNED_CPUS are read at start). To let the agent place them: stop and disable irqbalance " +
            "(systemctl disable --now irqbalance), or add --banirq=N for each of these IRQs to IRQBALANCE_ARGS in " +
            "/etc/default/irqbalance (/etc/sysconfig/irqbalance) and restart it; IRQ numbers can change at reboot, so stopping it is the lasting fix",
            generation, now);
    }

    private static int Order(string type) => type switch { ConditionTypes.Applied => 0, ConditionTypes.Degraded => 1, _ => 2 };

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max];
}
