using System.Text.Json;
using k8s;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Core.Builders;
using NetTune.Operator.Core.Rollout;

namespace NetTune.Operator;

/// <summary>
/// `nettune-operator uninstall`, the chart's pre-delete hook: deletes every NetworkTuning while the operator still
/// runs, so that each node reverts before the operator goes, and waits (bounded) until nothing NetTune made is left:
/// no NetworkTunings (their finalizers drop once the nodes report Reverted, or after the operator's revert timeout),
/// no NodeStates (it deletes those whose agent confirmed the revert once no tuning is left), no agent DaemonSet, no
/// data-plane pods. On timeout it names what is left and fails, so that
/// `helm uninstall` stops with the operator still running rather than leave tuned nodes and stuck finalizers.
/// </summary>
public sealed class Uninstaller(IKubernetes client, string ns, TextWriter log)
{
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <returns>0 when everything is gone, 1 on timeout.</returns>
    public async Task<int> RunAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var tunings = await ListTuningsAsync(ct).ConfigureAwait(false);
        foreach (var t in tunings.Where(t => t.Metadata.DeletionTimestamp is null))
        {
            try
            {
                await client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, t.Metadata.Name, cancellationToken: ct).ConfigureAwait(false);
                log.WriteLine($"deleted NetworkTuning {t.Metadata.Name}; its nodes revert");
            }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound) { }
        }

        string? last = null;
        while (true)
        {
            var left = await LeftoversAsync(ct).ConfigureAwait(false);
            if (left.Count == 0)
            {
                log.WriteLine("every NetworkTuning is gone and its nodes reverted; nothing of NetTune is left but the CRDs");
                return 0;
            }
            var summary = string.Join("; ", left);
            if (summary != last) log.WriteLine("waiting: " + summary);
            last = summary;
            try { await Task.Delay(PollInterval, deadline.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                log.WriteLine($"timed out after {timeout.TotalSeconds:0}s; left: {summary}");
                log.WriteLine("the operator keeps reverting; run `helm uninstall` again later, or see the chart's README (\"Stuck finalizers\") for the manual way out");
                return 1;
            }
        }
    }

    private async Task<List<string>> LeftoversAsync(CancellationToken ct)
    {
        var left = new List<string>();
        foreach (var t in await ListTuningsAsync(ct).ConfigureAwait(false))
        {
            var reverting = t.Status?.RevertingNodes is { Count: > 0 } nodes ? $", waiting for {string.Join(",", nodes)} to revert" : "";
            left.Add($"NetworkTuning {t.Metadata.Name}{reverting}");
        }
        var states = Parse<NetworkTuningNodeStateList>(await client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, cancellationToken: ct).ConfigureAwait(false));
        foreach (var state in states.Items)
        {
            // The operator keeps a node's NodeState (owned by the Node) after the revert; with no tuning left it
            // would stay for good. It goes once nothing is merged into it and its agent confirmed (or never ran).
            var name = state.Metadata.Name;
            if (left.Count == 0 && state.Spec.Sources is not { Count: > 0 }
                && (state.Status is null || AgentProgress.Of(state).State is AgentState.Reverted or AgentState.Applied))
            {
                try
                {
                    await client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, name, cancellationToken: ct).ConfigureAwait(false);
                    log.WriteLine($"deleted NetworkTuningNodeState {name} (reverted)");
                }
                catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound) { }
                continue;
            }
            left.Add(state.Spec.Sources is { Count: > 0 } sources
                ? $"NetworkTuningNodeState {name} (still merges {string.Join(",", sources.Select(x => x.Name))})"
                : $"NetworkTuningNodeState {name} (its agent has not confirmed the revert: {AgentProgress.Of(state).State})");
        }
        var daemonSets = await client.AppsV1.ListNamespacedDaemonSetAsync(ns, labelSelector: $"{Names.AppName}={Names.AgentApp}", cancellationToken: ct).ConfigureAwait(false);
        left.AddRange(daemonSets.Items.Select(d => $"DaemonSet {ns}/{d.Metadata.Name}"));
        var pods = await client.CoreV1.ListNamespacedPodAsync(ns, labelSelector: $"{Names.AppName}={Names.DataPlaneApp}", cancellationToken: ct).ConfigureAwait(false);
        left.AddRange(pods.Items.Select(p => $"data-plane Pod {ns}/{p.Metadata.Name}"));
        return left;
    }

    private async Task<IList<NetworkTuning>> ListTuningsAsync(CancellationToken ct) =>
        Parse<NetworkTuningList>(await client.CustomObjects.ListClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, cancellationToken: ct).ConfigureAwait(false)).Items;

    private static T Parse<T>(object body) => body is JsonElement e ? KubernetesJson.Deserialize<T>(e) : KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(body));
}
