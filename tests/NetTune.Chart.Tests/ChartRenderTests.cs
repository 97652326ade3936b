using k8s.Models;
using NetTune.Chart.Tests.Support;
using NetTune.Operator.Core.Builders;

namespace NetTune.Chart.Tests;

/// <summary>helm lint and helm template, with both helm majors; every rendered object parses into its typed model.</summary>
public sealed class ChartRenderTests
{
    public static TheoryData<string> Helms => new(TheChart.HelmMajors);

    [Theory, MemberData(nameof(Helms))]
    public async Task LintsStrictlyWithDefaultAndNonDefaultValues(string major)
    {
        var plain = await Tool.HelmOkAsync(major, "lint", "--strict", Tool.ChartDir);
        Assert.Contains("0 chart(s) failed", plain);
        var custom = await Tool.HelmOkAsync(major, "lint", "--strict", Tool.ChartDir, "-f", TheChart.NonDefaultValues);
        Assert.Contains("0 chart(s) failed", custom);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task RendersTheOperatorWithLeaderElectionAndSpreadReplicasByDefault(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        Assert.Equal(
            ["ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ClusterRoleBinding", "ClusterRoleBinding",
             "ConfigMap", "ConfigMap", "Deployment", "Job", "Job", "Namespace", "PodDisruptionBudget", "Role", "Role", "Role", "Role", "Role", "RoleBinding",
             "RoleBinding", "RoleBinding", "RoleBinding", "RoleBinding", "Secret", "Service", "Service", "Service", "ServiceAccount", "ServiceAccount", "ServiceAccount",
             "ValidatingWebhookConfiguration"],
            objects.Select(o => o.Kind).Order(StringComparer.Ordinal));
        Assert.All(objects.Where(o => o.Kind is not ("ClusterRole" or "ClusterRoleBinding" or "ValidatingWebhookConfiguration" or "Namespace")),
            o => Assert.NotNull(o.Namespace));
        // The node components get a namespace of their own at Pod Security level privileged; the operator's is left to
        // the admin (it passes restricted).
        var nodeNamespace = objects.Single<V1Namespace>();
        Assert.Equal(TheChart.NodeNamespace, nodeNamespace.Metadata.Name);
        Assert.Equal("privileged", nodeNamespace.Metadata.Labels["pod-security.kubernetes.io/enforce"]);

        var deployment = objects.Single<V1Deployment>();
        Assert.Equal(2, deployment.Spec.Replicas);
        var pod = deployment.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);
        Assert.Equal($"nettune/operator:{TheChart.AppVersion}", container.Image);
        Assert.Contains("--leader-elect", container.Args);
        Assert.Contains("--lease-name=nettune-operator", container.Args);
        Assert.Contains("--namespace=$(POD_NAMESPACE)", container.Args);
        Assert.Contains($"--node-namespace={TheChart.NodeNamespace}", container.Args);
        Assert.Contains("--identity=$(POD_NAME)", container.Args);
        Assert.Contains($"--agent-image=nettune/agent:{TheChart.AppVersion}", container.Args);
        Assert.Equal("metadata.namespace", container.Env.Single(e => e.Name == "POD_NAMESPACE").ValueFrom.FieldRef.FieldPath);
        Assert.Equal("metadata.name", container.Env.Single(e => e.Name == "POD_NAME").ValueFrom.FieldRef.FieldPath);
        Assert.Equal("Information", container.Env("NETTUNE_LOG_LEVEL"));
        // Events about cluster-scoped objects are accepted only in default; the agents get the operator's defaults.
        Assert.Contains("--event-namespace=default", container.Args);
        Assert.Contains("--agent-metrics-port=9101", container.Args);
        Assert.Contains("--agent-kubelet-root-dir=/var/lib/kubelet", container.Args);
        Assert.DoesNotContain(container.Args, a => a.StartsWith("--agent-log-level", StringComparison.Ordinal) || a.StartsWith("--agent-node-selector", StringComparison.Ordinal)
            || a.StartsWith("--agent-kubelet-restart", StringComparison.Ordinal));
        Assert.True(AgentSettingsParser.TryParseResources(Flag(container, "--agent-resources"), out var agentResources, out var error), error);
        Assert.Equal(AgentOptions.DefaultResources().Limits.ToDictionary(kv => kv.Key, kv => kv.Value.ToString()),
            agentResources.Limits.ToDictionary(kv => kv.Key, kv => kv.Value.ToString()));
        Assert.True(AgentSettingsParser.TryParseTolerations(Flag(container, "--agent-tolerations"), out var agentTolerations, out error), error);
        Assert.Equal("Exists", Assert.Single(agentTolerations).OperatorProperty);
        Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal("/healthz", container.LivenessProbe.HttpGet.Path);
        Assert.Equal(8080, container.Ports.Single(p => p.Name == "metrics").ContainerPort);

        // Non-root, no privilege: the operator only talks to the API server.
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.NotEqual(0, pod.SecurityContext.RunAsUser);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.Equal(["ALL"], container.SecurityContext.Capabilities.Drop);

        // Replicas prefer different nodes, matched on the same labels the Deployment selects.
        var term = Assert.Single(pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal("kubernetes.io/hostname", term.PodAffinityTerm.TopologyKey);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, term.PodAffinityTerm.LabelSelector.MatchLabels);
        Assert.Null(pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution);
        Assert.All(deployment.Spec.Selector.MatchLabels, kv => Assert.Equal(kv.Value, deployment.Spec.Template.Metadata.Labels[kv.Key]));

        var pdb = objects.Single<V1PodDisruptionBudget>();
        Assert.Equal("1", pdb.Spec.MinAvailable.Value);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels);

