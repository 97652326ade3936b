using System.Buffers;
using System.Text;
using NetTune.Agent.Core.DevicePlugin;
using NetTune.Agent.Core.Topology;

namespace NetTune.Agent.Tests;

public sealed class DevicePluginTests
{
    private static NumaNode Numa(int id, params int[] cpus) => new(id, cpus, 1L << 30, [], []);

    [Fact]
    public void EachNumaNodeWithCpusGetsItsOwnResourceWhoseDevicesAllNameThatNode()
    {
        var resources = NumaDevicePlan.Plan([Numa(1, 2, 3), Numa(0, 0, 1), Numa(2)]);
        Assert.Equal(["nettune.io/numa-node-0", "nettune.io/numa-node-1"], resources.Select(r => r.ResourceName));
        Assert.Equal(["nettune-numa-node-0.sock", "nettune-numa-node-1.sock"], resources.Select(r => r.SocketName));
        foreach (var resource in resources)
        {
            Assert.Equal(NumaDevicePlan.DevicesPerNumaNode, resource.Devices.Count);
            Assert.All(resource.Devices, d => Assert.Equal(resource.NumaNode, d.NumaNode));
            Assert.Equal(resource.Devices.Count, resource.Devices.Select(d => d.Id).Distinct().Count());
        }
        // Device IDs are unique across resources too: the kubelet's checkpoint keys them by resource, people by ID.
        Assert.Empty(resources[0].Devices.Select(d => d.Id).Intersect(resources[1].Devices.Select(d => d.Id)));
        Assert.Empty(NumaDevicePlan.Plan([Numa(0)]));
    }

    [Fact]
    public void ThePreferredDevicesAreTheMustIncludesThenTheAvailableOnesAndNeverAnotherResources()
    {
        var resource = NumaDevicePlan.Plan([Numa(0, 0), Numa(1, 1)])[1];
        Assert.Equal(["numa1-2", "numa1-0"], NumaDevicePlan.Preferred(resource, ["numa1-0", "numa1-1"], ["numa1-2"], 2));
        Assert.Equal(["numa1-1"], NumaDevicePlan.Preferred(resource, ["numa0-0", "numa1-1", "numa1-1"], [], 3));
        Assert.Empty(NumaDevicePlan.Preferred(resource, ["numa1-0"], [], 0));
    }

    [Fact]
    public void AnAllocationOfAnotherResourcesOrNoDeviceIsRefused()
    {
        var resource = NumaDevicePlan.Plan([Numa(0, 0), Numa(1, 1)])[0];
        Assert.Null(NumaDevicePlan.AllocationRefusal(resource, ["numa0-3"]));
        Assert.Contains("unknown device numa1-0", NumaDevicePlan.AllocationRefusal(resource, ["numa0-0", "numa1-0"]));
        Assert.Contains("no device", NumaDevicePlan.AllocationRefusal(resource, []));
    }

    [Fact]
    public void ARestartedKubeletOrAMissingSocketOfOursMeansServingAndRegisteringAgain()
    {
        var first = new SocketIdentity(1, 1);
        var restarted = new SocketIdentity(2, 2);
        Assert.Equal(RegistrationAction.WaitForKubelet, RegistrationWatch.Decide(null, null, false));
        Assert.Equal(RegistrationAction.WaitForKubelet, RegistrationWatch.Decide(first, null, true));
        Assert.Equal(RegistrationAction.ServeAndRegister, RegistrationWatch.Decide(null, first, false));
        Assert.Equal(RegistrationAction.None, RegistrationWatch.Decide(first, first, true));
        Assert.Equal(RegistrationAction.ServeAndRegister, RegistrationWatch.Decide(first, restarted, true));
        Assert.Equal(RegistrationAction.ServeAndRegister, RegistrationWatch.Decide(first, first, false));
    }

    // HTTP/2 frames as a kubelet before 1.26 sends them (grpc-go, dialled with the socket path).
    private static readonly byte[] Preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    private const string SocketPath = "/var/lib/kubelet/device-plugins/nettune-numa-node-0.sock";

