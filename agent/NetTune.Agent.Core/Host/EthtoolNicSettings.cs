using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace NetTune.Agent.Core.Host;

/// <summary>
/// Rings, coalescing, pause, features and RSS through the SIOCETHTOOL ioctl, as the channels are: ETHTOOL_G/SRINGPARAM,
/// G/SCOALESCE, G/SPAUSEPARAM, the feature-name string set with ETHTOOL_GFEATURES / SFEATURES, ETHTOOL_GRXRINGS with
/// G/SRXFHINDIR for the indirection table and G/SRXFH for the hash fields. Each set reads the
/// whole structure first and changes only the named fields, so fields NetTune does not manage keep the driver's value.
/// </summary>
public sealed class EthtoolNicSettings : INicSettingsControl
{
    private const uint ETHTOOL_GCOALESCE = 0x0e, ETHTOOL_SCOALESCE = 0x0f, ETHTOOL_GRINGPARAM = 0x10, ETHTOOL_SRINGPARAM = 0x11;
    private const uint ETHTOOL_GPAUSEPARAM = 0x12, ETHTOOL_SPAUSEPARAM = 0x13, ETHTOOL_GSTRINGS = 0x1b, ETHTOOL_GSSET_INFO = 0x37;
    private const uint ETHTOOL_GFEATURES = 0x3a, ETHTOOL_SFEATURES = 0x3b, ETH_SS_FEATURES = 4, ETH_GSTRING_LEN = 32;
    private const int ETHTOOL_F_UNSUPPORTED = 1;
    private const uint ETHTOOL_GRXFH = 0x29, ETHTOOL_SRXFH = 0x2a, ETHTOOL_GRXRINGS = 0x2d, ETHTOOL_GRXFHINDIR = 0x38, ETHTOOL_SRXFHINDIR = 0x39;

    // struct ethtool_rxnfc is 192 bytes on 64-bit (cmd, flow_type, __u64 data at offset 8, the flow spec, rule_cnt);
    // the kernel copies as much of it as the command uses.
    private const int RxnfcBytes = 192;

    // Word offsets of each field in its structure (linux/ethtool.h): ethtool_ringparam has cmd, four maximums, four
    // sizes; ethtool_coalesce has cmd and 22 words; ethtool_pauseparam has cmd, autoneg, rx_pause, tx_pause.
    private static (uint Get, uint Set, int Words, int[] Offsets, int[]? MaxOffsets) Layout(NicSettingGroup group) => group switch
    {
        NicSettingGroup.Rings => (ETHTOOL_GRINGPARAM, ETHTOOL_SRINGPARAM, 9, [5, 6, 7, 8], [1, 2, 3, 4]),
        // adaptive-rx, adaptive-tx, rx-usecs, rx-frames, tx-usecs, tx-frames
        NicSettingGroup.Coalesce => (ETHTOOL_GCOALESCE, ETHTOOL_SCOALESCE, 23, [10, 11, 1, 2, 5, 6], null),
        _ => (ETHTOOL_GPAUSEPARAM, ETHTOOL_SPAUSEPARAM, 4, [1, 2, 3], null),
    };

    public (NicSetting? Setting, int Errno) Get(string ifName, NicSettingGroup group)
    {
        var (get, _, words, offsets, maxOffsets) = Layout(group);
        var s = new uint[words];
        s[0] = get;
        var err = EthtoolIoctl.Call(ifName, s);
        if (err != 0) return (null, err);
        return (new NicSetting(Read(group, s, offsets), maxOffsets is null ? null : Read(group, s, maxOffsets)), 0);
    }

    public int Set(string ifName, NicSettingValues values)
    {
        var (get, set, words, offsets, _) = Layout(values.Group);
        var s = new uint[words];
        s[0] = get;
        var err = EthtoolIoctl.Call(ifName, s);
        if (err != 0) return err;
        var fields = NicSettingValues.Fields(values.Group);
        for (var i = 0; i < fields.Count; i++)
            if (values[fields[i]] is { } v) s[offsets[i]] = v;
        s[0] = set;
        return EthtoolIoctl.Call(ifName, s);
    }

    public (IReadOnlyList<NicFeature>? Features, int Errno) GetFeatures(string ifName)
    {
        var (names, err) = FeatureNames(ifName);
        if (names is null) return (null, err);
        var blocks = (names.Count + 31) / 32;
        var g = new uint[2 + 4 * blocks];
        g[0] = ETHTOOL_GFEATURES;
        g[1] = (uint)blocks;
        err = EthtoolIoctl.Call(ifName, g);
        if (err != 0) return (null, err);
        var features = new List<NicFeature>(names.Count);
        for (var i = 0; i < names.Count; i++)
        {
            var b = 2 + 4 * (i / 32);
            var bit = 1u << (i % 32);
            // available: the device may change it (hw_features); never_changed: the kernel keeps it as it is.
            var changeable = (g[b] & bit) != 0 && (g[b + 3] & bit) == 0;
            features.Add(new NicFeature(names[i], (g[b + 1] & bit) != 0, (g[b + 2] & bit) != 0, changeable));
        }
        return (features, 0);
    }

