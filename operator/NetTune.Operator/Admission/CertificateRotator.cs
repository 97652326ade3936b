using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace NetTune.Operator.Admission;

/// <summary>
/// The operator's own webhook serving certificate, kept in one Secret for every replica (the approach of
/// open-policy-agent's cert-controller, used by Gatekeeper): the leader creates and renews the certificates
/// (<see cref="CertificatePlanner"/>) and sets the caBundle of the webhook configurations; every replica reads the
/// Secret each round and serves its newest certificate at the next TLS handshake, without a restart. Needs only
/// get/update on that Secret and get/patch on those configurations, by name.
/// </summary>
public sealed class CertificateRotator(
    IKubernetes client, string ns, string secretName, IReadOnlyList<string> webhookConfigurations, CertificatePolicy policy,
    TimeSpan checkInterval, Func<bool> isLeader, ILogger log, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly object _lock = new();
    private X509Certificate2? _serving;
    private string? _servingThumbprint;
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The certificate to serve now; null until the Secret held one (handshakes fail until then).</summary>
    public X509Certificate2? Current()
    {
        lock (_lock) return _serving;
    }

    /// <summary>Completes when a certificate was first loaded.</summary>
    public Task Loaded => _loaded.Task;

    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try { await RoundAsync(ct).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                log.LogWarning("webhook certificate round failed (next in {Seconds} s): {Error}", checkInterval.TotalSeconds, e.Message);
            }
            // Until a first certificate is served (a leader still to be elected, an empty Secret), look again soon.
            var wait = Loaded.IsCompleted ? checkInterval : TimeSpan.FromTicks(Math.Min(checkInterval.Ticks, BootstrapInterval.Ticks));
            try { await Task.Delay(wait, _clock, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    private static readonly TimeSpan BootstrapInterval = TimeSpan.FromSeconds(2);

    public async Task RoundAsync(CancellationToken ct)
    {
        V1Secret secret;
        try { secret = await client.CoreV1.ReadNamespacedSecretAsync(secretName, ns, cancellationToken: ct).ConfigureAwait(false); }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Creating cannot be limited to one name in RBAC: the chart makes the (empty) Secret.
            log.LogError("the webhook certificate Secret {Namespace}/{Name} does not exist; the chart creates it empty", ns, secretName);
            return;
        }
        var current = CertificateSet.FromSecretData(secret.Data);
        if (isLeader())
        {
            var configs = new List<V1ValidatingWebhookConfiguration>();
            foreach (var name in webhookConfigurations)
            {
                try { configs.Add(await client.AdmissionregistrationV1.ReadValidatingWebhookConfigurationAsync(name, cancellationToken: ct).ConfigureAwait(false)); }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    log.LogWarning("the webhook configuration {Name} does not exist", name);
                }
            }
            var installed = current is not null && configs.All(c => (c.Webhooks ?? []).All(w => BundleHas(w.ClientConfig?.CaBundle, current.Ca)));
            if (CertificatePlanner.Plan(current, _clock.GetUtcNow(), installed, policy) is { } next)
            {
                secret.Data = next.ToSecretData();
                try
                {
                    // The resourceVersion read above makes this fail if another replica wrote in between.
                    await client.CoreV1.ReplaceNamespacedSecretAsync(secret, secretName, ns, cancellationToken: ct).ConfigureAwait(false);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
                {
                    log.LogInformation("the webhook certificate Secret changed while renewing; next round");
                    return;
                }
                log.LogInformation("webhook certificates written: serving {Serving} until {NotAfter:o} signed by {Issuer}; {Cas} CA(s) in the bundle, the newest until {CaNotAfter:o}",
                    next.Serving.Thumbprint, next.Serving.NotAfter.ToUniversalTime(), next.Serving.Issuer, next.Cas.Count, next.Ca.NotAfter.ToUniversalTime());
                current = next;
            }
            if (current is not null)
                foreach (var config in configs) await SetCaBundleAsync(config, current.CaBundle, ct).ConfigureAwait(false);
        }
        if (current is not null) Load(current);
    }

    private void Load(CertificateSet set)
    {
        if (set.Serving.Thumbprint == _servingThumbprint) return;
        var serving = set.ServingWithKey();
        lock (_lock)
        {
            _serving = serving;
            _servingThumbprint = set.Serving.Thumbprint;
        }
        log.LogInformation("serving the webhook certificate {Thumbprint} (until {NotAfter:o})", set.Serving.Thumbprint, set.Serving.NotAfter.ToUniversalTime());
        _loaded.TrySetResult();
    }

    private async Task SetCaBundleAsync(V1ValidatingWebhookConfiguration config, byte[] bundle, CancellationToken ct)
    {
        var ops = new List<object>();
        for (var i = 0; i < (config.Webhooks?.Count ?? 0); i++)
        {
            if (config.Webhooks![i].ClientConfig?.CaBundle is { } have && have.AsSpan().SequenceEqual(bundle)) continue;
            // The test keeps a concurrent reordering of the list from putting the bundle on another webhook.
            ops.Add(new { op = "test", path = $"/webhooks/{i}/name", value = config.Webhooks[i].Name });
            ops.Add(new { op = "add", path = $"/webhooks/{i}/clientConfig/caBundle", value = Convert.ToBase64String(bundle) });
        }
        if (ops.Count == 0) return;
        await client.AdmissionregistrationV1.PatchValidatingWebhookConfigurationAsync(new V1Patch(JsonSerializer.Serialize(ops), V1Patch.PatchType.JsonPatch),
            config.Metadata.Name, cancellationToken: ct).ConfigureAwait(false);
        log.LogInformation("set the caBundle of {Count} webhook(s) in {Name}", ops.Count / 2, config.Metadata.Name);
    }

    private static bool BundleHas(byte[]? bundle, X509Certificate2 ca)
    {
        if (bundle is null || bundle.Length == 0) return false;
        var cas = new X509Certificate2Collection();
        try { cas.ImportFromPem(Encoding.ASCII.GetString(bundle)); }
        catch (System.Security.Cryptography.CryptographicException) { return false; }
        return cas.Any(c => c.Thumbprint == ca.Thumbprint);
    }
}
