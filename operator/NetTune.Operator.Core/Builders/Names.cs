using System.Security.Cryptography;
using System.Text;
using k8s;

namespace NetTune.Operator.Core.Builders;

/// <summary>Labels, annotations and names the operator puts on what it creates.</summary>
public static class Names
{
    public const string Finalizer = "nettune.io/revert";
    public const string ManagedBy = "app.kubernetes.io/managed-by";
    public const string ManagedByValue = "nettune-operator";
    public const string AppName = "app.kubernetes.io/name";
    public const string AgentApp = "nettune-agent";
    public const string DataPlaneApp = "nettune-dataplane";
    public const string TuningLabel = "nettune.io/tuning";
    public const string NodeLabel = "nettune.io/node";
    public const string NumaLabel = "nettune.io/numa-node";
    public const string SpecHashAnnotation = "nettune.io/spec-hash";
    /// <summary>
    /// On a data-plane pod: the CPUs its unit could have had without counting other pods (its CPUs outside the
    /// housekeeping ones, capped by the node's allocatable share). While that stays the same the pod keeps its size, so
    /// pods that come and go beside it do not make it replaced.
    /// </summary>
    public const string CpuCapAnnotation = "nettune.io/cpu-cap";
    public const string AgentDaemonSet = "nettune-agent";
    public const string AgentServiceAccount = "nettune-agent";

    /// <summary>Set by the node's agent while the current boot has the node's tuning applied; the data-plane pods require it.</summary>
    public const string NodeTunedLabel = NetTune.Api.V1Alpha1.NodeLabels.Tuned;

    /// <summary>The operator sets it on every node that needs an agent and removes it only once the node reported Reverted.</summary>
    public const string AgentNodeLabel = "nettune.io/agent";

    public static string? Annotation(k8s.Models.V1ObjectMeta? meta, string key) =>
        meta?.Annotations is { } a && a.TryGetValue(key, out var value) ? value : null;

    /// <summary>A short stable hash of an object's JSON, to tell whether what exists is what we would build.</summary>
    public static string Hash(object value)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(KubernetesJson.Serialize(value)));
        return Convert.ToHexStringLower(bytes)[..16];
    }

    /// <summary>
    /// A value that fits a label (63 characters): the text itself when it fits, else a prefix and a hash of the whole,
    /// so distinct inputs stay distinct.
    /// </summary>
    public static string LabelValue(string text)
    {
        if (text.Length <= 63) return text;
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..10];
        return text[..52].TrimEnd('-', '.', '_') + "-" + hash;
    }

    /// <summary>A DNS-1123 subdomain name of at most <paramref name="max"/> characters, shortened with a hash when needed.</summary>
    public static string ObjectName(string text, int max = 253)
    {
        var lower = text.ToLowerInvariant();
        if (lower.Length <= max) return lower;
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lower)))[..10];
        return lower[..(max - 11)].TrimEnd('-', '.') + "-" + hash;
    }
}
