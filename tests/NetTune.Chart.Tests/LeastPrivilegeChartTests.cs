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

        // The Service reaches the operator pods' webhook port, which the operator serves with the certificate it keeps.
        var deployment = objects.Single<V1Deployment>();
        var container = deployment.Spec.Template.Spec.Containers.Single();
        var service = objects.Single<V1Service>(s => s.Metadata.Name == nodeStates.ClientConfig.Service.Name);
        Assert.Equal(TheChart.Namespace, nodeStates.ClientConfig.Service.NamespaceProperty);
        Assert.Equal(nodeStates.ClientConfig.Service.Port, service.Spec.Ports.Single().Port);
        Assert.Equal("webhook", service.Spec.Ports.Single().TargetPort.Value);
        Assert.Equal(8443, container.Ports.Single(p => p.Name == "webhook").ContainerPort);
        Assert.Contains("--webhook-port=8443", container.Args);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, service.Spec.Selector);

        // Nothing generated at render time: an empty Secret the operator fills, no caBundle the operator does not set.
        var secret = objects.Single<V1Secret>();
        Assert.Null(secret.Data);
        Assert.Null(secret.StringData);
        Assert.All(config.Webhooks, w => Assert.Null(w.ClientConfig.CaBundle));
        Assert.Contains($"--webhook-cert-secret={secret.Metadata.Name}", container.Args);
        Assert.Contains($"--webhook-configurations={config.Metadata.Name}", container.Args);
        var hosts = container.Args.Single(a => a.StartsWith("--webhook-cert-hosts=", StringComparison.Ordinal))["--webhook-cert-hosts=".Length..].Split(',');
        Assert.Contains($"{service.Metadata.Name}.{TheChart.Namespace}.svc", hosts);
        Assert.Contains("--webhook-cert-validity-seconds=7776000", container.Args);
        Assert.Contains("--webhook-cert-renew-before-seconds=2592000", container.Args);
        Assert.DoesNotContain(container.Args, a => a.StartsWith("--webhook-cert-dir", StringComparison.Ordinal));
        Assert.DoesNotContain(deployment.Spec.Template.Spec.Volumes, v => v.Secret is not null);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task RendersTheSameObjectsEveryTime(string major)
    {
        // What Argo CD and Flux do on every sync: render again. Any generated value (a CA, a key) would differ.
        foreach (var values in new[] { Array.Empty<string>(), ["-f", TheChart.NonDefaultValues], ["--set", "operator.webhook.certificate.source=certManager"] })
            Assert.Equal(await TheChart.TemplateAsync(major, values), await TheChart.TemplateAsync(major, values));
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task CertificateLifetimesThatCannotRotateAreRefused(string major)
    {
        foreach (var (set, message) in new[]
                 {
                     ("operator.webhook.certificate.renewBeforeDays=90", "renewBeforeDays must be below validityDays"),
                     ("operator.webhook.certificate.caValidityDays=100", "caValidityDays must be at least twice validityDays"),
                 })
        {
            var result = await Tool.HelmRunAsync(major, "template", "nettune", Tool.ChartDir, "--set", set);
            Assert.NotEqual(0, result.ExitCode);
            Assert.Contains(message, result.Stderr);
        }
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task TheOperatorMayReadAndUpdateOnlyItsCertificateSecretAndPatchOnlyItsWebhookConfiguration(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var secret = objects.Single<V1Secret>();
        var config = objects.Single<V1ValidatingWebhookConfiguration>();
        var operatorName = objects.Single<V1Deployment>().Metadata.Name;
        var secretRules = objects.Single<V1Role>(r => r.Metadata.Name == operatorName).Rules.Where(r => r.Resources.Contains("secrets")).ToList();
        var secretRule = Assert.Single(secretRules);
        Assert.Equal([secret.Metadata.Name], secretRule.ResourceNames);
        Assert.Equal(["get", "update"], secretRule.Verbs);
        var hookRule = Assert.Single(objects.Single<V1ClusterRole>(r => r.Metadata.Name == operatorName).Rules, r => r.Resources.Contains("validatingwebhookconfigurations"));
        Assert.Equal([config.Metadata.Name], hookRule.ResourceNames);
        Assert.Equal(["get", "patch"], hookRule.Verbs);

        // With cert-manager the operator only reads the mounted files: no such rights.
        var withCertManager = await TheChart.RenderAsync(major, "--set", "operator.webhook.certificate.source=certManager");
        Assert.DoesNotContain(withCertManager.All<V1Role>().SelectMany(r => r.Rules), r => r.Resources.Contains("secrets"));
        Assert.DoesNotContain(withCertManager.All<V1ClusterRole>().SelectMany(r => r.Rules), r => r.Resources.Contains("validatingwebhookconfigurations"));
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task WithCertManagerACertificateServesTheWebhooksAndTheCainjectorSetsTheirCaBundle(string major)
    {
        var objects = await TheChart.RenderAsync(major, "--set", "operator.webhook.certificate.source=certManager");
        var certificate = objects.Single<Certificate>();
        var config = objects.Single<V1ValidatingWebhookConfiguration>();
        Assert.Equal($"{TheChart.Namespace}/{certificate.Metadata.Name}", config.Metadata.Annotations["cert-manager.io/inject-ca-from"]);
        Assert.All(config.Webhooks, w => Assert.Null(w.ClientConfig.CaBundle));
        var service = objects.Single<V1Service>(s => s.Metadata.Name == config.Webhooks[0].ClientConfig.Service.Name);
        Assert.Contains($"{service.Metadata.Name}.{TheChart.Namespace}.svc", certificate.Spec.DnsNames!);
        Assert.Equal("2160h", certificate.Spec.Duration);
        Assert.Equal("720h", certificate.Spec.RenewBefore);
        // Without an issuer of the user's, a self-signed one the chart makes.
        var issuer = objects.Single<Issuer>();
        Assert.NotNull(issuer.Spec.SelfSigned);
        Assert.Equal((issuer.Metadata.Name, "Issuer"), (certificate.Spec.IssuerRef.Name, certificate.Spec.IssuerRef.Kind));

        // The operator serves the Secret cert-manager writes, mounted, and no Secret of the chart's own.
        Assert.Empty(objects.All<V1Secret>());
        var deployment = objects.Single<V1Deployment>();
        var container = deployment.Spec.Template.Spec.Containers.Single();
        var mount = container.VolumeMounts.Single(m => m.Name == "webhook-cert");
        Assert.Contains($"--webhook-cert-dir={mount.MountPath}", container.Args);
        Assert.Equal(certificate.Spec.SecretName, deployment.Spec.Template.Spec.Volumes.Single(v => v.Name == "webhook-cert").Secret.SecretName);
        Assert.DoesNotContain(container.Args, a => a.StartsWith("--webhook-cert-secret", StringComparison.Ordinal));

        // The user's own issuer.
        var own = await TheChart.RenderAsync(major, "--set", "operator.webhook.certificate.source=certManager",
            "--set", "operator.webhook.certificate.certManagerIssuer.name=corp-ca", "--set", "operator.webhook.certificate.certManagerIssuer.kind=ClusterIssuer");
        Assert.Empty(own.All<Issuer>());
        Assert.Equal(("corp-ca", "ClusterIssuer"), (own.Single<Certificate>().Spec.IssuerRef.Name, own.Single<Certificate>().Spec.IssuerRef.Kind));
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

    /// <summary>
    /// The operator executable takes the arguments the chart gives it, empty allow-lists (`--flag=`) included: a parser
    /// that took an empty value for a missing one left every operator pod of a default install in CrashLoopBackOff.
    /// </summary>
    [Theory, MemberData(nameof(Helms))]
    public async Task TheOperatorAcceptsTheArgumentsTheChartGivesIt(string major)
    {
        foreach (var values in new[] { Array.Empty<string>(), ["--set", "dataPlane.allowedImages=null", "--set", "dataPlane.allowedHostPaths=null"] })
        {
            var args = (await TheChart.RenderAsync(major, values)).Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Args
                .Select(a => a.Replace("$(POD_NAMESPACE)", "nettune-system").Replace("$(POD_NAME)", "nettune-operator-0"));
            // Past the arguments and their checks, the operator stops at the missing cluster, before serving anything.
            var run = await Tool.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "nettune-operator.dll"), .. args, "--kubeconfig", "/nonexistent/kubeconfig"]);
            Assert.DoesNotContain("Required argument missing", run.Output);
            Assert.Contains("no usable cluster configuration", run.Output);
        }
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
        var job = objects.Single<V1Job>(j => j.Metadata.Name == "nettune-uninstall");
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
        Assert.Equal(["uninstall", "--namespace=$(POD_NAMESPACE)", $"--node-namespace={TheChart.NodeNamespace}", "--timeout-seconds=280"], container.Args);
        // Its DaemonSet and pod reads are in the node namespace, where they are.
        Assert.Equal(TheChart.NodeNamespace, objects.All<V1Role>().Single(r => r.Metadata.Name == job.Metadata.Name).Metadata.NamespaceProperty);
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
        Assert.DoesNotContain((await TheChart.RenderAsync(major, "--set", "uninstall.enabled=false")).All<V1Job>(), j => j.Metadata.Name == "nettune-uninstall");
        var job = (await TheChart.RenderAsync(major, "--set", "uninstall.timeoutSeconds=900")).Single<V1Job>(j => j.Metadata.Name == "nettune-uninstall");
        Assert.Contains("--timeout-seconds=900", job.Spec.Template.Spec.Containers.Single().Args);
    }
}
