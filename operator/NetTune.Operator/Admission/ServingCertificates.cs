using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace NetTune.Operator.Admission;

/// <summary>How long the webhooks' certificates live and which names the serving certificate carries.</summary>
/// <param name="Validity">Lifetime of a serving certificate.</param>
/// <param name="RenewBefore">A serving certificate is replaced when it has less than this left.</param>
/// <param name="CaValidity">Lifetime of a CA; a CA is replaced when it could no longer sign a serving certificate of full <paramref name="Validity"/>.</param>
/// <param name="Hosts">DNS names (the webhook Service's) or IP addresses the serving certificate is for.</param>
public sealed record CertificatePolicy(TimeSpan Validity, TimeSpan RenewBefore, TimeSpan CaValidity, IReadOnlyList<string> Hosts)
{
    public IEnumerable<string> Problems(TimeSpan checkInterval)
    {
        if (Hosts.Count == 0) yield return "the serving certificate needs at least one host name";
        if (RenewBefore <= TimeSpan.Zero || RenewBefore >= Validity) yield return $"renew-before ({RenewBefore.TotalSeconds} s) must be above 0 and below the validity ({Validity.TotalSeconds} s)";
        // A CA must outlive the serving certificates it signs by a whole renewal round, or it is replaced at once.
        if (CaValidity < 2 * Validity) yield return $"the CA validity ({CaValidity.TotalSeconds} s) must be at least twice the serving certificate's ({Validity.TotalSeconds} s)";
        // Every replica must have loaded a new certificate well before the old one runs out.
        if (checkInterval <= TimeSpan.Zero || checkInterval * 2 > RenewBefore) yield return $"the check interval ({checkInterval.TotalSeconds} s) must be above 0 and at most half of renew-before ({RenewBefore.TotalSeconds} s)";
    }
}

/// <summary>
/// The webhooks' certificates as kept in their Secret: the CA bundle the API server trusts (newest CA first, older
/// ones while serving certificates they signed may still be in use), the newest CA's key, and the serving pair.
/// </summary>
public sealed class CertificateSet
{
    public const string CaBundleKey = "ca.crt";
    public const string CaKeyKey = "ca.key";
    public const string CertKey = "tls.crt";
    public const string KeyKey = "tls.key";

    public CertificateSet(IReadOnlyList<X509Certificate2> cas, string caKeyPem, X509Certificate2 serving, string servingKeyPem)
    {
        Cas = cas;
        CaKeyPem = caKeyPem;
        Serving = serving;
        ServingKeyPem = servingKeyPem;
    }

    public IReadOnlyList<X509Certificate2> Cas { get; }
    public X509Certificate2 Ca => Cas[0];
    public string CaKeyPem { get; }
    public X509Certificate2 Serving { get; }
    public string ServingKeyPem { get; }

    /// <summary>The PEM bundle for the webhook configurations' caBundle (the Secret's ca.crt).</summary>
    public byte[] CaBundle => Encoding.ASCII.GetBytes(string.Concat(Cas.Select(c => c.ExportCertificatePem() + "\n")));

    public Dictionary<string, byte[]> ToSecretData() => new()
    {
        [CaBundleKey] = CaBundle,
        [CaKeyKey] = Encoding.ASCII.GetBytes(CaKeyPem),
        [CertKey] = Encoding.ASCII.GetBytes(Serving.ExportCertificatePem() + "\n"),
        [KeyKey] = Encoding.ASCII.GetBytes(ServingKeyPem),
    };

