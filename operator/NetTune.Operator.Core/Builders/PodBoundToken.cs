using k8s.Models;

namespace NetTune.Operator.Core.Builders;

/// <summary>
/// The agent's API credentials as a projected volume where the kubelet would mount the ServiceAccount's: a token
/// bound to the pod (the kubelet asks TokenRequest for it and renews it), the cluster's CA and the namespace. Before
/// 1.21 the kubelet mounts the ServiceAccount's Secret token instead, which names no pod; the admission webhook
/// needs the pod (userInfo.extra pod-name/pod-uid) to tell which node's NodeState the agent may change.
/// The CA comes from the kube-root-ca.crt ConfigMap that kube-controller-manager's root-ca-cert-publisher writes
/// into every namespace (on by default from 1.20).
/// </summary>
public static class PodBoundToken
{
    public const string VolumeName = "api-token";
    public const string MountPath = "/var/run/secrets/kubernetes.io/serviceaccount";

    /// <summary>An hour and a bit, as the kubelet's own projected tokens: it renews them at 80% of their life.</summary>
    public const long ExpirationSeconds = 3607;

    public static V1VolumeMount Mount => new() { Name = VolumeName, MountPath = MountPath, ReadOnlyProperty = true };

    public static V1Volume Volume => new()
    {
        Name = VolumeName,
        Projected = new V1ProjectedVolumeSource
        {
            Sources =
            [
                new V1VolumeProjection { ServiceAccountToken = new V1ServiceAccountTokenProjection { Path = "token", ExpirationSeconds = ExpirationSeconds } },
                new V1VolumeProjection { ConfigMap = new V1ConfigMapProjection { Name = "kube-root-ca.crt", Items = [new V1KeyToPath { Key = "ca.crt", Path = "ca.crt" }] } },
                new V1VolumeProjection
                {
                    DownwardAPI = new V1DownwardAPIProjection
                    {
                        Items = [new V1DownwardAPIVolumeFile { Path = "namespace", FieldRef = new V1ObjectFieldSelector { ApiVersion = "v1", FieldPath = "metadata.namespace" } }],
                    },
                },
            ],
        },
    };
}
