using Prometheus;

namespace NetTune.Operator;

/// <summary>Counts the requests the client sends, by verb (watches count as "watch") and resource (with its subresource: "networktunings/status").</summary>
public sealed class CountingHandler(Counter requests) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var query = request.RequestUri?.Query ?? "";
        var verb = query.Contains("watch=true", StringComparison.OrdinalIgnoreCase) ? "watch" : request.Method.Method.ToLowerInvariant();
        requests.WithLabels(verb, ResourceOf(request.RequestUri?.AbsolutePath ?? "")).Inc();
        return base.SendAsync(request, cancellationToken);
    }

    /// <summary>
    /// The resource of an API path: /api/v1/nodes/n → nodes, /apis/G/V/namespaces/ns/pods → pods,
    /// /apis/G/V/networktunings/t/status → networktunings/status; anything else (/version) → "other", so the label stays bounded.
    /// </summary>
    public static string ResourceOf(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var at = parts.Length >= 2 && parts[0] == "api" ? 2 : parts.Length >= 3 && parts[0] == "apis" ? 3 : -1;
        if (at < 0 || at >= parts.Length) return "other";
        if (parts[at] == "namespaces" && parts.Length > at + 2) at += 2;
        var resource = parts[at];
        return parts.Length > at + 2 ? resource + "/" + parts[at + 2] : resource;
    }
}
