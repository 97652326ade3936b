using System.Buffers.Binary;
using System.Text;
using NetTune.Agent.Core.Host;

namespace NetTune.Agent.Tests;

public sealed class NetlinkParsingTests
{
    private static byte[] Attr(ushort type, byte[] payload)
    {
        var len = 4 + payload.Length;
        var b = new byte[(len + 3) & ~3];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)len);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), type);
        payload.CopyTo(b, 4);
        return b;
    }

    private static byte[] Nest(ushort type, params byte[][] attrs) => Attr((ushort)(type | 0x8000), attrs.SelectMany(a => a).ToArray());
    private static byte[] Str(string s) => Encoding.ASCII.GetBytes(s + "\0");
    private static byte[] U16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    private static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }

    private static byte[] Message(ushort type, byte cmd, params byte[][] attrs)
    {
        var body = attrs.SelectMany(a => a).ToArray();
        var msg = new byte[20 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(msg, (uint)msg.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(4), type);
        msg[16] = cmd;
        body.CopyTo(msg, 20);
        return msg;
    }

    [Fact]
    public void GetFamilyReply_GivesTheFamilyAndMonitorGroupIds()
    {
        var reply = Message(0x10, 1,
            Attr(1, U16(21)),
            Attr(2, Str("ethtool")),
            Nest(7, Nest(1, Attr(2, U32(5)), Attr(1, Str("monitor")))));
        Assert.True(EthtoolNotifications.TryParseFamily(reply, "monitor", out var family, out var group, out var error), error);
        Assert.Equal((21, 5u), (family, group));
        Assert.False(EthtoolNotifications.TryParseFamily(reply, "other", out _, out _, out error));
        Assert.Contains("no 'other' multicast group", error);
    }

    [Fact]
    public void ErrorReply_SaysTheFamilyIsMissing()
    {
        // struct nlmsgerr: the header, then the negative errno right after it (offset 16), then the request's header.
        var msg = new byte[36];
        BinaryPrimitives.WriteUInt32LittleEndian(msg, 36);
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(4), 2);
        BinaryPrimitives.WriteInt32LittleEndian(msg.AsSpan(16), -2);
        Assert.False(EthtoolNotifications.TryParseFamily(msg, "monitor", out _, out _, out var error));
        Assert.Contains("ENOENT", error);
    }

    [Fact]
    public void Notifications_YieldCommandAndInterface_ForTheFamilyOnly()
    {
        var channels = Message(21, 19, Nest(1, Attr(1, U32(7)), Attr(2, Str("nta"))), Attr(2, U32(8)));
        var other = Message(22, 19, Nest(1, Attr(2, Str("x"))));
        var rings = Message(21, 17, Nest(1, Attr(2, Str("ntb"))));
        var datagram = channels.Concat(other).Concat(rings).ToArray();
        Assert.Equal([(19, "nta"), (17, "ntb")], EthtoolNotifications.ParseNotifications(datagram, 21).Select(x => (x.Command, x.IfName)));
    }

    [Fact]
    public void GetFamilyRequest_IsAWellFormedNetlinkMessage()
    {
        var req = EthtoolNotifications.BuildGetFamily("ethtool");
        Assert.Equal(req.Length, (int)BinaryPrimitives.ReadUInt32LittleEndian(req));
        Assert.Equal(0x10, BinaryPrimitives.ReadUInt16LittleEndian(req.AsSpan(4)));
        Assert.Equal(3, req[16]);
        Assert.Equal("ethtool\0", Encoding.ASCII.GetString(req, 24, 8));
        Assert.Equal(0, req.Length % 4);
    }
}