    /// <summary>The set in a Secret's data, or null when any part is missing or does not parse (an empty Secret the chart made).</summary>
    public static CertificateSet? FromSecretData(IDictionary<string, byte[]>? data)
    {
        if (data is null || !data.TryGetValue(CaBundleKey, out var bundle) || !data.TryGetValue(CaKeyKey, out var caKey)
            || !data.TryGetValue(CertKey, out var cert) || !data.TryGetValue(KeyKey, out var key)) return null;
        try
        {
            var cas = new X509Certificate2Collection();
            cas.ImportFromPem(Encoding.ASCII.GetString(bundle));
            if (cas.Count == 0) return null;
            // CopyWithPrivateKey throws when a key is not the certificate's.
            var caKeyPem = Encoding.ASCII.GetString(caKey);
            using (var k = LoadKey(caKeyPem))
            using (cas[0].CopyWithPrivateKey(k)) { }
            var servingKeyPem = Encoding.ASCII.GetString(key);
            var serving = X509Certificate2.CreateFromPem(Encoding.ASCII.GetString(cert));
            using (var k = LoadKey(servingKeyPem))
            using (serving.CopyWithPrivateKey(k)) { }
            return new CertificateSet([.. cas], caKeyPem, serving, servingKeyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The serving certificate with its key, in the form Kestrel hands to OpenSSL.</summary>
    public X509Certificate2 ServingWithKey()
    {
        using var key = LoadKey(ServingKeyPem);
        using var withKey = Serving.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    internal static ECDsa LoadKey(string pem)
    {
        var key = ECDsa.Create();
        key.ImportFromPem(pem);
        return key;
    }

    /// <summary>Whether the serving certificate was signed by <paramref name="ca"/> (its key, not just its name).</summary>
    public bool ServingSignedBy(X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        return chain.Build(Serving) && chain.ChainElements[^1].Certificate.Thumbprint == ca.Thumbprint;
    }
}

/// <summary>
/// What the webhooks' certificates should be now: decisions only, no I/O (the rotator reads and writes the Secret and
/// the webhook configurations). The order of a CA change keeps every API server call trusted:
/// 1. a new CA joins the bundle (first) while the serving certificate stays the one the old CA signed;
/// 2. once the webhook configurations carry the bundle with the new CA, the next round signs a serving certificate with it;
/// 3. the old CA leaves the bundle when it expires (no serving certificate outlives its CA).
/// A serving certificate is renewed <see cref="CertificatePolicy.RenewBefore"/> before it expires, so every replica
/// has read the new one from the Secret long before the old one stops being accepted.
/// </summary>
public static class CertificatePlanner
{
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    /// <param name="current">The Secret's set; null when the Secret holds none (or a broken one).</param>
    /// <param name="newestCaInstalled">Whether every webhook configuration's caBundle already has <paramref name="current"/>'s newest CA.</param>
    /// <returns>The set to write, or null when <paramref name="current"/> is fine as it is.</returns>
    public static CertificateSet? Plan(CertificateSet? current, DateTimeOffset now, bool newestCaInstalled, CertificatePolicy policy)
    {
        if (current is null || current.Ca.NotAfter.ToUniversalTime() <= now.UtcDateTime)
            return Fresh(now, policy);

        var live = current.Cas.Where((c, i) => i == 0 || c.NotAfter.ToUniversalTime() > now.UtcDateTime).ToList();
        var servingUsable = ServingUsable(current, now, policy);
        if (current.Ca.NotAfter.ToUniversalTime() - now.UtcDateTime < policy.Validity)
        {
            // Step 1: the old CA still signs this round's serving certificate if one is due; its key is gone afterwards.
            var (ca, caKey) = NewCa(now, policy);
            var (serving, servingKey) = servingUsable && Remaining(current.Serving, now) >= policy.RenewBefore
                ? (current.Serving, current.ServingKeyPem)
                : Issue(current.Ca, current.CaKeyPem, now, policy);
            return new CertificateSet([ca, .. live], caKey, serving, servingKey);
        }

        var due = !servingUsable || Remaining(current.Serving, now) < policy.RenewBefore
                  || (newestCaInstalled && !current.ServingSignedBy(current.Ca));
        if (!due) return live.Count == current.Cas.Count ? null : new CertificateSet(live, current.CaKeyPem, current.Serving, current.ServingKeyPem);
        var (next, nextKey) = Issue(current.Ca, current.CaKeyPem, now, policy);
        return new CertificateSet(live, current.CaKeyPem, next, nextKey);
    }

    private static TimeSpan Remaining(X509Certificate2 c, DateTimeOffset now) => c.NotAfter.ToUniversalTime() - now.UtcDateTime;

    /// <summary>Valid now, for exactly the policy's hosts, and signed by a CA of the bundle.</summary>
    private static bool ServingUsable(CertificateSet set, DateTimeOffset now, CertificatePolicy policy)
    {
        if (Remaining(set.Serving, now) <= TimeSpan.Zero) return false;
        if (!Hosts(set.Serving).SetEquals(policy.Hosts.Select(Normalize))) return false;
        return set.Cas.Any(set.ServingSignedBy);
    }

    private static HashSet<string> Hosts(X509Certificate2 c)
    {
        var san = c.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (san is null) return [];
        return [.. san.EnumerateDnsNames().Select(Normalize), .. san.EnumerateIPAddresses().Select(a => a.ToString())];
    }

    private static string Normalize(string host) => IPAddress.TryParse(host, out var ip) ? ip.ToString() : host.ToLowerInvariant();

    private static CertificateSet Fresh(DateTimeOffset now, CertificatePolicy policy)
    {
        var (ca, caKey) = NewCa(now, policy);
        var (serving, servingKey) = Issue(ca, caKey, now, policy);
        return new CertificateSet([ca], caKey, serving, servingKey);
    }

    private static (X509Certificate2, string) NewCa(DateTimeOffset now, CertificatePolicy policy)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // A name of its own per CA: while two CAs share the bundle, chain building must not take one for the other.
        var request = new CertificateRequest($"CN=nettune-webhook-ca-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var ca = request.CreateSelfSigned(now - ClockSkew, now + policy.CaValidity);
        return (X509CertificateLoader.LoadCertificate(ca.RawData), key.ExportPkcs8PrivateKeyPem());
    }

    private static (X509Certificate2, string) Issue(X509Certificate2 ca, string caKeyPem, DateTimeOffset now, CertificatePolicy policy)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={policy.Hosts[0]}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var host in policy.Hosts)
        {
            if (IPAddress.TryParse(host, out var ip)) san.AddIpAddress(ip);
            else san.AddDnsName(host);
        }
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        using var caKey = CertificateSet.LoadKey(caKeyPem);
        using var issuer = ca.CopyWithPrivateKey(caKey);
        // No serving certificate outlives the CA that vouches for it.
        var notAfter = Min(now + policy.Validity, new DateTimeOffset(ca.NotAfter.ToUniversalTime()));
        var serial = RandomNumberGenerator.GetBytes(16);
        // A positive serial: Go (the API server) refuses negative ones since 1.23.
        serial[0] = (byte)((serial[0] & 0x7F) | 0x01);
        using var cert = request.Create(issuer, now - ClockSkew, notAfter, serial);
        return (X509CertificateLoader.LoadCertificate(cert.RawData), key.ExportPkcs8PrivateKeyPem());
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;
}