        var account = objects.Single<V1ServiceAccount>(a => a.Metadata.Name.EndsWith("-operator", StringComparison.Ordinal));
        Assert.Equal(account.Metadata.Name, pod.ServiceAccountName);
        var metrics = objects.Single<V1Service>(s => s.Metadata.Name.EndsWith("-metrics", StringComparison.Ordinal) && s.Spec.Selector.ContainsKey("app.kubernetes.io/instance"));
        Assert.Equal(deployment.Spec.Selector.MatchLabels, metrics.Spec.Selector);
        Assert.Equal("metrics", Assert.Single(metrics.Spec.Ports).TargetPort.Value);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task RendersEveryNonDefaultValue(string major)
    {
        var objects = await TheChart.RenderAsync(major, "-f", TheChart.NonDefaultValues);
        var deployment = objects.Single<V1Deployment>();
        Assert.Equal("edge-operator", deployment.Metadata.Name);
        Assert.Equal(3, deployment.Spec.Replicas);
        var pod = deployment.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);
        Assert.Equal("registry.example.com/nettune/operator:1.2.3-rc.1", container.Image);
        Assert.Equal("Always", container.ImagePullPolicy);
        Assert.Equal("Debug", container.Env("NETTUNE_LOG_LEVEL"));
        Assert.Contains("--agent-image=registry.example.com/nettune/agent:1.2.3-rc.1", container.Args);
        Assert.Contains("--log-format=text", container.Args);
        Assert.Contains("--workers=4", container.Args);
        Assert.Contains("--lease-name=edge-leader", container.Args);
        Assert.Contains("--webhook-port=10443", container.Args);
        Assert.Contains("--webhook-cert-secret=edge-operator-webhook-certs", container.Args);
        Assert.Contains("--webhook-configurations=edge", container.Args);
        Assert.Contains($"--webhook-cert-validity-seconds={30 * 86400}", container.Args);
        Assert.Contains($"--webhook-cert-renew-before-seconds={10 * 86400}", container.Args);
        Assert.Contains($"--webhook-ca-validity-seconds={120 * 86400}", container.Args);
        Assert.Contains("--lease-duration-seconds=30", container.Args);
        Assert.Contains("--revert-timeout-seconds=60", container.Args);
        Assert.Contains("--dataplane-memory=1Gi", container.Args);
        Assert.Contains("--dataplane-cpu-margin=1500m", container.Args);
        Assert.Contains("--metrics-port=9443", container.Args);
        Assert.Contains("--pod-delete-grace-seconds=5", container.Args);
        Assert.Equal(9443, container.Ports.Single(p => p.Name == "metrics").ContainerPort);
        Assert.Equal("100m", container.Resources.Requests["cpu"].ToString());
        Assert.Equal("512Mi", container.Resources.Limits["memory"].ToString());
        Assert.Equal("2", container.Resources.Limits["cpu"].ToString());
        Assert.Equal("linux", pod.NodeSelector["kubernetes.io/os"]);
        Assert.Equal(2, pod.Tolerations.Count);
        Assert.Equal(300, pod.Tolerations.Single(t => t.Key == "dedicated").TolerationSeconds);
        Assert.Equal("registry-credentials", Assert.Single(pod.ImagePullSecrets).Name);
        // The agent and data-plane pods the operator makes get the same secrets.
        Assert.Contains("--image-pull-secrets=registry-credentials", container.Args);
        Assert.Equal("system-cluster-critical", pod.PriorityClassName);
        Assert.Equal("platform", deployment.Spec.Template.Metadata.Labels["team"]);
        Assert.Equal("platform", deployment.Spec.Template.Metadata.Annotations["example.com/owner"]);
        var hard = Assert.Single(pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal(deployment.Spec.Selector.MatchLabels, hard.LabelSelector.MatchLabels);

        // The named ServiceAccount is the one the pods run as and the bindings name.
        Assert.Equal("edge-operator-sa", pod.ServiceAccountName);
        Assert.Equal("edge-operator-sa", objects.Single<V1ServiceAccount>(a => a.Metadata.Name is not ("edge-uninstall" or "edge-crd-upgrade")).Metadata.Name);
        Assert.All(objects.All<V1RoleBinding>().Where(b => b.Metadata.Name != "edge-uninstall" && b.Subjects.All(s => s.Name != Names.AgentServiceAccount)),
            b => Assert.Equal("edge-operator-sa", Assert.Single(b.Subjects).Name));
        // The agent settings reach the operator's flags in the form it parses.
        Assert.Contains("--agent-log-level=Warning", container.Args);
        Assert.Contains("--agent-metrics-port=9201", container.Args);
        Assert.Contains("--agent-kubelet-root-dir=/data/kubelet", container.Args);
        Assert.True(AgentSettingsParser.TryParseResources(Flag(container, "--agent-resources"), out var agentResources, out var error), error);
        Assert.Equal(("30m", "200Mi"), (agentResources.Requests["cpu"].ToString(), agentResources.Limits["memory"].ToString()));
        Assert.True(AgentSettingsParser.TryParseTolerations(Flag(container, "--agent-tolerations"), out var agentTolerations, out error), error);
        Assert.Equal(("dedicated", "network"), (Assert.Single(agentTolerations).Key, agentTolerations[0].Value));
        Assert.True(AgentSettingsParser.TryParseNodeSelector(Flag(container, "--agent-node-selector"), out var agentNodes, out error), error);
        Assert.Equal("linux", agentNodes["kubernetes.io/os"]);
        Assert.True(KubeletRestart.TryParse(Flag(container, "--agent-kubelet-restart"), out var restart, out error), error);
        Assert.Equal(new KubeletRestart(null, "nsenter --target 1 --mount -- systemctl restart kubelet.service"), restart);
        Assert.Equal(9201, objects.Single<V1Service>(s => s.Spec.ClusterIP == "None").Spec.Ports.Single().Port);
        var leaseRule = objects.All<V1Role>().SelectMany(r => r.Rules).Single(r => r.Resources.Contains("leases") && r.ResourceNames is not null);
        Assert.Equal(["edge-leader"], leaseRule.ResourceNames);
        Assert.Equal("2", objects.Single<V1PodDisruptionBudget>().Spec.MinAvailable.Value);

        var monitors = objects.All<ServiceMonitor>().ToList();
        Assert.Equal(2, monitors.Count);
        Assert.All(monitors, m => Assert.Equal("kube-prometheus-stack", m.Metadata.Labels["release"]));
        Assert.All(monitors, m => Assert.Equal("15s", Assert.Single(m.Spec.Endpoints).Interval));
        // Each ServiceMonitor selects exactly one of the chart's metrics Services.
        foreach (var monitor in monitors)
        {
            var service = objects.Single<V1Service>(s => monitor.Spec.Selector.MatchLabels.All(kv => s.Metadata.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value));
            Assert.Equal(monitor.Spec.Endpoints[0].Port, Assert.Single(service.Spec.Ports).Name);
        }
        var podMonitor = objects.Single<PodMonitor>();
        Assert.Equal(Names.DataPlaneApp, podMonitor.Spec.Selector.MatchLabels["app.kubernetes.io/name"]);
        Assert.Equal("10s", Assert.Single(podMonitor.Spec.PodMetricsEndpoints).Interval);
        // The port name the operator's data-plane pods declare for their admin port.
        Assert.Equal(DataPlanePodBuilder.MetricsPortName, podMonitor.Spec.PodMetricsEndpoints[0].Port);

        var rule = objects.Single<PrometheusRule>();
        Assert.All(rule.Spec.Groups.SelectMany(g => g.Rules), r => Assert.Equal("platform", r.Labels!["team"]));
        Assert.Contains("> 0.01", rule.Spec.Groups.SelectMany(g => g.Rules).Single(r => r.Alert == "NetTuneDataPlaneErrorRatioHigh").Expr);

        var dashboard = objects.Single<V1ConfigMap>(c => c.Metadata.Labels?.ContainsKey("grafana_dashboard") == true);
        Assert.Equal("monitoring", dashboard.Metadata.NamespaceProperty);
        Assert.Equal("1", dashboard.Metadata.Labels["grafana_dashboard"]);
        Assert.Equal("NetTune", dashboard.Metadata.Annotations["grafana_folder"]);
    }

