using System.Buffers.Binary;
using System.Text;
using static Tmds.Linux.LibC;

namespace NetTune.Agent.Core.Host;

/// <summary>
/// Subscribes to the ethtool generic-netlink family's "monitor" group, which the kernel notifies whenever someone
/// changes a NIC setting (through netlink or the old ioctl). The agent takes a channels notification as a reason to
/// look for drift at once instead of at the next interval. Acts on the calling process's network namespace.
/// </summary>
public sealed class EthtoolNotifications : IDisposable
{
    public const int ChannelsNotification = 19; // ETHTOOL_MSG_CHANNELS_NTF
    public const int FeaturesNotification = 13, RingsNotification = 17, CoalesceNotification = 21, PauseNotification = 23; // ETHTOOL_MSG_*_NTF

    /// <summary>Whether a notification is about a setting the agent manages (0: notifications were lost, so maybe).</summary>
    public static bool AboutManagedSetting(int command) =>
        command is 0 or ChannelsNotification or FeaturesNotification or RingsNotification or CoalesceNotification or PauseNotification;
    private const int AF_NETLINK_ = 16, NETLINK_GENERIC = 16, SOL_NETLINK = 270, NETLINK_ADD_MEMBERSHIP = 1;
    private const ushort GENL_ID_CTRL = 0x10, NLM_F_REQUEST = 1, NLMSG_ERROR = 2;
    private const byte CTRL_CMD_GETFAMILY = 3;
    private const ushort CTRL_ATTR_FAMILY_ID = 1, CTRL_ATTR_FAMILY_NAME = 2, CTRL_ATTR_MCAST_GROUPS = 7, CTRL_ATTR_MCAST_GRP_NAME = 1, CTRL_ATTR_MCAST_GRP_ID = 2;
    private const ushort NLA_TYPE_MASK = 0x3fff;

    private readonly int _fd;
    private int _disposed;

    private EthtoolNotifications(int fd, ushort familyId)
    {
        _fd = fd;
        FamilyId = familyId;
    }

    public ushort FamilyId { get; }

