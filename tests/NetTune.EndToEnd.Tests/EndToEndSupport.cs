using System.Diagnostics;
using System.Text.Json;
using k8s;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
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

/// <summary>The NetworkTuning calls both end-to-end suites make.</summary>
public static class Tunings
{
    public static async Task<NetworkTuning> ReadAsync(IKubernetes client, string name)
    {
        var json = await client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
        return KubernetesJson.Deserialize<NetworkTuning>(JsonSerializer.Serialize(json));
    }

    /// <summary>Deletes a tuning and waits until it is gone: its finalizer goes once its nodes reverted.</summary>
    public static async Task DeleteAndWaitGoneAsync(IKubernetes client, string name, TimeSpan patience, Func<Task<string>> explain)
    {
        try
        {
            await client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                await client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, name);
                return false;
            }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return true;
            }
        }, $"NetworkTuning {name} to be reverted and gone", patience, explain);
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
