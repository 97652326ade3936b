using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetTune.DataPlane;

/// <summary>One upstream server, resolved once at start-up into the socket address connect() takes.</summary>
internal sealed unsafe class UpstreamAddress
{
    public string Name { get; }
    /// <summary>The name as configured (host:port), for the Host header of requests that came without one.</summary>
    public byte[] Authority { get; }
    public IPEndPoint EndPoint { get; }
    public int Family { get; }
    /// <summary>A native sockaddr_in or sockaddr_in6: io_uring reads it asynchronously, so it must not move.</summary>
    public byte* SockAddr { get; }
    public int SockAddrLength { get; }

    public UpstreamAddress(string name, IPEndPoint endPoint)
    {
        Name = name;
        Authority = System.Text.Encoding.ASCII.GetBytes(name);
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
    public static UpstreamAddress Resolve(string spec)
    {
        if (!TrySplit(spec, out var host, out int port))
            throw new StartupException($"upstream '{spec}' is not host:port");
        if (!IPAddress.TryParse(host, out var ip))
        {
            IPAddress[] found;
            try
            {
                found = Dns.GetHostAddresses(host);
            }
            catch (SocketException e)
            {
                throw new StartupException($"upstream '{spec}': cannot resolve '{host}' ({e.SocketErrorCode})");
            }
            // Prefer IPv4: the common case on host networks, and what "localhost" should mean to an IPv4 listener's peer.
            ip = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
                 ?? found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetworkV6)
                 ?? throw new StartupException($"upstream '{spec}': '{host}' has no IP address");
        }
        return new UpstreamAddress(spec, new IPEndPoint(ip, port));
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
