using Prometheus;

namespace NetTune.Operator;

/// <summary>Counts the requests the client sends, by verb (watches count as "watch").</summary>
public sealed class CountingHandler(Counter requests) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var query = request.RequestUri?.Query ?? "";
        var verb = query.Contains("watch=true", StringComparison.OrdinalIgnoreCase) ? "watch" : request.Method.Method.ToLowerInvariant();
        requests.WithLabels(verb).Inc();
        return base.SendAsync(request, cancellationToken);
    }
}