    /// <summary>Subscribes, or returns null with the reason when the kernel has no ethtool netlink family.</summary>
    public static unsafe EthtoolNotifications? TrySubscribe(out string? error)
    {
        error = null;
        var fd = socket(AF_NETLINK_, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
        if (fd < 0)
        {
            error = $"netlink socket: {Errnos.Describe(errno)}";
            return null;
        }
        try
        {
            var request = BuildGetFamily("ethtool");
            fixed (byte* p = request)
                if (send(fd, p, request.Length, 0) < 0) { error = $"netlink send: {Errnos.Describe(errno)}"; close(fd); return null; }
            var buffer = new byte[16384];
            long n;
            fixed (byte* p = buffer) n = recv(fd, p, buffer.Length, 0);
            if (n < 0) { error = $"netlink recv: {Errnos.Describe(errno)}"; close(fd); return null; }
            if (!TryParseFamily(buffer.AsSpan(0, (int)n), "monitor", out var familyId, out var groupId, out error)) { close(fd); return null; }
            uint group = groupId;
            if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(uint)) < 0)
            {
                error = $"join the ethtool monitor group: {Errnos.Describe(errno)}";
                close(fd);
                return null;
            }
            // A receive timeout lets the reading thread notice cancellation.
            var tv = stackalloc long[2] { 1, 0 };
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
            return new EthtoolNotifications(fd, familyId);
        }
        catch
        {
            close(fd);
            throw;
        }
    }

    /// <summary>Blocks, calling <paramref name="notified"/>(command, interface) for each notification, until cancelled.</summary>
    public unsafe void Run(Action<int, string?> notified, CancellationToken ct)
    {
        var buffer = new byte[65536];
        while (!ct.IsCancellationRequested && Volatile.Read(ref _disposed) == 0)
        {
            long n;
            fixed (byte* p = buffer) n = recv(_fd, p, buffer.Length, 0);
            if (n < 0)
            {
                var e = errno;
                if (e is 4 or 11) continue; // EINTR, EAGAIN (receive timeout)
                if (e == 105) { notified(0, null); continue; } // ENOBUFS: notifications were lost; look anyway
                return;
            }
            foreach (var (cmd, ifName) in ParseNotifications(buffer.AsSpan(0, (int)n), FamilyId)) notified(cmd, ifName);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) close(_fd);
    }

    public static byte[] BuildGetFamily(string family)
    {
        var name = Encoding.ASCII.GetBytes(family + "\0");
        var attrLen = 4 + name.Length;
        var total = 16 + 4 + Align(attrLen);
        var msg = new byte[total];
        var s = msg.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)total);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], GENL_ID_CTRL);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], NLM_F_REQUEST);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], 1);
        s[16] = CTRL_CMD_GETFAMILY;
        s[17] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(s[20..], (ushort)attrLen);
        BinaryPrimitives.WriteUInt16LittleEndian(s[22..], CTRL_ATTR_FAMILY_NAME);
        name.CopyTo(s[24..]);
        return msg;
    }

    /// <summary>The family id and the id of its multicast group <paramref name="group"/> from a CTRL_CMD_NEWFAMILY reply.</summary>
    public static bool TryParseFamily(ReadOnlySpan<byte> reply, string group, out ushort familyId, out uint groupId, out string? error)
    {
        familyId = 0;
        groupId = 0;
        error = null;
        if (reply.Length < 20) { error = "short netlink reply"; return false; }
        var type = BinaryPrimitives.ReadUInt16LittleEndian(reply[4..]);
        if (type == NLMSG_ERROR)
        {
            var code = -BinaryPrimitives.ReadInt32LittleEndian(reply[16..]);
            error = $"the kernel has no ethtool netlink family ({Errnos.Describe(code)})";
            return false;
        }
        var len = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(reply), (uint)reply.Length);
        foreach (var (attr, payload) in Attributes(reply[20..len].ToArray()))
        {
            if (attr == CTRL_ATTR_FAMILY_ID && payload.Length >= 2) familyId = BinaryPrimitives.ReadUInt16LittleEndian(payload);
            if (attr != CTRL_ATTR_MCAST_GROUPS) continue;
            foreach (var (_, g) in Attributes(payload))
            {
                string? name = null;
                uint id = 0;
                foreach (var (ga, gp) in Attributes(g))
                {
                    if (ga == CTRL_ATTR_MCAST_GRP_NAME) name = Encoding.ASCII.GetString(gp).TrimEnd('\0');
                    if (ga == CTRL_ATTR_MCAST_GRP_ID && gp.Length >= 4) id = BinaryPrimitives.ReadUInt32LittleEndian(gp);
                }
                if (name == group) groupId = id;
            }
        }
        if (familyId == 0 || groupId == 0) { error = $"the ethtool family has no '{group}' multicast group"; return false; }
        return true;
    }

    /// <summary>(command, interface name) of each ethtool message in a datagram; the name comes from the request header attribute.</summary>
    public static IEnumerable<(int Command, string? IfName)> ParseNotifications(ReadOnlySpan<byte> datagram, ushort familyId)
    {
        var result = new List<(int, string?)>();
        var offset = 0;
        while (offset + 20 <= datagram.Length)
        {
            var len = (int)BinaryPrimitives.ReadUInt32LittleEndian(datagram[offset..]);
            if (len < 20 || offset + len > datagram.Length) break;
            var type = BinaryPrimitives.ReadUInt16LittleEndian(datagram[(offset + 4)..]);
            if (type == familyId)
            {
                var cmd = datagram[offset + 16];
                string? ifName = null;
                foreach (var (attr, payload) in Attributes(datagram[(offset + 20)..(offset + len)].ToArray()))
                {
                    // Attribute 1 of every ethtool message is its header: a nest holding the device index and name.
                    if (attr != 1) continue;
                    foreach (var (ha, hp) in Attributes(payload))
                        if (ha == 2) ifName = Encoding.ASCII.GetString(hp).TrimEnd('\0');
                }
                result.Add((cmd, ifName));
            }
            offset += Align(len);
        }
        return result;
    }

    private static IEnumerable<(ushort Type, byte[] Payload)> Attributes(byte[] data)
    {
        var offset = 0;
        while (offset + 4 <= data.Length)
        {
            var len = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset));
            var type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset + 2)) & NLA_TYPE_MASK);
            if (len < 4 || offset + len > data.Length) yield break;
            yield return (type, data[(offset + 4)..(offset + len)]);
            offset += Align(len);
        }
    }

    private static int Align(int n) => (n + 3) & ~3;
}