    [Fact]
    public async Task BothHelmMajorsRenderTheSameObjects()
    {
        // The two majors order kinds they do not rank (the monitoring kinds, ValidatingWebhookConfiguration) differently:
        // compare the documents.
        static List<string> Documents(string yaml) => [.. yaml.Split("\n---\n").Select(d => d.Trim()).Order(StringComparer.Ordinal)];
        Assert.Equal(Documents(await TheChart.TemplateAsync("3")), Documents(await TheChart.TemplateAsync("4")));
        Assert.Equal(Documents(await TheChart.TemplateAsync("3", "-f", TheChart.NonDefaultValues)), Documents(await TheChart.TemplateAsync("4", "-f", TheChart.NonDefaultValues)));
    }

    public static TheoryData<string, string, string> BadValues()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var major in TheChart.HelmMajors)
        {
            data.Add(major, "operator.replicas=0", "replicas");
            data.Add(major, "operator.logLevel=Verbose", "logLevel");
            data.Add(major, "operator.eventNamespace=nettune-system", "eventNamespace");
            data.Add(major, "agent.metricsPort=0", "metricsPort");
            data.Add(major, "agent.logLevel=Loud", "logLevel");
            data.Add(major, "operator.antiAffinity=always", "antiAffinity");
            data.Add(major, "operator.metricsPort=70000", "metricsPort");
            data.Add(major, "prometheusRule.thresholds.dataPlaneErrorRatio=2", "dataPlaneErrorRatio");
            data.Add(major, "serviceMonitor.interval=often", "interval");
            data.Add(major, "operatr.replicas=1", "operatr");
            data.Add(major, "operator.webhook.port=443", "port");
            data.Add(major, "operator.webhook.certificate.source=helm", "source");
            data.Add(major, "operator.webhook.certificateDays=3650", "certificateDays");
            data.Add(major, "dataPlane.allowedHostPaths={srv/www}", "allowedHostPaths");
            data.Add(major, "uninstall.timeoutSeconds=0", "timeoutSeconds");
            data.Add(major, "agent.kubeletRootDir=var/lib/kubelet", "kubeletRootDir");
            data.Add(major, "operator.image.digest=latest", "digest");
            data.Add(major, "operator.dataPlaneCpuMargin=1Gi", "dataPlaneCpuMargin");
            data.Add(major, "agent.image.digest=sha256:abc", "digest");
        }
        return data;
    }

    [Theory, MemberData(nameof(BadValues))]
    public async Task TheValuesSchemaRefusesBadValues(string major, string set, string key)
    {
        var result = await Tool.HelmRunAsync(major, "template", "nettune", Tool.ChartDir, "--set", set);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("values don't meet the specifications of the schema", result.Stderr);
        Assert.Contains(key, result.Stderr);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task ImagesByDigestAndPullSecretsReachEveryPodTheChartAndTheOperatorMake(string major)
    {
        var operatorDigest = "sha256:" + new string('1', 64);
        var agentDigest = "sha256:" + new string('2', 64);
        var objects = await TheChart.RenderAsync(major, "--set", "operator.image.repository=127.0.0.1:5000/nettune/operator",
            "--set", "operator.image.digest=" + operatorDigest, "--set", "agent.image.digest=" + agentDigest,
            "--set", "imagePullSecrets[0].name=one", "--set", "imagePullSecrets[1].name=two");
        var operatorPod = objects.Single<V1Deployment>().Spec.Template.Spec;
        var container = operatorPod.Containers.Single();
        Assert.Equal("127.0.0.1:5000/nettune/operator@" + operatorDigest, container.Image);
        Assert.Contains($"--agent-image=nettune/agent@{agentDigest}", container.Args);
        Assert.Contains("--image-pull-secrets=one,two", container.Args);
        Assert.Equal(["one", "two"], operatorPod.ImagePullSecrets.Select(s => s.Name));
        // Both hook Jobs run the operator image, by the same digest, with the same secrets.
        var jobs = objects.All<V1Job>().ToList();
        Assert.Equal(["nettune-crd-upgrade", "nettune-uninstall"], jobs.Select(j => j.Metadata.Name).Order(StringComparer.Ordinal));
        Assert.All(jobs, j =>
        {
            Assert.Equal(container.Image, j.Spec.Template.Spec.Containers.Single().Image);
            Assert.Equal(["one", "two"], j.Spec.Template.Spec.ImagePullSecrets.Select(s => s.Name));
        });
        // Without secrets the operator gets no flag (an empty one would be a bad value).
        Assert.DoesNotContain((await TheChart.RenderAsync(major)).Single<V1Deployment>().Spec.Template.Spec.Containers.Single().Args,
            a => a.StartsWith("--image-pull-secrets", StringComparison.Ordinal));
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task TheCrdUpgradeHookCarriesTheChartsCrdsAndRunsBeforeTheUpgrade(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var configMap = objects.Single<V1ConfigMap>(c => c.Metadata.Name == "nettune-crd-upgrade");
        foreach (var file in Directory.GetFiles(Path.Combine(Tool.ChartDir, "crds")))
            Assert.Equal(File.ReadAllText(file).TrimEnd('\n'), configMap.Data[Path.GetFileName(file)]);
        var job = objects.Single<V1Job>(j => j.Metadata.Name == "nettune-crd-upgrade");
        Assert.Equal("pre-upgrade", job.Metadata.Annotations["helm.sh/hook"]);
        Assert.Equal(["apply-crds", "--dir=/etc/nettune/crds", "--timeout-seconds=120"], job.Spec.Template.Spec.Containers.Single().Args);
        // Its objects come first (lower weight), and it may touch only NetTune's two CRDs beyond creating them.
        Assert.True(int.Parse(configMap.Metadata.Annotations["helm.sh/hook-weight"]) < int.Parse(job.Metadata.Annotations["helm.sh/hook-weight"]));
        var role = objects.Single<V1ClusterRole>(r => r.Metadata.Name == "nettune-crd-upgrade");
        Assert.All(role.Rules.Where(r => r.Verbs.Any(v => v != "create")),
            r => Assert.Equal(["networktunings.nettune.io", "networktuningnodestates.nettune.io"], r.ResourceNames));
        // Off: none of it.
        Assert.DoesNotContain((await TheChart.RenderAsync(major, "--set", "crds.upgrade=false")).Select(m => m.Name), n => n.Contains("crd-upgrade", StringComparison.Ordinal));
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task AnExistingOperatorServiceAccountMustBeNamed(string major)
    {
        var result = await Tool.HelmRunAsync(major, "template", "nettune", Tool.ChartDir, "--set", "operator.serviceAccount.create=false");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("operator.serviceAccount.name is required", result.Stderr);

        var objects = await TheChart.RenderAsync(major, "--set", "operator.serviceAccount.create=false", "--set", "operator.serviceAccount.name=platform-ops");
        Assert.Equal(["nettune-crd-upgrade", "nettune-uninstall"], objects.All<V1ServiceAccount>().Select(a => a.Metadata.Name).Order(StringComparer.Ordinal));
        Assert.Equal("platform-ops", objects.Single<V1Deployment>().Spec.Template.Spec.ServiceAccountName);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task WithoutTheOperatorDeploymentKeepsItsServiceAccountAndRbac(string major)
    {
        // For an operator run elsewhere (make demo runs it as a local process with this ServiceAccount's token).
        var objects = await TheChart.RenderAsync(major, "--set", "operator.enabled=false", "--set", "serviceMonitor.enabled=true");
        Assert.Empty(objects.All<V1Deployment>());
        Assert.Empty(objects.All<V1PodDisruptionBudget>());
        var account = objects.Single<V1ServiceAccount>();
        Assert.Contains(objects.All<V1ClusterRoleBinding>(), b => b.Subjects.Any(s => s.Name == account.Metadata.Name));
        // Its node-namespace, release-namespace and Events roles.
        Assert.Equal(["default", TheChart.Namespace, TheChart.NodeNamespace],
            objects.All<V1RoleBinding>().Where(b => b.Subjects.Any(s => s.Name == account.Metadata.Name)).Select(b => b.Metadata.NamespaceProperty).Order(StringComparer.Ordinal));
        // Only the agents' metrics remain to scrape.
        Assert.Equal(Names.AgentApp, objects.Single<V1Service>().Spec.Selector["app.kubernetes.io/name"]);
        Assert.Equal("nettune-agent", objects.Single<ServiceMonitor>().Metadata.Labels["app.kubernetes.io/name"]);
    }

    [Fact]
    public void TheChartCarriesTheRepositoryCrdsByteForByte()
    {
        var repo = Directory.GetFiles(Path.Combine(Tool.RepoRoot, "crds"), "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var chart = Directory.GetFiles(Path.Combine(Tool.ChartDir, "crds")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(repo);
        Assert.True(repo.SequenceEqual(chart), $"charts/nettune/crds has [{string.Join(", ", chart)}], crds/ has [{string.Join(", ", repo)}]: run `make chart-crds`");
        foreach (var name in repo)
        {
            var same = File.ReadAllBytes(Path.Combine(Tool.RepoRoot, "crds", name!)).AsSpan()
                .SequenceEqual(File.ReadAllBytes(Path.Combine(Tool.ChartDir, "crds", name!)));
            Assert.True(same, $"charts/nettune/crds/{name} differs from crds/{name}: run `make chart-crds`");
        }
        // And they parse as CRDs.
        foreach (var name in repo)
        {
            var crd = Assert.Single(Manifests.Parse(File.ReadAllText(Path.Combine(Tool.ChartDir, "crds", name!))));
            Assert.Equal("CustomResourceDefinition", crd.Kind);
        }
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task GrantsTheAgentOnlyItsNodeStateAndNode(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var binding = objects.Single<V1ClusterRoleBinding>(b => b.Subjects.Any(s => s.Name == Names.AgentServiceAccount));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(TheChart.NodeNamespace, subject.NamespaceProperty);
        var role = objects.Single<V1ClusterRole>(r => r.Metadata.Name == binding.RoleRef.Name);
        var grants = role.Rules.SelectMany(r => r.ApiGroups.SelectMany(g => r.Resources.SelectMany(res => r.Verbs.Select(v => $"{g}/{res}:{v}"))))
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            ["/nodes:get",
             "nettune.io/networktuningnodestates/status:get", "nettune.io/networktuningnodestates/status:patch", "nettune.io/networktuningnodestates/status:update",
             "nettune.io/networktuningnodestates:get", "nettune.io/networktuningnodestates:list", "nettune.io/networktuningnodestates:watch"],
            grants);
        // Namespaced: only Events, in default (about its Node, when it reverts without a NodeState).
        var roleBinding = objects.Single<V1RoleBinding>(b => b.Subjects.Any(s => s.Name == Names.AgentServiceAccount));
        Assert.Equal("default", roleBinding.Metadata.NamespaceProperty);
        var eventRule = Assert.Single(objects.Single<V1Role>(r => r.Metadata.Name == roleBinding.RoleRef.Name).Rules);
        Assert.Equal(["events"], eventRule.Resources);
        Assert.Equal(["create"], eventRule.Verbs);
        // The agent pods the operator builds are the ones the agent metrics Service selects.
        var agentService = objects.Single<V1Service>(s => s.Spec.ClusterIP == "None");
        Assert.Equal(Names.AgentApp, agentService.Spec.Selector["app.kubernetes.io/name"]);
        Assert.Equal(new AgentOptions("ns", "img").MetricsPort, Assert.Single(agentService.Spec.Ports).Port);
    }

    [Theory, MemberData(nameof(Helms))]
    public async Task GrantsTheOperatorNothingBeyondItsObjects(string major)
    {
        var objects = await TheChart.RenderAsync(major);
        var rules = objects.All<V1ClusterRole>().Where(r => r.Metadata.Name.EndsWith("-operator", StringComparison.Ordinal))
            .SelectMany(r => r.Rules).Concat(objects.All<V1Role>().SelectMany(r => r.Rules)).ToList();
        Assert.NotEmpty(rules);
        Assert.All(rules, r =>
        {
            Assert.DoesNotContain("*", r.Verbs);
            Assert.DoesNotContain("*", r.Resources);
            Assert.DoesNotContain("*", r.ApiGroups);
            // Secrets: its own webhook certificate Secret only, by name.
            if (r.Resources.Contains("secrets")) Assert.Equal(["nettune-operator-webhook-certs"], r.ResourceNames);
            Assert.DoesNotContain("configmaps", r.Resources);
            Assert.DoesNotContain("escalate", r.Verbs);
            Assert.DoesNotContain("bind", r.Verbs);
            Assert.DoesNotContain("impersonate", r.Verbs);
        });
        // Namespaced kinds only through Roles in the release (and event) namespace, never cluster-wide; but for a list
        // of pods (a node's, for the memory they request: its hugepages budget), which writes nothing.
        var clusterRule = objects.All<V1ClusterRole>().Single(r => r.Metadata.Name.EndsWith("-operator", StringComparison.Ordinal)).Rules;
        Assert.All(clusterRule.Where(r => !(r.Resources.SequenceEqual(["pods"]) && r.Verbs.SequenceEqual(["list"]))),
            r => Assert.Empty(r.Resources.Intersect(["pods", "daemonsets", "serviceaccounts", "leases", "events"])));
        Assert.Contains(clusterRule, r => r.Resources.SequenceEqual(["pods"]) && r.Verbs.SequenceEqual(["list"]));
        var serviceAccounts = objects.All<V1Role>().SelectMany(r => r.Rules).Where(r => r.Resources.Contains("serviceaccounts") && r.Verbs.Contains("update"));
        Assert.All(serviceAccounts, r => Assert.Equal([Names.AgentServiceAccount], r.ResourceNames));
    }

    /// <summary>The value of a --name=value argument.</summary>
    private static string Flag(V1Container container, string name) =>
        container.Args.Single(a => a.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..];
}
