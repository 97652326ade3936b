using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using NetTune.Chart.Tests.Support;
using NetTune.LocalCluster;
using NetTune.Operator.Admission;
using NetTune.Testing.Cluster;
using Xunit.Abstractions;

namespace NetTune.Chart.Tests;

/// <summary>
/// The installed chart's objects and RBAC are enough for the operator to own its webhook certificate: with the chart's
/// ServiceAccount token it fills the chart's empty Secret and sets the caBundle of the chart's webhook configuration,
/// and that token can do nothing more with Secrets or webhook configurations.
/// </summary>
[Collection("helm-cluster")]
public sealed class WebhookCertificateRbacTests(BareClusterFixture fixture, ITestOutputHelper output)
{
    private KubeCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task WithTheChartsTokenTheOperatorFillsItsSecretAndTheCaBundleAndNothingElse()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var ns = $"certs-{id}";
        var release = $"c{id}";
        var admin = Cluster.Client;
        var installed = await Tool.HelmRunAsync("3", "install", release, Tool.ChartDir, "-n", ns, "--create-namespace", "--kubeconfig", Cluster.KubeconfigPath);
        Assert.True(installed.ExitCode == 0, installed.Stderr);
        var fullname = $"{release}-nettune";
        var secretName = $"{fullname}-operator-webhook-certs";
        try
        {
            Assert.Null((await admin.CoreV1.ReadNamespacedSecretAsync(secretName, ns)).Data);
            Assert.All((await admin.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(fullname)).Webhooks, w => Assert.Null(w.ClientConfig.CaBundle));

            var token = await ClusterSupport.ServiceAccountTokenAsync(admin, ns, $"{fullname}-operator");
            using var operatorClient = ClusterSupport.ClientFor(Cluster, token, "operator");
            using var loggers = LoggerFactory.Create(b => b.AddProvider(new OutputLoggerProvider(output)));
            var hosts = new[] { $"{fullname}-operator-webhook.{ns}.svc" };
            var rotator = new CertificateRotator(operatorClient, ns, secretName, [fullname],
                new CertificatePolicy(TimeSpan.FromDays(90), TimeSpan.FromDays(30), TimeSpan.FromDays(365), hosts), TimeSpan.FromMinutes(1),
                () => true, loggers.CreateLogger("certificates"));
            await rotator.RoundAsync(CancellationToken.None);

            var set = CertificateSet.FromSecretData((await admin.CoreV1.ReadNamespacedSecretAsync(secretName, ns)).Data);
            Assert.NotNull(set);
            Assert.True(set.Serving.MatchesHostname(hosts[0]));
            Assert.Equal(set.Serving.Thumbprint, rotator.Current()!.Thumbprint);
            var config = await admin.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(fullname);
            Assert.Equal(2, config.Webhooks.Count);
            Assert.All(config.Webhooks, w => Assert.Equal(set.CaBundle, w.ClientConfig.CaBundle));

            // A helm upgrade keeps what the operator wrote: the chart sets neither the Secret's data nor the caBundle.
            var upgraded = await Tool.HelmRunAsync("3", "upgrade", release, Tool.ChartDir, "-n", ns, "--kubeconfig", Cluster.KubeconfigPath, "--set", "operator.workers=3",
                // No kubelet here runs the CRD upgrade hook's Job (CrdUpgradeHookTests runs its command instead).
                "--set", "crds.upgrade=false");
            Assert.True(upgraded.ExitCode == 0, upgraded.Stderr);
            Assert.Equal(set.Serving.Thumbprint, CertificateSet.FromSecretData((await admin.CoreV1.ReadNamespacedSecretAsync(secretName, ns)).Data)!.Serving.Thumbprint);
            Assert.All((await admin.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(fullname)).Webhooks, w => Assert.Equal(set.CaBundle, w.ClientConfig.CaBundle));

            // Nothing beyond: no other Secret, no listing, no creating, no other webhook configuration.
            await admin.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "other" } }, ns);
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.ReadNamespacedSecretAsync("other", ns), "operator reads another Secret");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.ListNamespacedSecretAsync(ns), "operator lists Secrets");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "x" } }, ns), "operator creates a Secret");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.CoreV1.DeleteNamespacedSecretAsync(secretName, ns), "operator deletes its Secret");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.AdmissionregistrationV1.ListValidatingWebhookConfigurationAsync(), "operator lists webhook configurations");
            await ClusterSupport.ForbiddenAsync(() => operatorClient.AdmissionregistrationV1.DeleteValidatingWebhookConfigurationAsync(fullname), "operator deletes its webhook configuration");
        }
        finally
        {
            var removed = await Tool.HelmRunAsync("3", "uninstall", release, "-n", ns, "--no-hooks", "--kubeconfig", Cluster.KubeconfigPath);
            output.WriteLine(removed.Stdout + removed.Stderr);
            await admin.CoreV1.DeleteNamespaceAsync(ns);
        }
    }
}
