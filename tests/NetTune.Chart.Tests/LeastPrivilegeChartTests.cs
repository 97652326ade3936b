using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s.Models;
using NetTune.Chart.Tests.Support;

namespace NetTune.Chart.Tests;

/// <summary>The chart's admission webhooks, data-plane allow-lists and pre-delete uninstall hook, as rendered.</summary>
public sealed class LeastPrivilegeChartTests
{
    public static TheoryData<string> Helms => new(TheChart.HelmMajors);

    [Theory, MemberData(nameof(Helms))]
    public async Task RegistersBothWebhooksWithACertificateTheApiServerCanVerify(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var config = objects.Single<V1ValidatingWebhookConfiguration>();
        Assert.Equal(["networktunings.nettune.io", "nodestates.nettune.io"], config.Webhooks.Select(w => w.Name).Order(StringComparer.Ordinal));
        var nodeStates = config.Webhooks.Single(w => w.Name == "nodestates.nettune.io");
        Assert.Equal(["networktuningnodestates", "networktuningnodestates/status"], nodeStates.Rules.Single().Resources);
        Assert.Equal(["CREATE", "UPDATE", "DELETE"], nodeStates.Rules.Single().Operations);
        Assert.Equal("/validate/nodestates", nodeStates.ClientConfig.Service.Path);
        Assert.Equal("/validate/networktunings", config.Webhooks.Single(w => w.Name == "networktunings.nettune.io").ClientConfig.Service.Path);
        Assert.All(config.Webhooks, w =>
        {
            Assert.Equal("Fail", w.FailurePolicy);
            Assert.Equal("None", w.SideEffects);
            Assert.Equal(["v1"], w.AdmissionReviewVersions);
        });

        // The Service reaches the operator pods' webhook port, which the operator serves with the mounted Secret.
        var deployment = objects.Single<V1Deployment>();
        var container = deployment.Spec.Template.Spec.Containers.Single();
        var service = objects.Single<V1Service>(s => s.Metadata.Name == nodeStates.ClientConfig.Service.Name);
        Assert.Equal(TheChart.Namespace, nodeStates.ClientConfig.Service.NamespaceProperty);
        Assert.Equal(nodeStates.ClientConfig.Service.Port, service.Spec.Ports.Single().Port);
        Assert.Equal("webhook", service.Spec.Ports.Single().TargetPort.Value);
        Assert.Equal(8443, container.Ports.Single(p => p.Name == "webhook").ContainerPort);
        Assert.Contains("--webhook-port=8443", container.Args);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, service.Spec.Selector);
        var mount = container.VolumeMounts.Single(m => m.Name == "webhook-cert");
        Assert.Contains($"--webhook-cert-dir={mount.MountPath}", container.Args);
        var secret = objects.Single<V1Secret>();
        Assert.Equal(secret.Metadata.Name, deployment.Spec.Template.Spec.Volumes.Single(v => v.Name == "webhook-cert").Secret.SecretName);

