using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace NetTune.Chart.Tests.Support;

// The fields of cert-manager's kinds (cert-manager.io/v1) that the chart uses, named as in their CRDs, so the rendered
// objects are checked field by field like the others (KubernetesClient has no models for them).

public sealed class Certificate : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonPropertyName("spec")] public CertificateSpec Spec { get; set; } = new();
}

public sealed class CertificateSpec
{
    [JsonPropertyName("secretName")] public string SecretName { get; set; } = "";
    [JsonPropertyName("commonName")] public string? CommonName { get; set; }
    [JsonPropertyName("dnsNames")] public List<string>? DnsNames { get; set; }
    [JsonPropertyName("duration")] public string? Duration { get; set; }
    [JsonPropertyName("renewBefore")] public string? RenewBefore { get; set; }
    [JsonPropertyName("privateKey")] public CertificatePrivateKey? PrivateKey { get; set; }
    [JsonPropertyName("usages")] public List<string>? Usages { get; set; }
    [JsonPropertyName("issuerRef")] public IssuerReference IssuerRef { get; set; } = new();
}

public sealed class CertificatePrivateKey
{
    [JsonPropertyName("algorithm")] public string? Algorithm { get; set; }
    [JsonPropertyName("size")] public int? Size { get; set; }
    [JsonPropertyName("rotationPolicy")] public string? RotationPolicy { get; set; }
}

public sealed class IssuerReference
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("kind")] public string? Kind { get; set; }
    [JsonPropertyName("group")] public string? Group { get; set; }
}

public sealed class Issuer : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonPropertyName("spec")] public IssuerSpec Spec { get; set; } = new();
}

public sealed class IssuerSpec
{
    [JsonPropertyName("selfSigned")] public Dictionary<string, object>? SelfSigned { get; set; }
}