    public int SetFeature(string ifName, string feature, bool on)
    {
        var (names, err) = FeatureNames(ifName);
        if (names is null) return err;
        var index = names.IndexOf(feature);
        if (index < 0) return Errnos.EOPNOTSUPP;
        var blocks = (names.Count + 31) / 32;
        var s = new uint[2 + 2 * blocks];
        s[0] = ETHTOOL_SFEATURES;
        s[1] = (uint)blocks;
        var bit = 1u << (index % 32);
        s[2 + 2 * (index / 32)] = bit;
        if (on) s[3 + 2 * (index / 32)] = bit;
        var r = EthtoolIoctl.Call(ifName, MemoryMarshal.AsBytes(s.AsSpan()));
        if (r < 0) return -r;
        // A feature outside the device's changeable set is dropped by the kernel, which says so in the result.
        return (r & ETHTOOL_F_UNSUPPORTED) != 0 ? Errnos.EOPNOTSUPP : 0;
    }

    public (RssTable? Table, int Errno) GetRss(string ifName)
    {
        var (rings, err) = RxRings(ifName);
        if (err != 0) return (null, err);
        // struct ethtool_rxfh_indir: cmd, size, ring_index[size]. Size 0 asks for the device's size.
        var head = new uint[2];
        head[0] = ETHTOOL_GRXFHINDIR;
        err = EthtoolIoctl.Call(ifName, head);
        if (err != 0) return (null, err);
        var size = head[1];
        if (size is 0 or > 65536) return (null, Errnos.EOPNOTSUPP);
        var s = new uint[2 + size];
        s[0] = ETHTOOL_GRXFHINDIR;
        s[1] = size;
        err = EthtoolIoctl.Call(ifName, s);
        return err != 0 ? (null, err) : (new RssTable(rings, s[2..]), 0);
    }

    public int SetRss(string ifName, uint[]? indirection)
    {
        // Size 0 is the kernel's "back to the default spread" (ethtool -X default), which also forgets that the table
        // was set by hand, so later channel changes spread it again as before.
        var s = new uint[2 + (indirection?.Length ?? 0)];
        s[0] = ETHTOOL_SRXFHINDIR;
        s[1] = (uint)(indirection?.Length ?? 0);
        indirection?.CopyTo(s, 2);
        return EthtoolIoctl.Call(ifName, s);
    }

    public (uint? Fields, int Errno) GetFlowHash(string ifName, string flowType)
    {
        if (RxFlowHashFields.FlowType(flowType) is not { } type) return (null, Errnos.EINVAL);
        var s = new byte[RxnfcBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(s, ETHTOOL_GRXFH);
        BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(4), type);
        var r = EthtoolIoctl.Call(ifName, s);
        return r < 0 ? (null, -r) : ((uint)BinaryPrimitives.ReadUInt64LittleEndian(s.AsSpan(8)), 0);
    }

    public int SetFlowHash(string ifName, string flowType, uint fields)
    {
        if (RxFlowHashFields.FlowType(flowType) is not { } type) return Errnos.EINVAL;
        var s = new byte[RxnfcBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(s, ETHTOOL_SRXFH);
        BinaryPrimitives.WriteUInt32LittleEndian(s.AsSpan(4), type);
        BinaryPrimitives.WriteUInt64LittleEndian(s.AsSpan(8), fields);
        var r = EthtoolIoctl.Call(ifName, s);
        return r < 0 ? -r : 0;
    }

    private static (int Rings, int Errno) RxRings(string ifName)
    {
        var s = new byte[RxnfcBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(s, ETHTOOL_GRXRINGS);
        var r = EthtoolIoctl.Call(ifName, s);
        return r < 0 ? (0, -r) : ((int)BinaryPrimitives.ReadUInt64LittleEndian(s.AsSpan(8)), 0);
    }

    private static NicSettingValues Read(NicSettingGroup group, uint[] s, int[] offsets)
    {
        var fields = NicSettingValues.Fields(group);
        var v = NicSettingValues.Empty(group);
        for (var i = 0; i < fields.Count; i++) v = v.With(fields[i], s[offsets[i]]);
        return v;
    }

    private static (List<string>? Names, int Errno) FeatureNames(string ifName)
    {
        // struct ethtool_sset_info: cmd, reserved, __u64 sset_mask, then one __u32 count per set in the mask.
        var info = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(info, ETHTOOL_GSSET_INFO);
        BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(8), 1UL << (int)ETH_SS_FEATURES);
        var r = EthtoolIoctl.Call(ifName, info);
        if (r < 0) return (null, -r);
        if (BinaryPrimitives.ReadUInt64LittleEndian(info.AsSpan(8)) == 0) return (null, Errnos.EOPNOTSUPP);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(16));
        if (count is 0 or > 4096) return (null, Errnos.EIO);
        // struct ethtool_gstrings: cmd, string_set, len, then len names of ETH_GSTRING_LEN bytes.
        var strings = new byte[12 + count * ETH_GSTRING_LEN];
        BinaryPrimitives.WriteUInt32LittleEndian(strings, ETHTOOL_GSTRINGS);
        BinaryPrimitives.WriteUInt32LittleEndian(strings.AsSpan(4), ETH_SS_FEATURES);
        BinaryPrimitives.WriteUInt32LittleEndian(strings.AsSpan(8), count);
        r = EthtoolIoctl.Call(ifName, strings);
        if (r < 0) return (null, -r);
        var names = new List<string>((int)count);
        for (var i = 0; i < count; i++)
        {
            var raw = strings.AsSpan(12 + i * (int)ETH_GSTRING_LEN, (int)ETH_GSTRING_LEN);
            var end = raw.IndexOf((byte)0);
            names.Add(Encoding.ASCII.GetString(end < 0 ? raw : raw[..end]));
        }
        return (names, 0);
    }
}
