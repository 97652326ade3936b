using NetTune.DataPlane;
using NetTune.Http;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>The memory budget: the pure derivation of limits from a memory limit, and where the limit is read from.</summary>
public sealed class MemoryBudgetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nettune-cgroup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly int StaticBlock = HttpSession.BlockSizeFor(HttpLimits.Default);
    private static readonly int ProxyBlock = ProxySession.BlockSizeFor(HttpLimits.Default, 64 * 1024);

    [Fact]
    public void TheOperatorsSessionSizesAreTheDataPlanesAtDefaultFlags()
    {
        var defaults = ServerOptions.Parse(["--root", "/srv"]);
        Assert.Equal(MemoryBudget.DefaultStaticSessionBytes, HttpSession.BlockSizeFor(defaults.Limits));
        var proxy = ServerOptions.Parse(["--upstream", "a:1"]);
        Assert.Equal(MemoryBudget.DefaultProxySessionBytes, ProxySession.BlockSizeFor(proxy.Limits, proxy.ProxyBufferBytes));
    }

    [Fact]
    public void WithoutALimitTheDefaultsHold()
    {
        Assert.Equal(new MemoryLimits(16384, 64L << 20, 1024), MemoryBudget.Derive(null, 2, StaticBlock, proxy: false));
        // cgroup v1 writes "no limit" as LONG_MAX rounded down to a page.
        Assert.Equal(new MemoryLimits(16384, 0, 1024), MemoryBudget.Derive(9223372036854771712, 2, ProxyBlock, proxy: true));
    }

    [Fact]
    public void TheOperatorsDefaultPodFitsItsLimit()
    {
        const long limit = 512L << 20;
        for (int workers = 1; workers <= 8; workers++)
        {
            foreach (var (block, proxy) in new[] { (StaticBlock, false), (ProxyBlock, true) })
            {
                var l = MemoryBudget.Derive(limit, workers, block, proxy);
                // Every worker full of sessions with their sockets, its cache full, plus the reserves: within the limit.
                long worst = MemoryBudget.ProcessReserveBytes + workers * (MemoryBudget.WorkerReserveBytes + l.MemoryCacheBytesPerWorker
                    + l.MaxConnectionsPerWorker * (block + (proxy ? 2 : 1) * MemoryBudget.ConnectionOverheadBytes));
                Assert.True(worst <= limit - limit / 4, $"{workers} workers, proxy={proxy}: {worst >> 20} MiB of {limit >> 20} MiB");
                Assert.True(l.MaxConnectionsPerWorker < 16384, $"{workers} workers: {l.MaxConnectionsPerWorker} connections is the unlimited default");
                Assert.InRange(l.UpstreamConnectionsPerWorker, 1, l.MaxConnectionsPerWorker);
            }
        }
        // The numbers the READMEs give for 2 workers.
        Assert.Equal(new MemoryLimits(3328, 39L << 20, 1024), MemoryBudget.Derive(limit, 2, StaticBlock, proxy: false));
        Assert.Equal(new MemoryLimits(1210, 0, 605), MemoryBudget.Derive(limit, 2, ProxyBlock, proxy: true));
    }

    [Fact]
    public void MoreMemoryMoreConnections_MoreWorkersFewerEach()
    {
        var small = MemoryBudget.Derive(256L << 20, 2, StaticBlock, proxy: false);
        var large = MemoryBudget.Derive(1L << 30, 2, StaticBlock, proxy: false);
        Assert.True(large.MaxConnectionsPerWorker > small.MaxConnectionsPerWorker);
        Assert.True(large.MemoryCacheBytesPerWorker >= small.MemoryCacheBytesPerWorker);
        Assert.Equal(64L << 20, large.MemoryCacheBytesPerWorker); // capped at the unlimited default
        var spread = MemoryBudget.Derive(1L << 30, 8, StaticBlock, proxy: false);
        Assert.True(spread.MaxConnectionsPerWorker < large.MaxConnectionsPerWorker);
        // A bigger session block buys fewer sessions.
        Assert.True(MemoryBudget.Derive(1L << 30, 2, ProxyBlock, proxy: true).MaxConnectionsPerWorker < large.MaxConnectionsPerWorker);
    }

    [Fact]
    public void ATinyLimitStillServesAFewConnections()
    {
        var l = MemoryBudget.Derive(32L << 20, 4, StaticBlock, proxy: false);
        Assert.Equal(MemoryBudget.MinConnections, l.MaxConnectionsPerWorker);
        Assert.Equal(0, l.MemoryCacheBytesPerWorker);
        Assert.Equal(MemoryBudget.MinConnections / 2, l.UpstreamConnectionsPerWorker);
        Assert.Throws<ArgumentOutOfRangeException>(() => MemoryBudget.Derive(1L << 30, 0, StaticBlock, proxy: false));
    }

    [Fact]
    public void FlagsWinOverTheBudget()
    {
        var derived = ServerOptions.Parse(["--root", "/srv"]).WithMemoryBudget(256L << 20, 2);
        Assert.Equal(MemoryBudget.Derive(256L << 20, 2, StaticBlock, proxy: false), derived.Memory);

        var given = ServerOptions.Parse(["--root", "/srv", "--max-connections", "100", "--memory-cache-bytes", "4096"]).WithMemoryBudget(256L << 20, 2);
        Assert.Equal(100, given.MaxConnectionsPerWorker);
        Assert.Equal(4096, given.MemoryCacheBytesPerWorker);

        // --memory-limit replaces the cgroup's; 0 is unlimited.
        var limited = ServerOptions.Parse(["--upstream", "a:1", "--memory-limit", "268435456"]).WithMemoryBudget(null, 2);
        Assert.Equal(MemoryBudget.Derive(256L << 20, 2, ProxyBlock, proxy: true), limited.Memory);
        var unlimited = ServerOptions.Parse(["--upstream", "a:1", "--memory-limit", "0"]).WithMemoryBudget(128L << 20, 2);
        Assert.Equal(16384, unlimited.MaxConnectionsPerWorker);

        // The upstream cap: explicit, or half the connections (an explicit --max-connections lowers it).
        Assert.Equal(7, ServerOptions.Parse(["--upstream", "a:1", "--upstream-max-connections", "7"]).WithMemoryBudget(null, 1).UpstreamConnectionsPerWorker);
        Assert.Equal(50, ServerOptions.Parse(["--upstream", "a:1", "--max-connections", "100"]).WithMemoryBudget(null, 1).UpstreamConnectionsPerWorker);
        Assert.Throws<OptionsException>(() => ServerOptions.Parse(["--upstream", "a:1", "--upstream-max-connections", "0"]));
        Assert.Throws<OptionsException>(() => ServerOptions.Parse(["--root", "/srv", "--memory-limit", "-1"]));
    }

    private void Write(string path, string text)
    {
        var full = Path.Combine(_root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text);
    }

    private const string HybridMounts = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """;

    [Fact]
    public void CgroupV1_TheMemoryControllersLimitAtTheProcesssPath()
    {
        // As on this host: hybrid, the v1 memory controller mounted, the process in a nested cgroup.
        Write("proc/self/cgroup", "4:memory:/kubepods/pod1/ctr\n1:cpu:/\n0::/\n");
        Write("proc/self/mountinfo", HybridMounts);
        Write("sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.limit_in_bytes", "536870912\n");
        Write("sys/fs/cgroup/memory/kubepods/memory.limit_in_bytes", "9223372036854771712\n");
        Assert.Equal(512L << 20, CgroupMemory.ReadLimit(_root));
    }

    [Fact]
    public void CgroupV1_AParentsSmallerLimitBinds_UnlimitedEverywhereIsNone()
    {
        Write("proc/self/cgroup", "4:memory:/kubepods/pod1/ctr\n0::/\n");
        Write("proc/self/mountinfo", HybridMounts);
        Write("sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.limit_in_bytes", "9223372036854771712\n");
        Write("sys/fs/cgroup/memory/kubepods/pod1/memory.limit_in_bytes", "9223372036854771712\n");
        Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
        Assert.Null(CgroupMemory.ReadLimit(_root));
        Write("sys/fs/cgroup/memory/kubepods/pod1/memory.limit_in_bytes", "268435456\n");
        Assert.Equal(256L << 20, CgroupMemory.ReadLimit(_root));
    }

    [Fact]
    public void CgroupV2_MemoryMax_InACgroupNamespace()
    {
        // A container with its own cgroup namespace: "/" in /proc/self/cgroup and at the mount's root.
        Write("proc/self/cgroup", "0::/\n");
        Write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
        Write("sys/fs/cgroup/memory.max", "max\n");
        Assert.Null(CgroupMemory.ReadLimit(_root));
        Write("sys/fs/cgroup/memory.max", "134217728\n");
        Assert.Equal(128L << 20, CgroupMemory.ReadLimit(_root));
    }

    [Fact]
    public void CgroupV2_TheMountsRootIsCutOffThePath()
    {
        // Without a cgroup namespace, a bind mount of the container's own cgroup: the mount's root is the cgroup.
        Write("proc/self/cgroup", "0::/kubepods.slice/pod1/ctr\n");
        Write("proc/self/mountinfo", "30 25 0:26 /kubepods.slice/pod1/ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        Write("sys/fs/cgroup/memory.max", "67108864\n");
        Assert.Equal(64L << 20, CgroupMemory.ReadLimit(_root));
    }

    [Fact]
    public void CgroupV2_AMountPointWithASpaceIsUnescaped()
    {
        Write("proc/self/cgroup", "0::/a\n");
        Write("proc/self/mountinfo", @"30 25 0:26 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw" + "\n");
        Write("mnt/my cgroups/a/memory.max", "1048576\n");
        Assert.Equal(1L << 20, CgroupMemory.ReadLimit(_root));
    }

    [Fact]
    public void NoCgroupOrGarbageIsNoLimit()
    {
        Assert.Null(CgroupMemory.ReadLimit(_root));
        Write("proc/self/cgroup", "4:memory:/x\n");
        Write("proc/self/mountinfo", HybridMounts);
        Write("sys/fs/cgroup/memory/x/memory.limit_in_bytes", "lots\n");
        Assert.Null(CgroupMemory.ReadLimit(_root));
    }
}
