using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using NetTune.Api.V1Alpha1;
using NetTune.Api.Validation;
using NetTune.Operator.Core.Builders;

namespace NetTune.Operator.Admission;

/// <summary>
/// The operator's validating admission webhooks over HTTPS (the API server calls them; the chart registers them):
/// - <c>/validate/nodestates</c>: an agent may change only its own node's NetworkTuningNodeState (<see cref="NodeStateAdmission"/>);
/// - <c>/validate/networktunings</c>: the CRD's rules (the C# twins of the CEL rules, which servers before 1.25
///   ignore) and the data-plane allow-lists (<see cref="DataPlanePolicy"/>), refused with the reasons at once.
/// Every replica serves them, leader or not: they keep no state.
/// </summary>
public sealed class WebhookServer : IAsyncDisposable
{
    public const string NodeStatesPath = "/validate/nodestates";
    public const string NetworkTuningsPath = "/validate/networktunings";

    private readonly WebApplication _web;

    private WebhookServer(WebApplication web) => _web = web;

    /// <param name="certificate">Asked for the serving certificate on every TLS handshake, so a renewed one is used at once
    /// (null: none yet, the handshake fails).</param>
    public static async Task<WebhookServer> StartAsync(IPAddress address, int port, Func<X509Certificate2?> certificate, NodeStateAdmission nodeStates,
        DataPlanePolicy policy, ILogger log, PortAdmission? ports = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(address, port, l => l.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificateSelector = (_, _) => certificate(),
        })));
        var web = builder.Build();
        Func<JsonNode, CancellationToken, Task<AdmissionVerdict>> nodeStateReview = nodeStates.ReviewAsync;
        Func<JsonNode, CancellationToken, Task<AdmissionVerdict>> tuningReview = async (request, ct) =>
        {
            var verdict = ReviewTuning(request, policy);
            if (!verdict.Allowed || ports is null || Judged(request) is not { } tuning) return verdict;
            return await ports.ConflictAsync(tuning, ct).ConfigureAwait(false) is { } conflict ? new AdmissionVerdict(false, conflict, 422) : verdict;
        };
        RequestDelegate nodeStateHandler = http => HandleAsync(http, log, nodeStateReview);
        RequestDelegate tuningHandler = http => HandleAsync(http, log, tuningReview);
        web.MapPost(NodeStatesPath, nodeStateHandler);
        web.MapPost(NetworkTuningsPath, tuningHandler);
        await web.StartAsync(CancellationToken.None).ConfigureAwait(false);
        return new WebhookServer(web);
    }

    /// <summary>The port actually bound (port 0 picks a free one).</summary>
    public int Port => new Uri(_web.Urls.First()).Port;

    /// <summary>
    /// The tuning whose new spec a request asks to store, or null when there is nothing to judge: other operations,
    /// the operator's own updates (finalizers, annotations) of a tuning admitted earlier (they must pass, whatever the
    /// lists say now), a deleted tuning losing its finalizer, and status writes.
    /// </summary>
    private static NetworkTuning? Judged(JsonNode request)
    {
        if (request["operation"]?.GetValue<string>() is not ("CREATE" or "UPDATE") || request["object"] is not JsonObject obj) return null;
        if (request["oldObject"] is JsonObject old && JsonNode.DeepEquals(old["spec"], obj["spec"])) return null;
        var tuning = KubernetesJson.Deserialize<NetworkTuning>(obj.ToJsonString());
        return tuning.Metadata?.DeletionTimestamp is not null || request["subResource"]?.GetValue<string>() is { Length: > 0 } ? null : tuning;
    }

    public static AdmissionVerdict ReviewTuning(JsonNode request, DataPlanePolicy policy)
    {
        NetworkTuning? tuning;
        try { tuning = Judged(request); }
        catch (JsonException e) { return AdmissionVerdict.Deny($"not a NetworkTuning: {e.Message}"); }
        if (tuning is null) return AdmissionVerdict.Allow;
        var problems = NetworkTuningValidator.Validate(tuning.Spec ?? new NetworkTuningSpec()).Select(e => e.ToString()).ToList();
        if (policy.Refusal(tuning.Spec?.DataPlane) is { } refusal) problems.Add(refusal);
        return problems.Count == 0 ? AdmissionVerdict.Allow : new AdmissionVerdict(false, string.Join("; ", problems), 422);
    }

    private static async Task HandleAsync(HttpContext http, ILogger log, Func<JsonNode, CancellationToken, Task<AdmissionVerdict>> review)
    {
        JsonNode? body;
        try { body = await JsonNode.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted).ConfigureAwait(false); }
        catch (JsonException e)
        {
            http.Response.StatusCode = 400;
            await http.Response.WriteAsync($"not an AdmissionReview: {e.Message}", http.RequestAborted).ConfigureAwait(false);
            return;
        }
        if (body?["request"] is not JsonObject request)
        {
            http.Response.StatusCode = 400;
            await http.Response.WriteAsync("an AdmissionReview needs a request", http.RequestAborted).ConfigureAwait(false);
            return;
        }
        AdmissionVerdict verdict;
        try { verdict = await review(request, http.RequestAborted).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Fail closed with the reason; the API server shows it to the caller.
            verdict = new AdmissionVerdict(false, $"the NetTune webhook could not decide: {e.Message}", 500);
        }
        if (!verdict.Allowed)
            log.LogWarning("refused {Operation} {Resource} {Name} by {User}: {Message}", request["operation"]?.GetValue<string>(),
                request["resource"]?["resource"]?.GetValue<string>(), request["name"]?.GetValue<string>(), request["userInfo"]?["username"]?.GetValue<string>(), verdict.Message);
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(NodeStateAdmission.Respond(body, verdict).ToJsonString(), http.RequestAborted).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _web.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _web.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A PEM certificate and key on disk (a mounted Secret), read again whenever the files change.</summary>
public sealed class CertificateFiles(string certFile, string keyFile)
{
    private readonly object _lock = new();
    private X509Certificate2? _current;
    private (DateTime, DateTime) _stamp;

    public X509Certificate2 Current()
    {
        lock (_lock)
        {
            var stamp = (File.GetLastWriteTimeUtc(certFile), File.GetLastWriteTimeUtc(keyFile));
            if (_current is null || stamp != _stamp)
            {
                using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);
                // Kestrel on Linux needs the key in an exportable form it can hand to OpenSSL.
                _current = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
                _stamp = stamp;
            }
            return _current;
        }
    }
}
