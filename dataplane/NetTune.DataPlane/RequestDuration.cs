using System.Diagnostics;

namespace NetTune.DataPlane;

/// <summary>
/// Buckets of nettune_dataplane_request_duration_seconds: from 50 µs (a cached file over loopback) to 5 s
/// (a large download or a stalled reader), plus +Inf. Bounds are kept in Stopwatch ticks so the worker
/// picks a bucket with integer compares only.
/// </summary>
internal static class RequestDuration
{
    public static readonly double[] UpperBoundsSeconds =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

    /// <summary>The finite buckets plus +Inf.</summary>
    public static int BucketCount => UpperBoundsSeconds.Length + 1;

    private static readonly long[] UpperBoundsTicks =
        UpperBoundsSeconds.Select(s => (long)Math.Round(s * Stopwatch.Frequency)).ToArray();

    public static int BucketOf(long ticks)
    {
        var bounds = UpperBoundsTicks;
        for (int i = 0; i < bounds.Length; i++)
            if (ticks <= bounds[i]) return i;
        return bounds.Length;
    }

    public static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    /// <summary>
    /// A value that the histogram files under bucket <paramref name="bucket"/> (lower bound exclusive,
    /// upper inclusive). The mean of values in a bucket lies in it already; this only guards against a
    /// racy read of a count and a sum that the worker was between updating.
    /// </summary>
    public static double ClampInto(int bucket, double seconds)
    {
        double upper = bucket < UpperBoundsSeconds.Length ? UpperBoundsSeconds[bucket] : double.PositiveInfinity;
        double lower = bucket == 0 ? 0 : Math.BitIncrement(UpperBoundsSeconds[bucket - 1]);
        return Math.Clamp(seconds, lower, upper);
    }
}
