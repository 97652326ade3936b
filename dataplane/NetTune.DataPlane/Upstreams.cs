using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetTune.DataPlane;

/// <summary>
/// One resolved address of an upstream, as the native sockaddr connect() takes. Immutable and never freed: io_uring
/// reads it asynchronously, so it must not move or change while a connect may still use it; the resolver interns
/// them, so an upstream that moves among a few addresses makes only a few.
/// </summary>
internal sealed unsafe class UpstreamEndpoint
{
    public IPEndPoint EndPoint { get; }
    public int Family { get; }
    /// <summary>A native sockaddr_in or sockaddr_in6.</summary>
    public byte* SockAddr { get; }
    public int SockAddrLength { get; }

    public UpstreamEndpoint(IPEndPoint endPoint)
    {
        EndPoint = endPoint;
        bool v6 = endPoint.AddressFamily == AddressFamily.InterNetworkV6;
        Family = v6 ? 10 : 2; // AF_INET6 : AF_INET
        // sockaddr_in (16 bytes) or sockaddr_in6 (28): family in host order, port in network order, then the address.
        SockAddrLength = v6 ? 28 : 16;
        SockAddr = (byte*)NativeMemory.AllocZeroed((nuint)SockAddrLength);
        *(ushort*)SockAddr = (ushort)Family;
        SockAddr[2] = (byte)(endPoint.Port >> 8);
        SockAddr[3] = (byte)endPoint.Port;
        var bytes = endPoint.Address.GetAddressBytes();
        if (v6)
        {
            bytes.CopyTo(new Span<byte>(SockAddr + 8, 16));
            *(uint*)(SockAddr + 24) = (uint)endPoint.Address.ScopeId;
        }
        else bytes.CopyTo(new Span<byte>(SockAddr + 4, 4));
    }
}

/// <summary>
/// One upstream server as configured (host:port). A name is resolved at start-up, and again by the
/// <see cref="UpstreamResolver"/> on a period and after a failed connect, so that the address workers connect to
/// follows the name (a Service's endpoints that move), as nginx's <c>server ... resolve</c> does.
/// </summary>
internal sealed class UpstreamAddress
{
    private volatile UpstreamEndpoint _current;
    private volatile bool _resolveRequested;

    public string Name { get; }
    public string Host { get; }
    public int Port { get; }
    /// <summary>The host is an IP literal: nothing to re-resolve.</summary>
    public bool IsLiteral { get; }
    /// <summary>The name as configured (host:port), for the Host header of requests that came without one.</summary>
    public byte[] Authority { get; }
    /// <summary>The address workers connect to now; replaced whole when the name resolves elsewhere.</summary>
    public UpstreamEndpoint Current => _current;

    private UpstreamAddress(string name, string host, int port, bool literal, UpstreamEndpoint endpoint)
    {
        Name = name;
        Host = host;
        Port = port;
        IsLiteral = literal;
        Authority = System.Text.Encoding.ASCII.GetBytes(name);
        _current = endpoint;
    }

    public void Publish(UpstreamEndpoint endpoint) => _current = endpoint;

    /// <summary>A worker's connect failed: the resolver looks the name up again soon (workers never block on it).</summary>
    public void RequestResolve() => _resolveRequested = true;

    public bool TakeResolveRequest()
    {
        if (!_resolveRequested) return false;
        _resolveRequested = false;
        return true;
    }

    /// <summary>Splits "host:port" or "[v6]:port"; false unless the port is 1–65535 and the host is not empty.</summary>
    public static bool TrySplit(string spec, out string host, out int port)
    {
        int colon = spec.LastIndexOf(':');
        host = colon > 0 ? spec[..colon] : "";
        port = 0;
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        return host.Length > 0
            && int.TryParse(spec.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port)
            && port is >= 1 and <= 65535;
    }

    /// <summary>Parses "host:port" or "[v6]:port" and resolves the host; errors read as start-up messages.</summary>
    public static UpstreamAddress Resolve(string spec, HostsFile? hosts)
    {
        if (!TrySplit(spec, out var host, out int port))
            throw new StartupException($"upstream '{spec}' is not host:port");
        if (IPAddress.TryParse(host, out var ip))
            return new UpstreamAddress(spec, host, port, literal: true, new UpstreamEndpoint(new IPEndPoint(ip, port)));
        var found = Lookup(host, hosts, out var error)
            ?? throw new StartupException($"upstream '{spec}': {error}");
        return new UpstreamAddress(spec, host, port, literal: false, new UpstreamEndpoint(new IPEndPoint(found, port)));
    }

    /// <summary>
    /// The address a name has now: from the hosts file when it lists the name, else from the system resolver
    /// (getaddrinfo: /etc/hosts, then DNS). Null, with the reason, when it has none.
    /// </summary>
    public static IPAddress? Lookup(string host, HostsFile? hosts, out string error)
    {
        error = "";
        IPAddress[] found;
        try
        {
            found = hosts?.Addresses(host) is { Length: > 0 } listed ? listed : Dns.GetHostAddresses(host);
        }
        catch (SocketException e)
        {
            error = $"cannot resolve '{host}' ({e.SocketErrorCode})";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"cannot read the hosts file to resolve '{host}' ({e.Message})";
            return null;
        }
        // Prefer IPv4: the common case on host networks, and what "localhost" should mean to an IPv4 listener's peer.
        var ip = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                 ?? found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetworkV6);
        if (ip == null) error = $"'{host}' has no IP address";
        return ip;
    }
}

/// <summary>
/// A worker's choice of upstream: round robin, skipping any that refused a connection in the last
/// <see cref="DownMs"/> (passive health, as nginx's max_fails=1 fail_timeout=10s). When all are down
/// it still picks one in turn, so a recovered upstream is noticed without waiting. Pure: the caller
/// passes the clock.
/// </summary>
internal sealed class UpstreamBalancer(int count)
{
    public const long DownMs = 10_000;
    private readonly long[] _downUntilMs = new long[count];
    private int _next;

    public int Count => count;

    public int Pick(long nowMs)
    {
        for (int i = 0; i < count; i++)
        {
            int candidate = (_next + i) % count;
            if (_downUntilMs[candidate] <= nowMs)
            {
                _next = (candidate + 1) % count;
                return candidate;
            }
        }
        int fallback = _next;
        _next = (_next + 1) % count;
        return fallback;
    }

    public void MarkDown(int index, long nowMs) => _downUntilMs[index] = nowMs + DownMs;
}
