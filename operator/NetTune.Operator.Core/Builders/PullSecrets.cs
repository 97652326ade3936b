using k8s.Models;

namespace NetTune.Operator.Core.Builders;

/// <summary>The imagePullSecrets of the pods the operator makes (the agents, the data planes).</summary>
public static partial class PullSecrets
{
    /// <summary>The pod spec's list; null for none, so a spec without secrets hashes as it did before they existed.</summary>
    public static IList<V1LocalObjectReference>? References(IReadOnlyList<string> names) =>
        names.Count == 0 ? null : [.. names.Select(n => new V1LocalObjectReference { Name = n })];

    /// <summary>Why a name cannot be a Secret's (a DNS-1123 subdomain), or null when it can.</summary>
    public static string? Problem(string name) =>
        name.Length is 0 or > 253 || !SecretName().IsMatch(name)
            ? $"'{name}' is not a Secret name (lower-case letters, digits, '-' and '.', at most 253)"
            : null;

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial System.Text.RegularExpressions.Regex SecretName();
}
