using Prometheus;

namespace NetTune.Operator;

/// <summary>The operator's Prometheus metrics, in a registry of their own so two hosts in one process stay apart.</summary>
public sealed class OperatorMetrics
{
    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();

    public Counter Reconciles { get; }
    public Histogram ReconcileDuration { get; }
    public Gauge QueueDepth { get; }
    public Histogram QueueLatency { get; }
    public Counter WatchRestarts { get; }
    public Gauge NodesByPhase { get; }
    public Gauge RolloutProgress { get; }
    public Counter RolloutBatches { get; }
    public Gauge Leader { get; }
    public Counter ApiRequests { get; }

    public OperatorMetrics()
    {
        // The process's own figures (RSS, GC heap, threads, CPU), as the default registry would carry them.
        DotNetStats.Register(Registry);
        var f = Metrics.WithCustomRegistry(Registry);
        Reconciles = f.CreateCounter("nettune_operator_reconciles_total", "Reconciles by kind and result (success, requeue, error).",
            new CounterConfiguration { LabelNames = ["kind", "result"] });
        ReconcileDuration = f.CreateHistogram("nettune_operator_reconcile_duration_seconds", "Time one reconcile took.",
            new HistogramConfiguration { LabelNames = ["kind"], Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        QueueDepth = f.CreateGauge("nettune_operator_workqueue_depth", "Keys waiting in the work queue.");
        QueueLatency = f.CreateHistogram("nettune_operator_workqueue_latency_seconds", "Time a key waited in the queue before a worker took it.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        WatchRestarts = f.CreateCounter("nettune_operator_watch_restarts_total", "Watches restarted, by kind and reason (closed, error, hung, gone).",
            new CounterConfiguration { LabelNames = ["kind", "reason"] });
        NodesByPhase = f.CreateGauge("nettune_operator_nodes", "Selected nodes of each NetworkTuning by rollout phase (applied, failed, pending).",
            new GaugeConfiguration { LabelNames = ["tuning", "phase"] });
        RolloutProgress = f.CreateGauge("nettune_operator_rollout_progress_ratio", "Share of the selected nodes that applied the current generation.",
            new GaugeConfiguration { LabelNames = ["tuning"] });
        RolloutBatches = f.CreateCounter("nettune_operator_rollout_batches_total", "Rollout batches started.",
            new CounterConfiguration { LabelNames = ["tuning"] });
        Leader = f.CreateGauge("nettune_operator_leader", "1 while this instance is the leader (always 1 without leader election).");
        ApiRequests = f.CreateCounter("nettune_operator_api_requests_total", "Requests sent to the API server, by verb and resource.",
            new CounterConfiguration { LabelNames = ["verb", "resource"] });
    }
}
