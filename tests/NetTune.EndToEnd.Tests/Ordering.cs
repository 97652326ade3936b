using System.Diagnostics;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace NetTune.EndToEnd.Tests;

/// <summary>Polls a condition with a deadline; the message says what was awaited.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, Func<Task<string>>? explain = null)
    {
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is k8s.Autorest.HttpOperationException or HttpRequestException or IOException or TaskCanceledException)
            {
                last = e;
            }
            await Task.Delay(500);
        }
        var more = explain is null ? "" : "\n" + await explain();
        throw new TimeoutException($"timed out after {timeout.TotalSeconds:0}s waiting for {what} ({last?.Message}){more}");
    }
}

[AttributeUsage(AttributeTargets.Method)]
public sealed class OrderAttribute(int order) : Attribute
{
    public int Order { get; } = order;
}

/// <summary>Runs a class's tests by their <see cref="OrderAttribute"/>: they share one node and its history.</summary>
public sealed class ByOrderAttribute : ITestCaseOrderer
{
    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethod.Method.GetCustomAttributes(typeof(OrderAttribute).AssemblyQualifiedName)
            .Select(a => a.GetNamedArgument<int>(nameof(OrderAttribute.Order))).FirstOrDefault());
}
