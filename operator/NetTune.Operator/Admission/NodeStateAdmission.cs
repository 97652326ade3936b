using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Operator.Core.Builders;

namespace NetTune.Operator.Admission;

/// <summary>The verdict on one admission request.</summary>
public sealed record AdmissionVerdict(bool Allowed, string? Message = null, int Code = 200)
{
    public static readonly AdmissionVerdict Allow = new(true);

    public static AdmissionVerdict Deny(string message) => new(false, message, 403);
}

/// <summary>
/// Ties each agent's writes to its own node's NetworkTuningNodeState. RBAC cannot: the agents share one
/// ServiceAccount, and a ClusterRole cannot say "only the object named like the caller's node".
/// The caller's node comes from what the API server tells a webhook about the caller:
/// - from 1.30, a pod-bound token's user has extra <c>authentication.kubernetes.io/node-name</c>: taken as is;
/// - before that (v1.20 included; checked against the test apiserver), a pod-bound token (a projected
///   serviceAccountToken volume, or TokenRequest with a Pod boundObjectRef) has extra
///   <c>authentication.kubernetes.io/pod-name</c> and <c>pod-uid</c>: the pod is read, and must be that uid, run as
///   the agent ServiceAccount and be bound to the node the NodeState is named after;
/// - a legacy Secret token names no pod and so no node: the agent's writes with it are refused. The agent DaemonSet
///   mounts a pod-bound token for that reason.
/// Any other user passes untouched: RBAC decides for the operator and for people.
/// </summary>
public sealed class NodeStateAdmission(IKubernetes client, string agentNamespace, string agentServiceAccount = Names.AgentServiceAccount)
{
    public const string PodNameKey = "authentication.kubernetes.io/pod-name";
    public const string PodUidKey = "authentication.kubernetes.io/pod-uid";
    public const string NodeNameKey = "authentication.kubernetes.io/node-name";

    public string AgentUser => $"system:serviceaccount:{agentNamespace}:{agentServiceAccount}";

    public async Task<AdmissionVerdict> ReviewAsync(JsonNode request, CancellationToken ct)
    {
        var user = request["userInfo"]?["username"]?.GetValue<string>();
        if (user != AgentUser) return AdmissionVerdict.Allow;
        var node = request["name"]?.GetValue<string>() ?? request["object"]?["metadata"]?["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(node)) return AdmissionVerdict.Deny("the agent may only change a NetworkTuningNodeState it names");
        var extra = request["userInfo"]?["extra"];
        var claimedNode = First(extra, NodeNameKey);
        if (claimedNode is not null)
            return claimedNode == node ? AdmissionVerdict.Allow
                : AdmissionVerdict.Deny($"the agent on node {claimedNode} may not change the NetworkTuningNodeState of node {node}");

        var podName = First(extra, PodNameKey);
        var podUid = First(extra, PodUidKey);
        if (podName is null || podUid is null)
            return AdmissionVerdict.Deny($"{AgentUser} must use a pod-bound ServiceAccount token (a projected serviceAccountToken volume); this token names no pod, so not the node it runs on");

        V1Pod pod;
        try
        {
            pod = await client.CoreV1.ReadNamespacedPodAsync(podName, agentNamespace, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return AdmissionVerdict.Deny($"pod {agentNamespace}/{podName} of the token does not exist");
        }
        if (pod.Metadata.Uid != podUid)
            return AdmissionVerdict.Deny($"pod {agentNamespace}/{podName} is not the pod the token was issued to (uid {podUid})");
        if ((pod.Spec.ServiceAccountName ?? "default") != agentServiceAccount)
            return AdmissionVerdict.Deny($"pod {agentNamespace}/{podName} does not run as {agentServiceAccount}");
        if (pod.Spec.NodeName != node)
            return AdmissionVerdict.Deny($"the agent pod {podName} runs on node {(string.IsNullOrEmpty(pod.Spec.NodeName) ? "(none yet)" : pod.Spec.NodeName)} and may not change the NetworkTuningNodeState of node {node}");
        return AdmissionVerdict.Allow;
    }

    private static string? First(JsonNode? extra, string key) =>
        extra?[key] is JsonArray { Count: > 0 } values ? values[0]?.GetValue<string>() : null;

    /// <summary>An admission.k8s.io/v1 AdmissionReview response for <paramref name="review"/>.</summary>
    public static JsonObject Respond(JsonNode review, AdmissionVerdict verdict)
    {
        var response = new JsonObject
        {
            ["uid"] = review["request"]?["uid"]?.GetValue<string>(),
            ["allowed"] = verdict.Allowed,
        };
        if (!verdict.Allowed)
            response["status"] = new JsonObject { ["code"] = verdict.Code, ["reason"] = "Forbidden", ["message"] = verdict.Message };
        return new JsonObject
        {
            ["apiVersion"] = review["apiVersion"]?.GetValue<string>() ?? "admission.k8s.io/v1",
            ["kind"] = "AdmissionReview",
            ["response"] = response,
        };
    }
}
