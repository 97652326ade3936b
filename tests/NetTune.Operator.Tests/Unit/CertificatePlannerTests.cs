using System.Text;
using NetTune.Operator.Admission;
using Xunit;

namespace NetTune.Operator.Tests.Unit;

/// <summary>The webhook certificates' life, decided without a cluster: made, renewed, and a CA replaced in two steps.</summary>
public sealed class CertificatePlannerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly CertificatePolicy Policy = new(TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(120), ["svc.ns.svc", "127.0.0.1"]);

    private static CertificateSet RoundTrip(CertificateSet set) => CertificateSet.FromSecretData(set.ToSecretData())!;

    [Fact]
    public void AnEmptySecretGetsACaAndAServingCertificateForTheHosts()
    {
        var set = RoundTrip(CertificatePlanner.Plan(null, T0, false, Policy)!);
        Assert.Single(set.Cas);
        Assert.True(set.ServingSignedBy(set.Ca));
        Assert.True(set.Serving.MatchesHostname("svc.ns.svc"));
        Assert.Equal(T0 + Policy.Validity, new DateTimeOffset(set.Serving.NotAfter.ToUniversalTime()));
        Assert.Equal(T0 + Policy.CaValidity, new DateTimeOffset(set.Ca.NotAfter.ToUniversalTime()));
        // The serial is positive (Go refuses negative ones) and the key matches.
        Assert.True((set.Serving.SerialNumberBytes.Span[0] & 0x80) == 0);
        using var withKey = set.ServingWithKey();
        Assert.True(withKey.HasPrivateKey);
    }

    [Fact]
    public void TheServingCertificateIsRenewedBeforeItExpiresWithTheSameCa()
    {
        var first = CertificatePlanner.Plan(null, T0, false, Policy)!;
        Assert.Null(CertificatePlanner.Plan(first, T0.AddSeconds(19), true, Policy));
        var renewed = CertificatePlanner.Plan(first, T0.AddSeconds(21), true, Policy)!;
        Assert.NotEqual(first.Serving.Thumbprint, renewed.Serving.Thumbprint);
        Assert.Equal(first.Ca.Thumbprint, renewed.Ca.Thumbprint);
        Assert.Equal(first.CaBundle, renewed.CaBundle);
        Assert.True(renewed.ServingSignedBy(first.Ca));
    }

    [Fact]
    public void ANewCaIsTrustedBeforeItSignsAndTheOldOneLeavesWhenItExpires()
    {
        var set = CertificatePlanner.Plan(null, T0, false, Policy)!;
        set = CertificatePlanner.Plan(set, T0.AddSeconds(50), true, Policy)!;   // serving renewed, same CA
        var oldCa = set.Ca;
        var oldServing = set.Serving;

        // Step 1 at 61 s: the CA can no longer sign 60 s; a new one leads the bundle, the serving certificate stays.
        set = CertificatePlanner.Plan(set, T0.AddSeconds(61), true, Policy)!;
        Assert.Equal(2, set.Cas.Count);
        Assert.Equal(oldCa.Thumbprint, set.Cas[1].Thumbprint);
        Assert.Equal(oldServing.Thumbprint, set.Serving.Thumbprint);

        // Step 2 waits until the webhook configurations carry the new CA.
        Assert.Null(CertificatePlanner.Plan(set, T0.AddSeconds(63), false, Policy));
        set = CertificatePlanner.Plan(set, T0.AddSeconds(63), true, Policy)!;
        Assert.True(set.ServingSignedBy(set.Ca));
        Assert.Equal(2, set.Cas.Count);

        // Step 3: the old CA expired (at 120 s), and with it everything it signed: out of the bundle.
        set = CertificatePlanner.Plan(set, T0.AddSeconds(121), true, Policy) ?? set;
        Assert.Single(set.Cas);
        Assert.NotEqual(oldCa.Thumbprint, set.Ca.Thumbprint);
    }

    [Fact]
    public void AServingCertificateDueDuringStepOneIsSignedByTheOldCaWhoseKeyIsStillAtHand()
    {
        var set = CertificatePlanner.Plan(null, T0, false, Policy)!;
        // 61 s: the serving certificate expired (at 60 s) and the CA is due; no round ran in between.
        var next = CertificatePlanner.Plan(set, T0.AddSeconds(61), false, Policy)!;
        Assert.Equal(2, next.Cas.Count);
        Assert.True(next.ServingSignedBy(next.Cas[1]));
        Assert.True(next.Serving.NotAfter <= next.Cas[1].NotAfter);
    }

    [Fact]
    public void OtherHostsOrABrokenSecretGetNewCertificates()
    {
        var set = CertificatePlanner.Plan(null, T0, false, Policy)!;
        var moved = CertificatePlanner.Plan(set, T0.AddSeconds(1), true, Policy with { Hosts = ["other.ns.svc"] })!;
        Assert.Equal(set.Ca.Thumbprint, moved.Ca.Thumbprint);
        Assert.True(moved.Serving.MatchesHostname("other.ns.svc"));

        var data = set.ToSecretData();
        data[CertificateSet.KeyKey] = Encoding.ASCII.GetBytes("not a key");
        Assert.Null(CertificateSet.FromSecretData(data));
        data = set.ToSecretData();
        data.Remove(CertificateSet.CaKeyKey);
        Assert.Null(CertificateSet.FromSecretData(data));
    }

    [Fact]
    public void PoliciesThatCannotRotateWithoutAGapAreRefused()
    {
        Assert.Empty(Policy.Problems(TimeSpan.FromSeconds(2)));
        Assert.Contains(Policy.Problems(TimeSpan.FromSeconds(30)), p => p.Contains("check interval"));
        Assert.Contains((Policy with { RenewBefore = TimeSpan.FromSeconds(60) }).Problems(TimeSpan.FromSeconds(2)), p => p.Contains("renew-before"));
        Assert.Contains((Policy with { CaValidity = TimeSpan.FromSeconds(90) }).Problems(TimeSpan.FromSeconds(2)), p => p.Contains("CA validity"));
        Assert.Contains((Policy with { Hosts = [] }).Problems(TimeSpan.FromSeconds(2)), p => p.Contains("host"));
    }
}
