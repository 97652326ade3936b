using System.Diagnostics;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace NetTune.ControllerRuntime;

public sealed record LeaseElectorOptions
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public required string Identity { get; init; }
    /// <summary>How long others wait, after they last saw the Lease change, before they take it over.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>How long the leader keeps leading without a successful renewal; shorter than the lease duration.</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>How a term ended.</summary>
public enum LeaseOutcome
{
    /// <summary>Stopped on request before or while leading; a held Lease was released.</summary>
    Stopped,

    /// <summary>The Lease could not be renewed within the renew deadline, or someone else holds it now.</summary>
    Lost,
}

/// <summary>
/// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it with ReleaseOnCancel and as
/// controller-runtime uses it: campaign until the Lease is ours, lead while renewals succeed, and:
/// - a renewal that has not succeeded within the renew deadline ends the term at once (the leading work is cancelled)
///   and the elector does not campaign again, so no work started under the old term runs beside a successor;
/// - a stop request ends the work, then releases the Lease (no holder, 1 s duration) so a successor takes over at
///   once instead of waiting out the lease duration.
/// Clocks: expiry is judged by this process' monotonic clock from when it last saw the Lease change, never by
/// comparing timestamps written by another machine.
/// </summary>
public sealed class LeaseElector(IKubernetes client, LeaseElectorOptions options, ILogger log)
{
    private V1Lease? _observed;
    private TimeSpan _observedAt;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Raised when another identity (or nobody) is seen holding the Lease.</summary>
    public event Action<string?>? LeaderObserved;

