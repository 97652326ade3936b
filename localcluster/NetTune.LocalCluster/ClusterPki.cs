using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace NetTune.LocalCluster;

/// <summary>
/// The certificates and keys a throwaway cluster needs: a CA (so clients verify the apiserver instead of skipping TLS
/// checks), the apiserver's serving certificate, the service-account signing key pair, and the serving certificate of
/// the cluster's image registry on loopback (<see cref="LocalRegistry"/>), which containerd and helm verify with the CA.
/// </summary>
public static class ClusterPki
{
    /// <summary>
    /// A handler that trusts exactly the CA in <paramref name="caFile"/>: clients check the cluster's servers (the
    /// apiserver, the registry) as a real client would, rather than skip the check.
    /// </summary>
    public static HttpClientHandler TrustingOnly(string caFile)
    {
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(caFile));
        return new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) =>
            {
                if (cert is null) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                return chain.Build(cert);
            },
        };
    }

    internal sealed record Files(string CaCert, string ServingCert, string ServingKey, string ServiceAccountKey, string ServiceAccountPub,
        string KubeletClientCert, string KubeletClientKey, string RegistryCert, string RegistryKey);

    internal static Files Write(string dir)
    {
        using var caKey = RSA.Create(2048);
        var caReq = new CertificateRequest("CN=nettune-test-ca", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false));
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        using var ca = caReq.CreateSelfSigned(notBefore, notBefore.AddDays(7));

        using var servingKey = RSA.Create(2048);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        // The `kubernetes` Service's ClusterIP, which pods on the real node reach the apiserver through.
        san.AddIpAddress(LocalNode.KubernetesServiceIp);
        san.AddDnsName("localhost");
        san.AddDnsName("kubernetes");
        san.AddDnsName("kubernetes.default");
        san.AddDnsName("kubernetes.default.svc");
        san.AddDnsName("kubernetes.default.svc.cluster.local");
        using var serving = Issue(ca, notBefore, "CN=kube-apiserver", servingKey, san, ServerAuth);

        // The apiserver's client certificate towards kubelets (logs, exec): in system:masters, so the kubelet's
        // webhook authorizer allows it everything.
        using var kubeletClientKey = RSA.Create(2048);
        using var kubeletClient = Issue(ca, notBefore, "CN=kube-apiserver-kubelet-client, O=system:masters", kubeletClientKey, null, ClientAuth);

        using var registryKey = RSA.Create(2048);
        var registrySan = new SubjectAlternativeNameBuilder();
        registrySan.AddIpAddress(LocalRegistry.Address);
        registrySan.AddDnsName("localhost");
        using var registry = Issue(ca, notBefore, "CN=nettune-local-registry", registryKey, registrySan, ServerAuth);

        using var saKey = RSA.Create(2048);
        var files = new Files(
            Path.Combine(dir, "ca.crt"), Path.Combine(dir, "apiserver.crt"), Path.Combine(dir, "apiserver.key"),
            Path.Combine(dir, "sa.key"), Path.Combine(dir, "sa.pub"),
            Path.Combine(dir, "apiserver-kubelet-client.crt"), Path.Combine(dir, "apiserver-kubelet-client.key"),
            Path.Combine(dir, "registry.crt"), Path.Combine(dir, "registry.key"));
        File.WriteAllText(files.CaCert, ca.ExportCertificatePem());
        File.WriteAllText(files.ServingCert, serving.ExportCertificatePem());
        File.WriteAllText(files.ServingKey, servingKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(files.ServiceAccountKey, saKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(files.ServiceAccountPub, saKey.ExportSubjectPublicKeyInfoPem());
        File.WriteAllText(files.KubeletClientCert, kubeletClient.ExportCertificatePem());
        File.WriteAllText(files.KubeletClientKey, kubeletClientKey.ExportRSAPrivateKeyPem());
        File.WriteAllText(files.RegistryCert, registry.ExportCertificatePem());
        File.WriteAllText(files.RegistryKey, registryKey.ExportRSAPrivateKeyPem());
        return files;
    }

    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    /// <summary>A leaf certificate signed by the CA for a week, for TLS servers or clients (<paramref name="usage"/>).</summary>
    private static X509Certificate2 Issue(X509Certificate2 ca, DateTimeOffset notBefore, string subject, RSA key, SubjectAlternativeNameBuilder? san, string usage)
    {
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (san is not null) req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        return req.Create(ca, notBefore, notBefore.AddDays(7), RandomNumberGenerator.GetBytes(16));
    }
}
