using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Operator.Admission;
using NetTune.Operator.Core.Builders;
using NetTune.Testing.Cluster;
using Xunit;
using Xunit.Abstractions;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>
/// The admission webhooks as the real API server calls them: over TLS, registered with a
/// ValidatingWebhookConfiguration, with the caller's identity as the server authenticated it.
/// </summary>
[Collection("cluster")]
public sealed class WebhookTests(ClusterFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task AnAgentsPodBoundTokenMayChangeOnlyItsOwnNodesNodeState()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var admin = bed.Client;
        var nodes = await bed.CreateNodesAsync(2);
        var (node1, node2) = (nodes[0], nodes[1]);
        // The NodeStates of this test only carry the label the test's webhook registration selects, so other tests
        // sharing the cluster never reach this webhook.
        var selectLabel = ("nettune-webhook-test", bed.Id);
        foreach (var node in new[] { node1, node2 })
            await admin.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuningNodeState
            {
                Metadata = new V1ObjectMeta { Name = node, Labels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
                Spec = new NodeStateSpec { NodeName = node },
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);

        // The agent's ServiceAccount with the chart's agent rights: status of every NodeState, so RBAC alone lets it
        // write other nodes' status; only the webhook stops that.
        await admin.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = Names.AgentServiceAccount } }, bed.Namespace);
        var role = "nettune-agent-" + bed.Id;
        await admin.RbacAuthorizationV1.CreateClusterRoleAsync(new V1ClusterRole
        {
            Metadata = new V1ObjectMeta { Name = role },
            Rules =
            [
                new V1PolicyRule { ApiGroups = [ApiGroup.Name], Resources = ["networktuningnodestates"], Verbs = ["get", "list", "watch"] },
                new V1PolicyRule { ApiGroups = [ApiGroup.Name], Resources = ["networktuningnodestates/status"], Verbs = ["get", "update", "patch"] },
            ],
        });
        await admin.RbacAuthorizationV1.CreateClusterRoleBindingAsync(new V1ClusterRoleBinding
        {
            Metadata = new V1ObjectMeta { Name = role },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = role },
            Subjects = [new Rbacv1Subject { Kind = "ServiceAccount", Name = Names.AgentServiceAccount, NamespaceProperty = bed.Namespace }],
        });

        // Agent pods as the DaemonSet controller makes them: one per node, run as the agent ServiceAccount.
        var pods = new Dictionary<string, V1Pod>();
        foreach (var node in new[] { node1, node2 })
            pods[node] = await admin.CoreV1.CreateNamespacedPodAsync(new V1Pod
            {
                Metadata = new V1ObjectMeta { Name = "agent-" + node },
                Spec = new V1PodSpec
                {
                    NodeName = node,
                    ServiceAccountName = Names.AgentServiceAccount,
                    AutomountServiceAccountToken = false,
                    Containers = [new V1Container { Name = "agent", Image = "nettune/agent:test" }],
                },
            }, bed.Namespace);

        using var certificate = SelfSignedLoopbackCertificate();
        await using var server = await WebhookServer.StartAsync(IPAddress.Loopback, 0, () => certificate,
            new NodeStateAdmission(admin, bed.Namespace), DataPlanePolicy.Any, NullLogger.Instance);
        var hook = "nettune-nodestates-" + bed.Id;
        await admin.AdmissionregistrationV1.CreateValidatingWebhookConfigurationAsync(new V1ValidatingWebhookConfiguration
        {
            Metadata = new V1ObjectMeta { Name = hook },
            Webhooks =
            [
                new V1ValidatingWebhook
                {
                    Name = "nodestates.nettune.io",
                    ClientConfig = new Admissionregistrationv1WebhookClientConfig
                    {
                        Url = $"https://127.0.0.1:{server.Port}{WebhookServer.NodeStatesPath}",
                        CaBundle = System.Text.Encoding.ASCII.GetBytes(certificate.ExportCertificatePem()),
                    },
                    Rules =
                    [
                        new V1RuleWithOperations
                        {
                            ApiGroups = [ApiGroup.Name], ApiVersions = [ApiGroup.Version],
                            Resources = ["networktuningnodestates", "networktuningnodestates/status"],
                            Operations = ["CREATE", "UPDATE", "DELETE"],
                        },
                    ],
                    ObjectSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
                    FailurePolicy = "Fail",
                    SideEffects = "None",
                    AdmissionReviewVersions = ["v1"],
                    TimeoutSeconds = 10,
                },
            ],
        });
        try
        {
            var agent1 = ClientFor(await TokenAsync(admin, bed.Namespace, pods[node1]));
            // The API server needs a moment before it calls a new webhook: wait until the agent is refused once.
            await TestBed.EventuallyAsync(async () => await WriteStatusAsync(agent1, node2) is HttpStatusCode.Forbidden, "the webhook refuses node1's agent on node2");

            Assert.Equal(HttpStatusCode.OK, await WriteStatusAsync(agent1, node1));
            var refusal = await Assert.ThrowsAsync<HttpOperationException>(() => WriteStatusOrThrowAsync(agent1, node2));
            Assert.Contains($"runs on node {node1} and may not change the NetworkTuningNodeState of node {node2}", refusal.Response.Content);
            Assert.Null((await bed.GetNodeStateAsync(node2))!.Status?.AgentVersion);

            // The agent DaemonSet's projected token takes the CA from this ConfigMap (root-ca-cert-publisher).
            await TestBed.EventuallyAsync(async () => (await admin.CoreV1.ReadNamespacedConfigMapAsync("kube-root-ca.crt", bed.Namespace)).Data.ContainsKey("ca.crt"),
                "kube-root-ca.crt in the agent namespace");

            // The other agent, the other way round.
            var agent2 = ClientFor(await TokenAsync(admin, bed.Namespace, pods[node2]));
            Assert.Equal(HttpStatusCode.OK, await WriteStatusAsync(agent2, node2));
            Assert.Equal(HttpStatusCode.Forbidden, await WriteStatusAsync(agent2, node1));

            // A token of the agent's ServiceAccount that names no pod (as a legacy Secret token) names no node either.
            var unbound = ClientFor(await TokenAsync(admin, bed.Namespace, pod: null));
            var noPod = await Assert.ThrowsAsync<HttpOperationException>(() => WriteStatusOrThrowAsync(unbound, node1));
            Assert.Contains("must use a pod-bound ServiceAccount token", noPod.Response.Content);

            // Others (the operator, people) are RBAC's business only.
            Assert.Equal(HttpStatusCode.OK, await WriteStatusAsync(admin, node2));
        }
        finally
        {
            // Before the server stops: a registration whose server is gone would refuse these objects' deletion.
            await admin.AdmissionregistrationV1.DeleteValidatingWebhookConfigurationAsync(hook);
            await admin.RbacAuthorizationV1.DeleteClusterRoleBindingAsync(role);
            await admin.RbacAuthorizationV1.DeleteClusterRoleAsync(role);
        }
    }

    [Fact]
    public async Task TheTuningWebhookRefusesInvalidSpecsAndDataPlanesOutsideTheAllowListsWithTheReason()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        using var certificate = SelfSignedLoopbackCertificate();
        var policy = new DataPlanePolicy(["nettune/dataplane:*"], ["/srv/www"], [], []);
        await using var server = await WebhookServer.StartAsync(IPAddress.Loopback, 0, () => certificate,
            new NodeStateAdmission(bed.Client, bed.Namespace), policy, NullLogger.Instance, new PortAdmission(bed.Client));
        var hook = "nettune-tunings-" + bed.Id;
        var selectLabel = ("nettune-webhook-test", bed.Id);
        await bed.Client.AdmissionregistrationV1.CreateValidatingWebhookConfigurationAsync(new V1ValidatingWebhookConfiguration
        {
            Metadata = new V1ObjectMeta { Name = hook },
            Webhooks =
            [
                new V1ValidatingWebhook
                {
                    Name = "networktunings.nettune.io",
                    ClientConfig = new Admissionregistrationv1WebhookClientConfig
                    {
                        Url = $"https://127.0.0.1:{server.Port}{WebhookServer.NetworkTuningsPath}",
                        CaBundle = System.Text.Encoding.ASCII.GetBytes(certificate.ExportCertificatePem()),
                    },
                    Rules = [new V1RuleWithOperations { ApiGroups = [ApiGroup.Name], ApiVersions = [ApiGroup.Version], Resources = ["networktunings"], Operations = ["CREATE", "UPDATE"] }],
                    ObjectSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
                    FailurePolicy = "Fail",
                    SideEffects = "None",
                    AdmissionReviewVersions = ["v1"],
                },
            ],
        });
        try
        {
            async Task<string?> CreateAsync(string name, DataPlaneSpec dp, Dictionary<string, string>? sysctls = null)
            {
                try
                {
                    await bed.Client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
                    {
                        Metadata = new V1ObjectMeta { Name = $"{bed.Id}-{name}", Labels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
                        Spec = new NetworkTuningSpec { NodeSelector = bed.Selector(), Sysctls = sysctls, DataPlane = dp },
                    }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
                    await bed.Client.CustomObjects.DeleteClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, $"{bed.Id}-{name}");
                    return null;
                }
                catch (HttpOperationException e) { return e.Response.Content; }
            }
            DataPlaneSpec Static(string image, string path, int port = 8080, int adminPort = 9180) =>
                new() { Enabled = true, Image = image, Mode = DataPlaneMode.StaticFiles, StaticFiles = new StaticFilesSpec { HostPath = path }, Port = port, AdminPort = adminPort };

            await TestBed.EventuallyAsync(async () => await CreateAsync("probe", Static("evil/miner:1", "/srv/www")) is not null, "the webhook is called");
            Assert.Null(await CreateAsync("allowed", Static("nettune/dataplane:0.1.0", "/srv/www/site")));
            Assert.Contains("image 'evil/miner:1' is not in the data-plane image allow-list", await CreateAsync("image", Static("evil/miner:1", "/srv/www")));
            Assert.Contains("hostPath '/etc' is not below an allowed folder", await CreateAsync("etc", Static("nettune/dataplane:0.1.0", "/etc")));
            Assert.Contains("hostPath '/srv/www/../../etc' is not below", await CreateAsync("climb", Static("nettune/dataplane:0.1.0", "/srv/www/../../etc")));
            Assert.Contains("ports below 1024", await CreateAsync("port", Static("nettune/dataplane:0.1.0", "/srv/www", port: 80)));
            // The CEL rules' twins: a v1.20 server ignores the CRD's rules, the webhook does not.
            Assert.Contains("sysctls may only set keys of the allow-list; refused: kernel.panic",
                await CreateAsync("sysctl", Static("nettune/dataplane:0.1.0", "/srv/www"), new Dictionary<string, string> { ["kernel.panic"] = "1" }));
            Assert.Contains("port must not be one of the admin ports", await CreateAsync("admin", Static("nettune/dataplane:0.1.0", "/srv/www", port: 9181)));

            // Two tunings whose data planes would share a port on a node both select: the second is refused.
            var node = (await bed.CreateNodesAsync(1))[0];
            await bed.Client.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuning
            {
                Metadata = new V1ObjectMeta { Name = $"{bed.Id}-first", Labels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
                Spec = new NetworkTuningSpec { NodeSelector = bed.Selector(), DataPlane = Static("nettune/dataplane:0.1.0", "/srv/www") },
            }, ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural);
            try
            {
                Assert.Contains($"port 8080 is also bound by NetworkTuning {bed.Id}-first's data plane on node {node}",
                    await CreateAsync("same-port", Static("nettune/dataplane:0.1.0", "/srv/www")));
                Assert.Contains("port 9180 is also bound", await CreateAsync("on-its-admin-port", Static("nettune/dataplane:0.1.0", "/srv/www", port: 9180, adminPort: 9300)));
                Assert.Null(await CreateAsync("apart", Static("nettune/dataplane:0.1.0", "/srv/www", port: 8443, adminPort: 9300)));
            }
            finally
            {
                await bed.DeleteTuningAsync($"{bed.Id}-first");
            }
        }
        finally
        {
            await bed.Client.AdmissionregistrationV1.DeleteValidatingWebhookConfigurationAsync(hook);
        }
    }

    /// <summary>
    /// Two operator executables (leader and standby) on the chart's empty Secret and a webhook configuration without a
    /// caBundle: the leader makes the certificates and sets the bundle, both serve them, and with certificates that
    /// live a minute every NodeState write through both replicas' webhooks keeps succeeding while the serving
    /// certificate is renewed several times and the CA once, each replica switching without a restart.
    /// </summary>
    [Fact]
    public async Task TheOperatorMakesAndRotatesItsOwnCertificateWhileEveryWriteThroughTheWebhookSucceeds()
    {
        await using var bed = await TestBed.StartAsync(fx.Cluster, output);
        var admin = bed.Client;
        var node = (await bed.CreateNodesAsync(1))[0];
        var selectLabel = ("nettune-webhook-test", bed.Id);
        await admin.CustomObjects.CreateClusterCustomObjectAsync(new NetworkTuningNodeState
        {
            Metadata = new V1ObjectMeta { Name = node, Labels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
            Spec = new NodeStateSpec { NodeName = node },
        }, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural);
        var secretName = "webhook-certs-" + bed.Id;
        await admin.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = secretName } }, bed.Namespace);

        var ports = new[] { FreePort(), FreePort() };
        var hook = "nettune-rotation-" + bed.Id;
        await admin.AdmissionregistrationV1.CreateValidatingWebhookConfigurationAsync(new V1ValidatingWebhookConfiguration
        {
            Metadata = new V1ObjectMeta { Name = hook },
            Webhooks = [.. ports.Select((port, i) => new V1ValidatingWebhook
            {
                Name = $"replica{i}.nodestates.nettune.io",
                ClientConfig = new Admissionregistrationv1WebhookClientConfig { Url = $"https://127.0.0.1:{port}{WebhookServer.NodeStatesPath}" },
                Rules = [new V1RuleWithOperations { ApiGroups = [ApiGroup.Name], ApiVersions = [ApiGroup.Version], Resources = ["networktuningnodestates", "networktuningnodestates/status"], Operations = ["CREATE", "UPDATE"] }],
                ObjectSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [selectLabel.Item1] = selectLabel.Item2 } },
                FailurePolicy = "Fail",
                SideEffects = "None",
                AdmissionReviewVersions = ["v1"],
                TimeoutSeconds = 5,
            })],
        });
        var replicas = new List<OperatorProcess>();
        try
        {
            // Nobody serves yet and the configuration trusts no CA: the API server refuses the write (it does call).
            var before = await Assert.ThrowsAsync<HttpOperationException>(() => WriteStatusOrThrowAsync(admin, node));
            Assert.Contains("failed calling webhook", before.Response.Content);

            OperatorProcess Start(int i) => OperatorProcess.Start(fx.Cluster.KubeconfigPath, bed.Namespace,
                "--leader-elect", "--lease-name", "certs-" + bed.Id, "--identity", $"replica{i}-{bed.Id}", "--log-format", "text",
                "--webhook-port", ports[i].ToString(), "--webhook-cert-secret", secretName, "--webhook-configurations", hook,
                "--webhook-cert-hosts", "127.0.0.1", "--webhook-cert-validity-seconds", "60", "--webhook-cert-renew-before-seconds", "40",
                "--webhook-ca-validity-seconds", "120", "--webhook-cert-check-seconds", "2");
            replicas.Add(Start(0));
            await TestBed.EventuallyAsync(replicas[0].ReadyAsync, "the first replica is ready (leader, with a certificate)");
            replicas.Add(Start(1));
            await TestBed.EventuallyAsync(replicas[1].ReadyAsync, "the second replica is ready (standby, with the Secret's certificate)");
            var pids = replicas.Select(r => r.Process.Id).ToList();

            var first = await CertificatesAsync(admin, bed.Namespace, secretName);
            var config = await admin.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(hook);
            Assert.All(config.Webhooks, w => Assert.Equal(first.CaBundle, w.ClientConfig.CaBundle));
            await TestBed.EventuallyAsync(async () => await WriteStatusAsync(admin, node) == HttpStatusCode.OK, "a write through both webhooks succeeds");

            // Writes in a loop until the CA was replaced and both replicas serve a certificate the new CA signed.
            var writes = 0;
            var failures = new List<string>();
            var servingSeen = new HashSet<string>();
            var casSeen = new HashSet<string> { first.Ca.Thumbprint };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(150);
            var done = false;
            while (!done && DateTime.UtcNow < deadline)
            {
                try
                {
                    await WriteStatusOrThrowAsync(admin, node);
                    writes++;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode != HttpStatusCode.Conflict)
                {
                    failures.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {e.Response.StatusCode}: {e.Response.Content}");
                }
                catch (HttpOperationException) { }
                var now = await CertificatesAsync(admin, bed.Namespace, secretName);
                casSeen.Add(now.Ca.Thumbprint);
                var served = new[] { await ServedAsync(ports[0]), await ServedAsync(ports[1]) };
                foreach (var t in served) servingSeen.Add(t);
                done = now.Ca.Thumbprint != first.Ca.Thumbprint && now.ServingSignedBy(now.Ca)
                       && served.All(t => t == now.Serving.Thumbprint) && servingSeen.Count >= 4;
                await Task.Delay(200);
            }
            output.WriteLine($"{writes} writes, {failures.Count} failed; {servingSeen.Count} serving certificates and {casSeen.Count} CAs seen");
            Assert.True(done, $"no CA rotation served by both replicas within 150 s: {servingSeen.Count} serving certificates, {casSeen.Count} CAs seen");
            Assert.Empty(failures);
            Assert.True(writes > 100, $"only {writes} writes");
            // Both switched certificates in place: still the processes the test started.
            Assert.Equal(pids, replicas.Select(r => r.Process.HasExited ? -1 : r.Process.Id));
            var last = await CertificatesAsync(admin, bed.Namespace, secretName);
            config = await admin.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(hook);
            Assert.All(config.Webhooks, w => Assert.Equal(last.CaBundle, w.ClientConfig.CaBundle));
        }
        finally
        {
            await admin.AdmissionregistrationV1.DeleteValidatingWebhookConfigurationAsync(hook);
            foreach (var r in replicas)
            {
                foreach (var line in r.Logs.Where(l => l.Contains("certificat", StringComparison.OrdinalIgnoreCase))) output.WriteLine(line);
                r.Dispose();
            }
        }
    }

    private static async Task<CertificateSet> CertificatesAsync(IKubernetes client, string ns, string name) =>
        CertificateSet.FromSecretData((await client.CoreV1.ReadNamespacedSecretAsync(name, ns)).Data)
        ?? throw new InvalidOperationException($"the Secret {ns}/{name} holds no certificates");

    /// <summary>The thumbprint of the certificate a replica's webhook port presents now.</summary>
    private static async Task<string> ServedAsync(int port)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await using var tls = new System.Net.Security.SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync("127.0.0.1");
        return tls.RemoteCertificate!.GetCertHashString();
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<HttpStatusCode> WriteStatusAsync(IKubernetes client, string node)
    {
        try
        {
            await WriteStatusOrThrowAsync(client, node);
            return HttpStatusCode.OK;
        }
        catch (HttpOperationException e) { return e.Response.StatusCode; }
    }

    /// <summary>What an agent does: report its node's status (here: as Applied, whichever node it is told).</summary>
    private static async Task WriteStatusOrThrowAsync(IKubernetes client, string node)
    {
        var state = TestBed.Parse<NetworkTuningNodeState>(await client.CustomObjects.GetClusterCustomObjectAsync(ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node));
        state.Status = TestBed.AgentStatus(state, "Applied", null, null);
        await client.CustomObjects.ReplaceClusterCustomObjectStatusAsync(state, ApiGroup.Name, ApiGroup.Version, NetworkTuningNodeState.Plural, node);
    }

    /// <summary>A token for the agent ServiceAccount, bound to <paramref name="pod"/> as the kubelet asks for a projected one.</summary>
    private static async Task<string> TokenAsync(IKubernetes admin, string ns, V1Pod? pod)
    {
        var request = new Authenticationv1TokenRequest
        {
            Spec = new V1TokenRequestSpec
            {
                ExpirationSeconds = 600,
                BoundObjectRef = pod is null ? null : new V1BoundObjectReference { ApiVersion = "v1", Kind = "Pod", Name = pod.Metadata.Name, Uid = pod.Metadata.Uid },
            },
        };
        var issued = await admin.CoreV1.CreateNamespacedServiceAccountTokenAsync(request, Names.AgentServiceAccount, ns);
        return issued.Status.Token;
    }

    private IKubernetes ClientFor(string token)
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(fx.Cluster.KubeconfigPath);
        config.AccessToken = token;
        return new Kubernetes(config);
    }

    private static X509Certificate2 SelfSignedLoopbackCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=nettune-webhook-test", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }
}
