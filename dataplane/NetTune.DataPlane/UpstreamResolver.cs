using System.Net;

namespace NetTune.DataPlane;

/// <summary>
/// A file in /etc/hosts format (address, then names; '#' starts a comment), read afresh at every lookup so that
/// whoever writes it (a mounted ConfigMap, a test) moves a name without restarting the data plane.
/// </summary>
internal sealed class HostsFile(string path)
{
    public string Path { get; } = path;

    /// <summary>The addresses listed for <paramref name="name"/>, in file order; empty when it is not listed.</summary>
    public IPAddress[] Addresses(string name)
    {
        var found = new List<IPAddress>();
        foreach (var raw in File.ReadLines(Path))
        {
            int hash = raw.IndexOf('#');
            var fields = (hash < 0 ? raw : raw[..hash]).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !IPAddress.TryParse(fields[0], out var ip)) continue;
            for (int i = 1; i < fields.Length; i++)
                if (fields[i].Equals(name, StringComparison.OrdinalIgnoreCase)) found.Add(ip);
        }
        return found.ToArray();
    }
}

/// <summary>
/// Re-resolves upstream names off the workers' threads, as nginx's <c>resolve</c> parameter does: every
/// <c>--upstream-resolve-interval</c> seconds, and soon after a worker's connect to one failed (at most once a second
/// per name, so a dead upstream does not turn every client into a lookup). A lookup that fails keeps the last address;
/// a new one is published whole and used by the next connect. Connections already open, pooled ones included, stay
/// where they are until they close.
/// </summary>
internal sealed class UpstreamResolver : IDisposable
{
    private const int MinRetryMs = 1000;
    private readonly IReadOnlyList<UpstreamAddress> _upstreams;
    private readonly HostsFile? _hosts;
    private readonly long _intervalMs;
    private readonly ManualResetEventSlim _stop = new();
    /// <summary>Every address published so far: each is made once and lives on (see <see cref="UpstreamEndpoint"/>).</summary>
    private readonly Dictionary<IPEndPoint, UpstreamEndpoint> _interned = new();

    public UpstreamResolver(IReadOnlyList<UpstreamAddress> upstreams, HostsFile? hosts, int intervalSeconds)
    {
        _upstreams = upstreams;
        _hosts = hosts;
        _intervalMs = intervalSeconds * 1000L;
        foreach (var u in upstreams) _interned[u.Current.EndPoint] = u.Current;
        new Thread(Run) { Name = "dataplane-resolver", IsBackground = true }.Start();
    }

    private void Run()
    {
        var due = new long[_upstreams.Count];
        var last = new long[_upstreams.Count];
        long start = Environment.TickCount64;
        for (int i = 0; i < due.Length; i++) due[i] = _intervalMs > 0 ? start + _intervalMs : long.MaxValue;
        // Requests from workers are flags, not wake-ups: looking every 100 ms is soon enough after a failed connect.
        while (!_stop.Wait(100))
        {
            long now = Environment.TickCount64;
            for (int i = 0; i < _upstreams.Count; i++)
            {
                var u = _upstreams[i];
                if (u.IsLiteral) continue;
                bool requested = u.TakeResolveRequest() && now - last[i] >= MinRetryMs;
                if (!requested && now < due[i]) continue;
                last[i] = now;
                if (_intervalMs > 0) due[i] = now + _intervalMs;
                Refresh(u);
            }
        }
    }

    private void Refresh(UpstreamAddress u)
    {
        var ip = UpstreamAddress.Lookup(u.Host, _hosts, out var error);
        if (ip == null)
        {
            Console.Error.WriteLine($"dataplane: upstream '{u.Name}': {error}; keeping {u.Current.EndPoint}");
            return;
        }
        var endPoint = new IPEndPoint(ip, u.Port);
        if (endPoint.Equals(u.Current.EndPoint)) return;
        if (!_interned.TryGetValue(endPoint, out var endpoint)) _interned[endPoint] = endpoint = new UpstreamEndpoint(endPoint);
        Console.Error.WriteLine($"dataplane: upstream '{u.Name}' now resolves to {endPoint} (was {u.Current.EndPoint})");
        u.Publish(endpoint);
    }

    /// <summary>Stops the lookups; does not wait for one in progress (a slow DNS server must not hold up the exit).</summary>
    public void Dispose() => _stop.Set();
}