        // The serving certificate names the Service's DNS name and chains to the CA bundle of both webhooks.
        Assert.All(config.Webhooks, w => Assert.Equal(secret.Data["ca.crt"], w.ClientConfig.CaBundle));
        using var ca = X509Certificate2.CreateFromPem(Encoding.ASCII.GetString(secret.Data["ca.crt"]));
        using var serving = X509Certificate2.CreateFromPem(Encoding.ASCII.GetString(secret.Data["tls.crt"]), Encoding.ASCII.GetString(secret.Data["tls.key"]));
        Assert.True(serving.MatchesHostname($"{service.Metadata.Name}.{TheChart.Namespace}.svc"));
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        Assert.True(chain.Build(serving), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task PassesTheDataPlaneAllowListsToTheOperator(string major)
    {
        var defaults = (await TheChart.RenderAsync(major)).Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Args;
        Assert.Contains("--dataplane-allowed-images=nettune/dataplane:*", defaults);
        Assert.Contains("--dataplane-allowed-host-paths=/srv/www", defaults);

        var custom = (await TheChart.RenderAsync(major, "--set", "dataPlane.allowedImages={registry.example.com/dp:*,registry.example.com/dp@*}",
            "--set", "dataPlane.allowedHostPaths={/srv/a,/srv/b}")).Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Args;
        Assert.Contains("--dataplane-allowed-images=registry.example.com/dp:*,registry.example.com/dp@*", custom);
        Assert.Contains("--dataplane-allowed-host-paths=/srv/a,/srv/b", custom);

        // No priority class and no loopback or link-local upstream by default.
        Assert.Contains("--dataplane-allowed-priority-classes=", defaults);
        Assert.Contains("--dataplane-allowed-upstream-networks=", defaults);

        // Empty lists are passed as empty: the operator then allows nothing ("*" must be written out).
        var closed = (await TheChart.RenderAsync(major, "--set", "dataPlane.allowedImages=null", "--set", "dataPlane.allowedHostPaths=null"))
            .Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Args;
        Assert.Contains("--dataplane-allowed-images=", closed);
        Assert.Contains("--dataplane-allowed-host-paths=", closed);
        var open = (await TheChart.RenderAsync(major, "--set", "dataPlane.allowedImages={*}", "--set", "dataPlane.allowedPriorityClasses={*}",
            "--set", "dataPlane.allowedUpstreamNetworks={127.0.0.0/8}")).Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Args;
        Assert.Contains("--dataplane-allowed-images=*", open);
        Assert.Contains("--dataplane-allowed-priority-classes=*", open);
        Assert.Contains("--dataplane-allowed-upstream-networks=127.0.0.0/8", open);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task WithoutTheWebhookNothingOfItIsRendered(string major)
    {
        var objects = await TheChart.RenderAsync(major, "--set", "operator.webhook.enabled=false");
        Assert.Empty(objects.All<V1ValidatingWebhookConfiguration>());
        Assert.Empty(objects.All<V1Secret>());
        var container = objects.Single<V1Deployment>().Spec.Template.Spec.Containers.Single();
        Assert.DoesNotContain(container.Args, a => a.StartsWith("--webhook", StringComparison.Ordinal));
        Assert.DoesNotContain(container.Ports, p => p.Name == "webhook");
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task UninstallRunsAPreDeleteJobWithJustTheRightsItNeeds(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var job = objects.Single<V1Job>();
        var hookObjects = objects.Where(o => o.Name == job.Metadata.Name).ToList();
        Assert.Equal(["ClusterRole", "ClusterRoleBinding", "Job", "Role", "RoleBinding", "ServiceAccount"], hookObjects.Select(o => o.Kind).Order(StringComparer.Ordinal));
        foreach (var o in hookObjects)
        {
            var annotations = o.Json["metadata"]!["annotations"]!;
            Assert.Equal("pre-delete", (string?)annotations["helm.sh/hook"]);
            Assert.Equal("before-hook-creation,hook-succeeded", (string?)annotations["helm.sh/hook-delete-policy"]);
        }
        // RBAC and the ServiceAccount exist before the Job.
        Assert.All(hookObjects.Where(o => o.Kind != "Job"), o => Assert.True(int.Parse((string)o.Json["metadata"]!["annotations"]!["helm.sh/hook-weight"]!) < 0));

        var pod = job.Spec.Template.Spec;
        var container = pod.Containers.Single();
        Assert.Equal(objects.Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Image, container.Image);
        Assert.Equal(["uninstall", "--namespace=$(POD_NAMESPACE)", "--timeout-seconds=280"], container.Args);
        Assert.Equal("Never", pod.RestartPolicy);
        Assert.Equal(0, job.Spec.BackoffLimit);
        Assert.True(job.Spec.ActiveDeadlineSeconds > 280);
        Assert.Equal(job.Metadata.Name, pod.ServiceAccountName);
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);

        // What `nettune-operator uninstall` calls, and nothing more.
        var grants = objects.All<V1ClusterRole>().Where(r => r.Metadata.Name == job.Metadata.Name)
            .Concat<object>(objects.All<V1Role>().Where(r => r.Metadata.Name == job.Metadata.Name))
            .SelectMany(r => r is V1ClusterRole c ? c.Rules : ((V1Role)r).Rules)
            .SelectMany(r => r.ApiGroups.SelectMany(g => r.Resources.SelectMany(res => r.Verbs.Select(v => $"{g}/{res}:{v}"))))
            .Order(StringComparer.Ordinal);
        Assert.Equal(
            ["/pods:list", "apps/daemonsets:list",
             "nettune.io/networktuningnodestates:delete", "nettune.io/networktuningnodestates:get", "nettune.io/networktuningnodestates:list",
             "nettune.io/networktunings:delete", "nettune.io/networktunings:get", "nettune.io/networktunings:list"],
            grants);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task NoUninstallHookWithoutTheOperatorDeploymentOrWhenTurnedOff(string major)
    {
        // An operator run elsewhere (make demo) is not there to revert anything when the hook runs.
        Assert.Empty((await TheChart.RenderAsync(major, "--set", "operator.enabled=false")).All<V1Job>());
        Assert.Empty((await TheChart.RenderAsync(major, "--set", "uninstall.enabled=false")).All<V1Job>());
        var job = (await TheChart.RenderAsync(major, "--set", "uninstall.timeoutSeconds=900")).Single<V1Job>();
        Assert.Contains("--timeout-seconds=900", job.Spec.Template.Spec.Containers.Single().Args);
    }
}
