using System.Globalization;
using System.Text.RegularExpressions;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Planning;
using NetTune.Agent.Core.Topology;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Apply;

/// <summary>How far the hugepage pools may be raised at once and how much memory must stay free.</summary>
public sealed record HugepagesRaiseOptions
{
    /// <summary>Memory reserved per write: the kernel compacts and reclaims for each step, and free memory is looked at between them.</summary>
    public long StepBytes { get; init; } = 1L << 30;
    /// <summary>Never take the node (or, without NUMA, the host) below this share of its memory free...</summary>
    public int KeepFreePercent { get; init; } = 5;
    /// <summary>...nor below this many bytes.</summary>
    public long KeepFreeBytes { get; init; } = 512L << 20;
}

/// <summary>
/// Sets nr_hugepages the way a careful administrator would: a lower pool in one write (pages still in use stay as
/// surplus pages, which the kernel frees when their users end), a higher one in steps, reading the node's free memory
/// before each, and stopping with a partial allocation, reported as such, before the node runs short. Each write of
/// nr_hugepages makes the kernel reclaim and compact until it has the pages, so one big write can push the node
/// into the OOM killer before it returns.
/// </summary>
public sealed partial class HugepagesWriter(IHostFileSystem fs, HugepagesRaiseOptions options)
{
    public KnobResult Write(string knob, string path, string target)
    {
        var want = long.Parse(target, CultureInfo.InvariantCulture);
        var pageBytes = PageBytes(path);
        var (total, surplus) = ReadPool(path);
        if (total is null) return Result(knob, KnobOutcome.Failed, null, $"cannot read {path}");
        var current = total.Value - surplus;
        if (want <= current) return Lower(knob, path, want);

        var meminfo = MeminfoPath(path);
        while (current < want)
        {
            var (memTotal, available) = ReadMemory(meminfo);
            var floor = Math.Max(options.KeepFreeBytes, memTotal * options.KeepFreePercent / 100);
            var room = (available - floor) / pageBytes;
            if (room <= 0)
                return Partial(knob, current, want, $"stopped with {HugepagesPlanner.Bytes(available)} of {meminfo} free or reclaimable, keeping at least {HugepagesPlanner.Bytes(floor)} free");
            var next = Math.Min(want, current + Math.Min(room, Math.Max(1, options.StepBytes / pageBytes)));
            var write = fs.Write(path, next.ToString(CultureInfo.InvariantCulture));
            if (!write.Ok) return Result(knob, KnobOutcome.Failed, Value(path), $"write {next} to {path}: {Errnos.Describe(write.Errno)}");
            var (got, gotSurplus) = ReadPool(path);
            var reached = (got ?? 0) - gotSurplus;
            if (reached < next)
                return Partial(knob, Math.Max(reached, current), want, $"the kernel found {reached} of the {next} pages asked in this step (memory too fragmented or in use)");
            current = reached;
        }
        return Result(knob, KnobOutcome.Applied, current.ToString(CultureInfo.InvariantCulture), null);
    }

    private KnobResult Lower(string knob, string path, long want)
    {
        var write = fs.Write(path, want.ToString(CultureInfo.InvariantCulture));
        if (!write.Ok) return Result(knob, KnobOutcome.Failed, Value(path), $"write {want} to {path}: {Errnos.Describe(write.Errno)}");
        var (total, surplus) = ReadPool(path);
        if (total is null) return Result(knob, KnobOutcome.Failed, null, $"cannot read {path} after writing {want}");
        if (total - surplus != want) return Result(knob, KnobOutcome.Failed, $"{total}", $"wrote {want} to {path} but read back {total} ({surplus} surplus)");
        // The pool is what was asked; pages a process still maps stay allocated as surplus until it unmaps them.
        return Result(knob, KnobOutcome.Applied, want.ToString(CultureInfo.InvariantCulture), surplus == 0 ? null
            : $"{surplus} pages are still in use and stay allocated as surplus pages; the kernel releases them when the processes holding them end");
    }

    private static KnobResult Partial(string knob, long got, long want, string why) =>
        Result(knob, KnobOutcome.Shortfall, got.ToString(CultureInfo.InvariantCulture), $"partial allocation: {got} of {want} pages ({want - got} short): {why}");

    /// <summary>nr_hugepages and the pool's surplus_hugepages beside it (0 when the file is absent, as in the global pool of old kernels).</summary>
    private (long? Total, long Surplus) ReadPool(string path)
    {
        var total = long.TryParse(Value(path), CultureInfo.InvariantCulture, out var t) ? t : (long?)null;
        var surplusPath = Path.Join(Path.GetDirectoryName(path), "surplus_hugepages");
        return (total, long.TryParse(Value(surplusPath), CultureInfo.InvariantCulture, out var s) ? s : 0);
    }

    /// <summary>The node's meminfo for a per-node pool, proc/meminfo for the global one.</summary>
    public static string MeminfoPath(string poolPath)
    {
        var m = NodeDir().Match(poolPath);
        return m.Success ? $"{m.Value}/meminfo" : "proc/meminfo";
    }

    /// <summary>MemTotal, and what the kernel can hand out without the OOM killer: MemFree plus the inactive page cache (a node's meminfo has no MemAvailable).</summary>
    private (long Total, long Available) ReadMemory(string meminfo)
    {
        var text = Value(meminfo) ?? "";
        long Field(string name)
        {
            var m = Regex.Match(text, $@"(?m)^(?:Node \d+ )?{Regex.Escape(name)}:\s+(\d+) kB");
            return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * 1024 : 0;
        }
        var available = Field("MemAvailable");
        return (Field("MemTotal"), available > 0 ? available : Field("MemFree") + Field("Inactive(file)"));
    }

    private static long PageBytes(string path)
    {
        var m = PoolDir().Match(path);
        return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * 1024 : 2L << 20;
    }

    private string? Value(string path)
    {
        var r = fs.Read(path);
        return r.Ok ? TopologyDiscovery.StripNewline(r.Text!).Trim() : null;
    }

    private static KnobResult Result(string knob, KnobOutcome outcome, string? value, string? message) =>
        new() { Knob = knob, Result = outcome, Value = value, Message = message };

    [GeneratedRegex(@"^sys/devices/system/node/node\d+")] private static partial Regex NodeDir();
    [GeneratedRegex(@"hugepages-(\d+)kB/")] private static partial Regex PoolDir();
}
