using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Status;

/// <summary>
/// Back-off for knobs whose write fails (a driver that refuses a value, EINVAL or EBUSY each time): a failed apply is
/// retried at every drift interval, and without this the same refused write would be sent to the driver each time.
/// The drift back-off's schedule, counted per failing knob: the first <see cref="DriftBackoff.RepairsBeforeBackoff"/>
/// failures are retried at once, then the knob is left for a minute, doubling up to an hour. A knob that reaches its
/// target is forgotten; a new spec generation starts every knob from nothing.
/// </summary>
public sealed class FailureBackoff
{
    private readonly DriftBackoff _schedule = new();
    private readonly Dictionary<string, string?> _lastError = new(StringComparer.Ordinal);

    /// <summary>Counts the Failed knobs of a run and forgets the ones that got to their targets. Shortfalls have their own retries.</summary>
    public void Record(IEnumerable<KnobResult> knobs, DateTime now)
    {
        foreach (var k in knobs)
        {
            if (k.Result == KnobOutcome.Failed && !_schedule.Held(now).ContainsKey(k.Knob))
            {
                _schedule.RecordDrift(k.Knob, now);
                _lastError[k.Knob] = k.Message;
            }
            else if (k.Result == KnobOutcome.Applied && _lastError.Remove(k.Knob))
            {
                _schedule.Forget(k.Knob);
            }
        }
    }

    /// <summary>The knobs not to write at <paramref name="now"/>: until when, and the error they last failed with.</summary>
    public IReadOnlyDictionary<string, FailureHold> Held(DateTime now) =>
        _schedule.Held(now).ToDictionary(h => h.Key, h => new FailureHold(h.Value, _lastError.GetValueOrDefault(h.Key)), StringComparer.Ordinal);

    public void Reset()
    {
        _schedule.Reset();
        _lastError.Clear();
    }
}

/// <summary>A failing knob left alone until <see cref="Until"/>; <see cref="LastError"/> is why it failed last.</summary>
public sealed record FailureHold(DateTime Until, string? LastError);