    private static byte[] Frame(byte type, byte flags, int stream, params byte[][] parts)
    {
        var payload = parts.SelectMany(p => p).ToArray();
        return [(byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, type, flags,
            (byte)(stream >> 24), (byte)(stream >> 16), (byte)(stream >> 8), (byte)stream, .. payload];
    }

    private static byte[] Str(string s) => [(byte)s.Length, .. Encoding.ASCII.GetBytes(s)];

    // :method POST (static 3), :scheme http (6), :path as a literal without indexing (name 4), :authority with
    // incremental indexing (name 1), content-type with a new name, then te never indexed (new name).
    private static byte[] Block(string authority) =>
        [0x83, 0x86, 0x04, .. Str("/v1beta1.DevicePlugin/ListAndWatch"), 0x41, .. Str(authority), 0x40, .. Str("content-type"), .. Str("application/grpc"), 0x10, .. Str("te"), .. Str("trailers")];

    private static byte[] Run(params byte[][] chunks)
    {
        var rewriter = new Http2AuthorityRewriter();
        var output = new ArrayBufferWriter<byte>();
        var pending = Array.Empty<byte>();
        foreach (var chunk in chunks)
        {
            var input = pending.Concat(chunk).ToArray();
            var used = rewriter.Process(input, output);
            pending = input[used..];
        }
        Assert.Empty(pending);
        return output.WrittenSpan.ToArray();
    }

    [Fact]
    public void TheSocketPathAuthorityIsEmptied_EverythingElseStaysByteForByte()
    {
        var settings = Frame(0x4, 0, 0);
        var data = Frame(0x0, 0x1, 1, [0, 0, 0, 0, 0]);
        var sent = Preface.Concat(settings).Concat(Frame(0x1, 0x4, 1, Block(SocketPath))).Concat(data).ToArray();
        var expected = Preface.Concat(settings).Concat(Frame(0x1, 0x4, 1, Block(""))).Concat(data).ToArray();
        Assert.Equal(expected, Run(sent));
        // The same, however the reads cut it.
        Assert.Equal(expected, Run(sent.Select(b => new[] { b }).ToArray()));
        Assert.Equal(expected, Run(sent[..30], sent[30..61], sent[61..]));
    }

    [Fact]
    public void ABlockInContinuationFramesWithPaddingAndPriorityBecomesOneUnpaddedHeadersFrame()
    {
        var block = Block(SocketPath);
        byte[] priority = [0x80, 0, 0, 3, 15];
        // PADDED | PRIORITY, no END_HEADERS; 3 bytes of padding; the rest in a CONTINUATION with END_HEADERS.
        var headers = Frame(0x1, 0x8 | 0x20, 5, [3], priority, block[..20], [0, 0, 0]);
        var continuation = Frame(0x9, 0x4, 5, block[20..]);
        var output = Run(Preface, headers, continuation);
        Assert.Equal(Preface.Concat(Frame(0x1, 0x20 | 0x4, 5, priority, Block(""))).ToArray(), output);
    }

    [Fact]
    public void NeverIndexedAndHuffmanCodedAuthoritiesAreEmptiedToo_OtherNamesAreNot()
    {
        // 0x11: never indexed, name 1; H bit set: a Huffman-coded value of 3 bytes.
        byte[] block = [0x11, 0x83, 0xAA, 0xBB, 0xCC, 0x44, .. Str("/x"), 0xBE];
        Assert.Equal([0x11, 0x00, 0x44, .. Str("/x"), 0xBE], Http2AuthorityRewriter.RewriteHeaderBlock(block));
        // A block cut short is left as it came, for the server to refuse.
        byte[] cut = [0x41, 0x20, (byte)'/'];
        Assert.Equal(cut, Http2AuthorityRewriter.RewriteHeaderBlock(cut));
    }

    [Fact]
    public void AFrameOtherThanContinuationInsideAHeaderBlockPassesEverythingThroughAsSent()
    {
        var block = Block(SocketPath);
        var headers = Frame(0x1, 0, 1, block[..10]);
        var ping = Frame(0x6, 0, 0, new byte[8]);
        var output = Run(Preface, headers, ping, Frame(0x9, 0x4, 1, block[10..]));
        Assert.Equal(Preface.Concat(headers).Concat(ping).Concat(Frame(0x9, 0x4, 1, block[10..])).ToArray(), output);
    }
}
