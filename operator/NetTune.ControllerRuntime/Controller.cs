using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace NetTune.ControllerRuntime;

/// <summary>What a reconcile asks for next: nothing, another look after a delay, or a retry with backoff.</summary>
public readonly record struct ReconcileResult(TimeSpan? RequeueAfter, string? Error)
{
    public static ReconcileResult Done => default;
    public static ReconcileResult After(TimeSpan delay) => new(delay, null);
    public static ReconcileResult Failed(string error) => new(null, error);
    /// <summary>The write lost a race with another writer (409): read again soon, without counting as a failure.</summary>
    public static ReconcileResult Conflict => new(TimeSpan.FromMilliseconds(50), null);
    public bool IsError => Error is not null;
    public string Outcome => Error is not null ? "error" : RequeueAfter is not null ? "requeue" : "success";
}

public interface IReconciler
{
    /// <summary>Brings the world for <paramref name="key"/> one step closer to what it should be. Must not throw.</summary>
    Task<ReconcileResult> ReconcileAsync(string key, CancellationToken ct);
}

/// <summary>Runs reconciles from a work queue on a few workers.</summary>
public sealed class Controller(string name, WorkQueue queue, IReconciler reconciler, int workers, ILogger log)
{
    /// <summary>(key, outcome: success/requeue/error, duration) after each reconcile.</summary>
    public event Action<string, string, TimeSpan>? Reconciled;

    public async Task RunAsync(CancellationToken ct)
    {
        var tasks = Enumerable.Range(0, Math.Max(1, workers)).Select(_ => Task.Run(() => WorkAsync(ct), CancellationToken.None)).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private async Task WorkAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var key = await queue.GetAsync(ct).ConfigureAwait(false);
            if (key is null) return;
            var watch = Stopwatch.StartNew();
            ReconcileResult result;
            try
            {
                result = await reconciler.ReconcileAsync(key, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                queue.Done(key);
                return;
            }
            catch (Exception e)
            {
                // Reconcilers return errors; an exception is a bug, still retried rather than lost.
                log.LogError(e, "{Controller}: reconcile of {Key} threw", name, key);
                result = ReconcileResult.Failed(e.Message);
            }
            Reconciled?.Invoke(key, result.Outcome, watch.Elapsed);
            if (result.IsError)
            {
                var delay = queue.AddRateLimited(key);
                log.LogWarning("{Controller}: reconcile of {Key} failed: {Error}; retry in {Delay:0.0}s", name, key, result.Error, delay.TotalSeconds);
            }
            else
            {
                queue.Forget(key);
                if (result.RequeueAfter is { } after) queue.AddAfter(key, after);
            }
            queue.Done(key);
        }
    }
}