    /// <summary>
    /// Campaigns, then runs <paramref name="lead"/> with a token that is cancelled when the term ends. Returns when
    /// <paramref name="stop"/> is cancelled (after releasing a held Lease) or when the Lease is lost.
    /// </summary>
    public async Task<LeaseOutcome> RunAsync(Func<CancellationToken, Task> lead, CancellationToken stop)
    {
        while (true)
        {
            if (stop.IsCancellationRequested) return LeaseOutcome.Stopped;
            var attempt = _clock.Elapsed;
            try
            {
                if (await TryAcquireOrRenewAsync(stop).ConfigureAwait(false)) break;
            }
            catch (Exception e) when (!stop.IsCancellationRequested && e is not OperationCanceledException)
            {
                log.LogDebug("lease {Name}: acquire failed: {Error}", options.Name, e.Message);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { return LeaseOutcome.Stopped; }
            try { await Task.Delay(Remaining(attempt, options.RetryPeriod), stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { return LeaseOutcome.Stopped; }
        }

        log.LogInformation("lease {Name}: {Identity} acquired it", options.Name, options.Identity);
        using var term = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var work = Task.Run(() => lead(term.Token), CancellationToken.None);
        var outcome = await RenewUntilLostAsync(stop).ConfigureAwait(false);
        term.Cancel();
        if (outcome == LeaseOutcome.Lost)
        {
            // Do not wait for the work: it was cancelled, and the caller exits rather than campaign again.
            log.LogError("lease {Name}: {Identity} could not renew within {Deadline}s; leadership lost", options.Name, options.Identity, options.RenewDeadline.TotalSeconds);
            _ = work.ContinueWith(t => t.Exception, TaskScheduler.Default);
            return outcome;
        }
        try { await work.ConfigureAwait(false); }
        catch (OperationCanceledException) { }
        await ReleaseAsync().ConfigureAwait(false);
        return LeaseOutcome.Stopped;
    }

    /// <summary>Renews every retry period; Lost once no renewal has succeeded for the renew deadline.</summary>
    private async Task<LeaseOutcome> RenewUntilLostAsync(CancellationToken stop)
    {
        // Measured from the start of the request that renewed: the server may have written it at any point after.
        var renewedAt = _clock.Elapsed;
        while (true)
        {
            var attemptStart = _clock.Elapsed;
            try { await Task.Delay(Remaining(attemptStart, options.RetryPeriod), stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { return LeaseOutcome.Stopped; }
            while (true)
            {
                var left = renewedAt + options.RenewDeadline - _clock.Elapsed;
                if (left <= TimeSpan.Zero) return LeaseOutcome.Lost;
                var start = _clock.Elapsed;
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(stop);
                attempt.CancelAfter(left);
                try
                {
                    if (await TryAcquireOrRenewAsync(attempt.Token).ConfigureAwait(false))
                    {
                        renewedAt = start;
                        break;
                    }
                    // Someone else holds it: that can only be after our lease ran out somewhere.
                    if (_observed?.Spec?.HolderIdentity != options.Identity) return LeaseOutcome.Lost;
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { return LeaseOutcome.Stopped; }
                catch (Exception e)
                {
                    log.LogWarning("lease {Name}: renewal failed: {Error}", options.Name, e.Message);
                }
                try { await Task.Delay(Remaining(start, options.RetryPeriod), stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { return LeaseOutcome.Stopped; }
            }
        }
    }

    private TimeSpan Remaining(TimeSpan since, TimeSpan period)
    {
        var left = since + period - _clock.Elapsed;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>One round: true when this identity holds the Lease afterwards (created, taken over or renewed).</summary>
    private async Task<bool> TryAcquireOrRenewAsync(CancellationToken ct)
    {
        V1Lease lease;
        try
        {
            lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(options.Name, options.Namespace, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            var now = DateTime.UtcNow;
            var created = await client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
            {
                Metadata = new V1ObjectMeta { Name = options.Name, NamespaceProperty = options.Namespace },
                Spec = Spec(now, now, 0),
            }, options.Namespace, cancellationToken: ct).ConfigureAwait(false);
            Observe(created);
            return true;
        }

        Observe(lease);
        var holder = lease.Spec?.HolderIdentity;
        var mine = holder == options.Identity;
        var duration = TimeSpan.FromSeconds(lease.Spec?.LeaseDurationSeconds ?? (int)options.LeaseDuration.TotalSeconds);
        var expired = _observedAt + duration <= _clock.Elapsed;
        if (!mine && !string.IsNullOrEmpty(holder) && !expired) return false;

        var utc = DateTime.UtcNow;
        var transitions = lease.Spec?.LeaseTransitions ?? 0;
        lease.Spec = mine
            ? Spec(lease.Spec!.AcquireTime ?? utc, utc, transitions)
            : Spec(utc, utc, transitions + 1);
        try
        {
            // resourceVersion makes this a compare-and-swap: of two candidates only one succeeds.
            var written = await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, options.Name, options.Namespace, cancellationToken: ct).ConfigureAwait(false);
            Observe(written);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            return false;
        }
    }

    private V1LeaseSpec Spec(DateTime acquired, DateTime renewed, int transitions) => new()
    {
        HolderIdentity = options.Identity,
        LeaseDurationSeconds = (int)Math.Ceiling(options.LeaseDuration.TotalSeconds),
        AcquireTime = acquired,
        RenewTime = renewed,
        LeaseTransitions = transitions,
    };

    private void Observe(V1Lease lease)
    {
        if (_observed?.Metadata?.ResourceVersion != lease.Metadata?.ResourceVersion)
        {
            var before = _observed?.Spec?.HolderIdentity;
            _observed = lease;
            _observedAt = _clock.Elapsed;
            if (lease.Spec?.HolderIdentity != before && lease.Spec?.HolderIdentity != options.Identity)
                LeaderObserved?.Invoke(lease.Spec?.HolderIdentity);
        }
    }

    /// <summary>Gives the Lease up if this identity still holds it: no holder and a 1 s duration, as client-go does.</summary>
    private async Task ReleaseAsync()
    {
        using var timeout = new CancellationTokenSource(options.RenewDeadline);
        try
        {
            var lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(options.Name, options.Namespace, cancellationToken: timeout.Token).ConfigureAwait(false);
            if (lease.Spec?.HolderIdentity != options.Identity) return;
            var now = DateTime.UtcNow;
            lease.Spec = new V1LeaseSpec
            {
                HolderIdentity = null,
                LeaseDurationSeconds = 1,
                AcquireTime = now,
                RenewTime = now,
                LeaseTransitions = lease.Spec.LeaseTransitions,
            };
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, options.Name, options.Namespace, cancellationToken: timeout.Token).ConfigureAwait(false);
            log.LogInformation("lease {Name}: {Identity} released it", options.Name, options.Identity);
        }
        catch (Exception e)
        {
            // The successor then waits out the lease duration, which is safe.
            log.LogWarning("lease {Name}: release failed: {Error}", options.Name, e.Message);
        }
    }
}
