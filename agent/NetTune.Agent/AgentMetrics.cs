using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Status;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;
using Prometheus;

namespace NetTune.Agent;

/// <summary>The agent's Prometheus metrics.</summary>
public sealed class AgentMetrics
{
    public AgentMetrics(CollectorRegistry registry)
    {
        Registry = registry;
        var f = Metrics.WithCustomRegistry(registry);
        ApplyDuration = f.CreateHistogram("nettune_agent_apply_duration_seconds", "Time of one apply or revert run, discovery included.",
            new HistogramConfiguration { LabelNames = ["operation"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        Changes = f.CreateCounter("nettune_agent_knob_changes_total", "Knob results of apply and revert runs, by knob kind and result.",
            new CounterConfiguration { LabelNames = ["kind", "result"] });
        // The label is the knob's kind (irq_affinity, rps_cpus, sysctl, ...), not its name: bounded on hosts with hundreds of queues.
        DriftDetected = f.CreateCounter("nettune_agent_drift_detected_total", "Knobs found changed by someone else, by knob kind.", new CounterConfiguration { LabelNames = ["knob"] });
        DriftRepaired = f.CreateCounter("nettune_agent_drift_repaired_total", "Drifted knobs set back, by knob kind.", new CounterConfiguration { LabelNames = ["knob"] });
        NumaNodes = f.CreateGauge("nettune_agent_numa_nodes", "NUMA nodes discovered.");
        Cpus = f.CreateGauge("nettune_agent_online_cpus", "Online CPUs discovered.");
        Queues = f.CreateGauge("nettune_agent_nic_queues", "Queues per NIC and direction.", new GaugeConfiguration { LabelNames = ["nic", "direction"] });
        Hugepages = f.CreateGauge("nettune_agent_hugepages", "Hugepages per NUMA node, size and state (total, free).", new GaugeConfiguration { LabelNames = ["numa_node", "size", "state"] });
        IrqCpu = f.CreateGauge("nettune_agent_irq_cpu", "The first CPU of each NIC queue interrupt's affinity.", new GaugeConfiguration { LabelNames = ["irq", "nic", "queue"] });
        // One series per queue: the cpu label is where the queue's first vector is affined now (it moves with the agent's placement).
        QueueInterruptsTotal = f.CreateCounter("nettune_agent_queue_interrupts_total",
            "Interrupts of each NIC queue, all its vectors on all CPUs (/proc/interrupts), labelled with the CPU its first vector is affined to.",
            new CounterConfiguration { LabelNames = ["nic", "queue", "cpu"] });
        Runs = f.CreateCounter("nettune_agent_runs_total", "Apply and revert runs by outcome.", new CounterConfiguration { LabelNames = ["outcome"] });
        OrphanReverts = f.CreateCounter("nettune_agent_orphan_reverts_total",
            "Reverts from the journal because the node's NetworkTuningNodeState was gone for longer than the grace period, by outcome.",
            new CounterConfiguration { LabelNames = ["outcome"] });
    }

    public CollectorRegistry Registry { get; }
    public Histogram ApplyDuration { get; }
    public Counter Changes { get; }
    public Counter DriftDetected { get; }
    public Counter DriftRepaired { get; }
    public Gauge NumaNodes { get; }
    public Gauge Cpus { get; }
    public Gauge Queues { get; }
    public Gauge Hugepages { get; }
    public Gauge IrqCpu { get; }
    public Counter QueueInterruptsTotal { get; }
    public Counter Runs { get; }
    public Counter OrphanReverts { get; }

    public void Observe(RunReport report, string operation, TimeSpan duration)
    {
        ApplyDuration.WithLabels(operation).Observe(duration.TotalSeconds);
        Runs.WithLabels(report.Kind.ToString()).Inc();
        foreach (var k in report.Knobs)
        {
            // Knob kinds, not knob names, keep the label set bounded on machines with hundreds of queues.
            Changes.WithLabels(KindOf(k.Knob), k.Result.ToString()).Inc();
        }
        if (report.Host is not null) Observe(report.Host);
    }

    public void Observe(HostSnapshot host)
    {
        NumaNodes.Set(host.NumaNodes.Count);
        Cpus.Set(host.OnlineCpus.Count);
        foreach (var n in host.NumaNodes)
            foreach (var p in n.Hugepages)
            {
                Hugepages.WithLabels($"{n.Id}", p.Size, "total").Set(p.Total);
                Hugepages.WithLabels($"{n.Id}", p.Size, "free").Set(p.Free);
            }
        _host = host;
        foreach (var nic in host.Nics)
        {
            Queues.WithLabels(nic.Name, "rx").Set(nic.RxQueues.Count);
            Queues.WithLabels(nic.Name, "tx").Set(nic.TxQueues.Count);
            foreach (var irq in nic.Irqs)
                if (CpuList.TryParse(irq.AffinityList, out var cpus) && cpus.Count > 0)
                    IrqCpu.WithLabels($"{irq.Irq}", nic.Name, $"{irq.Queue}").Set(cpus[0]);
        }
        // NICs and queues that went (unplugged, fewer channels, vectors renumbered) take their series with them.
        lock (_queueLock)
        {
            foreach (var gone in _queueCounts.Replace(PublishedSeries.QueueCounts(host))) Queues.RemoveLabelled(gone);
            foreach (var gone in _irqCpus.Replace(PublishedSeries.QueueIrqs(host))) IrqCpu.RemoveLabelled(gone);
        }
    }

    private readonly PublishedSeries _queueCounts = new(), _irqCpus = new(), _queueInterrupts = new();

    public static string KindOf(string knob)
    {
        var parts = knob.Split('/');
        return parts[0] switch
        {
            // Features by their kind, not their name: one label value for the seventy-odd kernel feature names.
            "nic" when parts.Length > 3 && parts[2] is "features" or "offloads" => "feature",
            // nic/NAME/rss/indirection and nic/NAME/rss/rx-flow-hash/TYPE: the kind, not the flow type.
            "nic" when parts.Length > 3 && parts[2] == "rss" => parts[3],
            "nic" => parts[^1],
            "irq" => "irq_affinity",
            "hugepages" => "hugepages",
            "sysctl" => "sysctl",
            _ => parts[0],
        };
    }

    private volatile HostSnapshot? _host;
    private readonly Dictionary<(string Nic, int Queue), (string Cpu, long Count)> _queueSeries = [];
    private readonly Lock _queueLock = new();

    /// <summary>
    /// Brings the per-queue interrupt counters up to /proc/interrupts (called before each scrape) for the queues of the
    /// last discovery. A queue whose CPU changed, or whose count went down (its vectors were freed and requested anew),
    /// starts a new series; the old one is removed, so there is one series per queue.
    /// </summary>
    public void ObserveInterrupts(string? procInterrupts)
    {
        if (_host is not { } host) return;
        var counts = NetTune.Agent.Core.Status.QueueInterrupts.Of(host, NetTune.Agent.Core.Status.QueueInterrupts.Parse(procInterrupts));
        lock (_queueLock)
        {
            foreach (var q in counts)
            {
                var key = (q.Nic, q.Queue);
                var cpu = q.Cpu?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown";
                var queue = q.Queue.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (_queueSeries.TryGetValue(key, out var prev) && (prev.Cpu != cpu || q.Interrupts < prev.Count))
                    QueueInterruptsTotal.RemoveLabelled(q.Nic, queue, prev.Cpu);
                QueueInterruptsTotal.WithLabels(q.Nic, queue, cpu).IncTo(q.Interrupts);
                _queueSeries[key] = (cpu, q.Interrupts);
            }
            foreach (var key in _queueSeries.Keys.Where(k => !counts.Any(c => c.Nic == k.Nic && c.Queue == k.Queue)).ToArray())
                _queueSeries.Remove(key);
            // Queues no longer there (and series left behind by a CPU move) are removed: one series per queue that exists.
            foreach (var gone in _queueInterrupts.Replace(_queueSeries.Select(s => new[] { s.Key.Nic, s.Key.Queue.ToString(System.Globalization.CultureInfo.InvariantCulture), s.Value.Cpu })))
                QueueInterruptsTotal.RemoveLabelled(gone);
        }
    }
}
