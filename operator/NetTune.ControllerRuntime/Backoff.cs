namespace NetTune.ControllerRuntime;

public static class Backoff
{
    /// <summary>
    /// <paramref name="initial"/> doubled per failure after the first, capped at <paramref name="max"/>, with up to
    /// ±20% jitter so many retries do not fire at once.
    /// </summary>
    public static TimeSpan Delay(TimeSpan initial, TimeSpan max, int failures, Random? random = null)
    {
        if (failures <= 0) return TimeSpan.Zero;
        var exponent = Math.Min(failures - 1, 30);
        var ticks = Math.Min(initial.Ticks * Math.Pow(2, exponent), max.Ticks);
        var jitter = 0.8 + 0.4 * (random ?? Random.Shared).NextDouble();
        return TimeSpan.FromTicks((long)Math.Min(ticks * jitter, max.Ticks));
    }
}
