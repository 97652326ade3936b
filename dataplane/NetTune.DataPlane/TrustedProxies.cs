using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace NetTune.DataPlane;

/// <summary>
/// The peers whose X-Forwarded-* headers are believed (--trusted-proxies), as nginx's set_real_ip_from: a list of
/// CIDRs (10.0.0.0/8, 192.168.1.7, fd00::/8). Every other peer's X-Forwarded-For is replaced by its own address and
/// its X-Forwarded-Host, X-Forwarded-Proto and Forwarded are dropped, so a client cannot forge where it came from.
/// </summary>
public sealed class TrustedProxies
{
    private readonly (byte[] Network, int PrefixBits)[] _ranges;

    public static TrustedProxies None { get; } = new([]);

    private TrustedProxies((byte[] Network, int PrefixBits)[] ranges) => _ranges = ranges;

    public bool IsEmpty => _ranges.Length == 0;

    /// <summary>Parses a comma-separated CIDR list; throws <see cref="OptionsException"/> naming the bad entry.</summary>
    public static TrustedProxies Parse(string list)
    {
        var ranges = new List<(byte[], int)>();
        foreach (var entry in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int slash = entry.IndexOf('/');
            var text = slash < 0 ? entry : entry[..slash];
            // IPAddress also takes inet_aton's short forms ("10.0.0" is 10.0.0.0): a CIDR list is written out in full.
            if (!IPAddress.TryParse(text, out var ip) || ip.AddressFamily == AddressFamily.InterNetwork && text.Count(c => c == '.') != 3)
                throw new OptionsException($"--trusted-proxies: '{entry}' is not an IP address or CIDR");
            var bytes = ip.GetAddressBytes();
            int bits = bytes.Length * 8;
            if (slash >= 0 && (!int.TryParse(entry.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out bits) || bits > bytes.Length * 8))
                throw new OptionsException($"--trusted-proxies: '{entry}' has a bad prefix length (0-{bytes.Length * 8})");
            ranges.Add((bytes, bits));
        }
        return new TrustedProxies(ranges.ToArray());
    }

    /// <summary>Whether an address (4 or 16 bytes, network order) lies in one of the ranges.</summary>
    public bool Contains(ReadOnlySpan<byte> address)
    {
        foreach (var (network, bits) in _ranges)
        {
            if (network.Length != address.Length) continue;
            int whole = bits / 8, rest = bits % 8;
            if (!address[..whole].SequenceEqual(network.AsSpan(0, whole))) continue;
            if (rest == 0) return true;
            int mask = 0xff << (8 - rest) & 0xff;
            if ((address[whole] & mask) == (network[whole] & mask)) return true;
        }
        return false;
    }
}
