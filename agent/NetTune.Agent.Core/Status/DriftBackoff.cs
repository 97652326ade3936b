namespace NetTune.Agent.Core.Status;

/// <summary>
/// Per-knob back-off from repairing drift: whoever keeps changing a knob (irqbalance, TuneD, a sysctl job, a driver)
/// is not fought forever. After <see cref="RepairsBeforeBackoff"/> drifts of one knob the agent leaves it for
/// <see cref="FirstHold"/>, twice as long after each further drift up to <see cref="MaxHold"/>; a knob that stayed put
/// for <see cref="MaxHold"/> starts again from nothing. Time comes in from the caller, so it is testable without clocks.
/// </summary>
public sealed class DriftBackoff
{
    private readonly Dictionary<string, Entry> _knobs = new(StringComparer.Ordinal);

    public int RepairsBeforeBackoff { get; init; } = 3;
    public TimeSpan FirstHold { get; init; } = TimeSpan.FromMinutes(1);
    public TimeSpan MaxHold { get; init; } = TimeSpan.FromHours(1);

    private sealed class Entry
    {
        public int Drifts;
        public DateTime LastDrift;
        public DateTime? HeldUntil;
    }

    /// <summary>Counts one drift of <paramref name="knob"/>; returns until when the agent leaves it alone, or null to repair it now.</summary>
    public DateTime? RecordDrift(string knob, DateTime now)
    {
        if (!_knobs.TryGetValue(knob, out var e) || now - e.LastDrift > MaxHold) _knobs[knob] = e = new Entry();
        e.Drifts++;
        e.LastDrift = now;
        if (e.Drifts < RepairsBeforeBackoff) return e.HeldUntil = null;
        var doublings = Math.Min(e.Drifts - RepairsBeforeBackoff, 20);
        var hold = TimeSpan.FromTicks(Math.Min(FirstHold.Ticks << doublings, MaxHold.Ticks));
        return e.HeldUntil = now + hold;
    }

    /// <summary>The knobs left alone at <paramref name="now"/>, with until when.</summary>
    public IReadOnlyDictionary<string, DateTime> Held(DateTime now) =>
        _knobs.Where(k => k.Value.HeldUntil > now).ToDictionary(k => k.Key, k => k.Value.HeldUntil!.Value, StringComparer.Ordinal);

    /// <summary>Knobs whose hold ran out: each is returned once, for one more repair.</summary>
    public IReadOnlyList<string> TakeExpired(DateTime now)
    {
        var expired = _knobs.Where(k => k.Value.HeldUntil is { } until && until <= now).Select(k => k.Key).ToArray();
        foreach (var k in expired) _knobs[k].HeldUntil = null;
        return expired;
    }

    /// <summary>Starts <paramref name="knob"/> from nothing again.</summary>
    public void Forget(string knob) => _knobs.Remove(knob);

    /// <summary>A new spec: whatever fought the old one may not fight this one.</summary>
    public void Reset() => _knobs.Clear();
}
