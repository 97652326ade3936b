using NetTune.ControllerRuntime;
using Xunit;

namespace NetTune.Operator.Tests.Unit;

public sealed class RuntimeTests
{
    [Fact]
    public void BackoffDoublesPerFailureStaysWithinJitterAndIsCapped()
    {
        var initial = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(5);
        var random = new Random(7);
        Assert.Equal(TimeSpan.Zero, Backoff.Delay(initial, max, 0, random));
        for (var failures = 1; failures <= 12; failures++)
        {
            var nominal = Math.Min(100 * Math.Pow(2, failures - 1), 5000);
            var delay = Backoff.Delay(initial, max, failures, random).TotalMilliseconds;
            Assert.InRange(delay, nominal * 0.8, Math.Min(nominal * 1.2, 5000));
        }
        // Jitter: the same failure count does not always give the same delay.
        var samples = Enumerable.Range(0, 20).Select(_ => Backoff.Delay(initial, max, 3, random)).Distinct().Count();
        Assert.True(samples > 1);
    }

    [Fact]
    public async Task AKeyAddedManyTimesIsQueuedOnce()
    {
        using var queue = new WorkQueue();
        queue.Add("a");
        queue.Add("b");
        queue.Add("a");
        Assert.Equal(2, queue.Depth);
        Assert.Equal("a", await queue.GetAsync(CancellationToken.None));
        Assert.Equal("b", await queue.GetAsync(CancellationToken.None));
        Assert.Equal(0, queue.Depth);
    }

    [Fact]
    public async Task AKeyBeingProcessedIsNotHandedOutAgainUntilDone()
    {
        using var queue = new WorkQueue();
        queue.Add("a");
        var key = await queue.GetAsync(CancellationToken.None);
        queue.Add("a"); // a change arrives while "a" is being reconciled
        Assert.Equal(0, queue.Depth);
        using var none = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        Assert.Null(await queue.GetAsync(none.Token));

        queue.Done(key!);
        Assert.Equal(1, queue.Depth); // ... and is reconciled once more afterwards
        Assert.Equal("a", await queue.GetAsync(CancellationToken.None));
    }

    [Fact]
    public async Task FailuresCountUpAndForgetResetsThem()
    {
        using var queue = new WorkQueue(new WorkQueueOptions { BaseRetryDelay = TimeSpan.FromMilliseconds(10), MaxRetryDelay = TimeSpan.FromMilliseconds(40) });
        queue.AddRateLimited("a");
        queue.AddRateLimited("a");
        Assert.Equal(2, queue.Failures("a"));
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal("a", await queue.GetAsync(wait.Token)); // comes back after its backoff
        queue.Forget("a");
        Assert.Equal(0, queue.Failures("a"));
    }

    private sealed class CountingReconciler : IReconciler
    {
        private int _running;
        public int MaxConcurrentSameKey;
        public int Calls;

        public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken ct)
        {
            var now = Interlocked.Increment(ref _running);
            MaxConcurrentSameKey = Math.Max(MaxConcurrentSameKey, now);
            Interlocked.Increment(ref Calls);
            await Task.Delay(20, ct);
            Interlocked.Decrement(ref _running);
            return Calls < 3 ? ReconcileResult.Failed("not yet") : ReconcileResult.Done;
        }
    }

    [Fact]
    public async Task TheControllerRetriesFailuresAndNeverRunsOneKeyTwiceAtOnce()
    {
        using var queue = new WorkQueue(new WorkQueueOptions { BaseRetryDelay = TimeSpan.FromMilliseconds(5), MaxRetryDelay = TimeSpan.FromMilliseconds(20) });
        var reconciler = new CountingReconciler();
        var controller = new Controller("test", queue, reconciler, workers: 4, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var outcomes = new List<string>();
        controller.Reconciled += (_, outcome, _) => { lock (outcomes) outcomes.Add(outcome); };
        using var stop = new CancellationTokenSource();
        var run = controller.RunAsync(stop.Token);
        for (var i = 0; i < 20; i++) queue.Add("only");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && !outcomes.Contains("success")) await Task.Delay(10);
        stop.Cancel();
        queue.ShutDown();
        await run;

        Assert.Equal(1, reconciler.MaxConcurrentSameKey);
        Assert.Equal(["error", "error", "success"], outcomes.Take(3));
        Assert.Equal(0, queue.Failures("only"));
    }
}
