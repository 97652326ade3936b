using System.Globalization;
using System.Text.RegularExpressions;
using NetTune.Agent.Core.Host;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Topology;

/// <summary>Reads NUMA, CPU and NIC topology and the current knob values from sysfs and procfs under the host root.</summary>
public sealed partial class TopologyDiscovery(IHostFileSystem fs, IChannelControl channels)
{
    /// <summary>The kubelet's root dir on the host, where its CPU manager checkpoint is.</summary>
    public string KubeletRootDir { get; init; } = KubeletCpuAssignment.DefaultKubeletRootDir;

    /// <summary>
    /// Which NICs (by name and driver) get their rings, coalescing, pause and features read: seven ethtool calls a NIC,
    /// worth it for the ones a spec tunes, not for every pod's veth. Null: every NIC.
    /// </summary>
    public Func<string, string?, bool>? ReadSettingsOf { get; init; }

    public HostSnapshot Discover()
    {
        var online = ParseCpuList(Value("sys/devices/system/cpu/online"));
        var cpuIds = CpuMask.GroupWidthFromPossible(Value("sys/devices/system/cpu/possible"));
        if (online.Count > 0 && online[^1] + 1 > cpuIds) cpuIds = online[^1] + 1;
        var interrupts = ReadInterrupts();
        var facts = new HostFactsDiscovery(fs);
        var kubeletCpus = facts.KubeletCpus(KubeletRootDir);
        return new HostSnapshot
        {
            NohzFullCpus = facts.NohzFullCpus(),
            KubeletExclusiveCpus = kubeletCpus.ExclusiveCpus,
            DataPlanes = kubeletCpus.DataPlanes,
            KubeletMemoryManager = facts.KubeletMemoryManager(KubeletRootDir),
            ManagementInterfaces = facts.ManagementInterfaces(),
            NetNamespace = facts.NetNamespace(),
            AvailableCongestionControl = facts.AvailableCongestionControl(),
            NumaNodes = DiscoverNodes(online),
            OnlineCpus = online,
            IsolatedCpus = ParseCpuList(Value("sys/devices/system/cpu/isolated")),
            CpuIds = cpuIds,
            Cpus = online.Select(DiscoverCpu).ToArray(),
            Nics = fs.List("sys/class/net").Where(n => n != "lo" && fs.Exists($"sys/class/net/{n}/queues"))
                .Select(n => DiscoverNic(n, interrupts)).ToArray(),
            BootId = BootId(),
            IrqBalance = FindIrqBalance(),
            Sysctls = SysctlAllowList.Keys
                .Select(k => (k, v: Value(SysctlAllowList.ProcPath(k))))
                .Where(x => x.v is not null)
                .ToDictionary(x => x.k, x => x.v!, StringComparer.Ordinal),
        };
    }

    public const string BootIdPath = "proc/sys/kernel/random/boot_id";

    /// <summary>The current boot's id, or null when the host root does not show one.</summary>
    public string? BootId() => Value(BootIdPath)?.Trim() is { Length: > 0 } id ? id : null;

    /// <summary>The file's text without its trailing newline, or null when it cannot be read.</summary>
    public string? Value(string path)
    {
        var r = fs.Read(path);
        return r.Ok ? StripNewline(r.Text!) : null;
    }

    public static string StripNewline(string text) => text.EndsWith('\n') ? text[..^1] : text;

    private static IReadOnlyList<int> ParseCpuList(string? text) => CpuList.TryParse(text, out var cpus) ? cpus : [];

    /// <summary>irqbalance among the host's processes (its procfs: /host/proc in the DaemonSet), or null.</summary>
    private IrqBalanceProcess? FindIrqBalance()
    {
        foreach (var entry in fs.List("proc"))
        {
            if (!int.TryParse(entry, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            if (Value($"proc/{pid}/comm") != "irqbalance") continue;
            var argv = (fs.Read($"proc/{pid}/cmdline").Text ?? "").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            // A one-shot run places the IRQs once and exits: it does not fight anyone.
            if (argv.Any(a => a is "--oneshot" or "-o")) continue;
            return new IrqBalanceProcess(pid, ParseBannedIrqs(argv), string.Join(' ', argv));
        }
        return null;
    }

    /// <summary>The IRQs of irqbalance's --banirq=N, --banirq N, -i N and -iN arguments.</summary>
    public static IReadOnlyList<int> ParseBannedIrqs(IReadOnlyList<string> argv)
    {
        var banned = new SortedSet<int>();
        for (var i = 0; i < argv.Count; i++)
        {
            var a = argv[i];
            string? value = a switch
            {
                "--banirq" or "-i" when i + 1 < argv.Count => argv[++i],
                _ when a.StartsWith("--banirq=", StringComparison.Ordinal) => a["--banirq=".Length..],
                _ when a.StartsWith("-i", StringComparison.Ordinal) && a.Length > 2 && char.IsDigit(a[2]) => a[2..],
                _ => null,
            };
            if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var irq)) banned.Add(irq);
        }
        return banned.ToArray();
    }

    private IReadOnlyList<NumaNode> DiscoverNodes(IReadOnlyList<int> online)
    {
        var nodes = new List<NumaNode>();
        foreach (var entry in fs.List("sys/devices/system/node"))
        {
            var m = NodeDir().Match(entry);
            if (!m.Success) continue;
            var id = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var dir = $"sys/devices/system/node/{entry}";
            var distances = (Value($"{dir}/distance") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(d => int.TryParse(d, out var v) ? v : -1).ToArray();
            nodes.Add(new NumaNode(id, ParseCpuList(Value($"{dir}/cpulist")), ReadMemTotalKb(Value($"{dir}/meminfo")) * 1024,
                distances, ReadPools($"{dir}/hugepages")));
        }
        if (nodes.Count == 0)
        {
            // A kernel built without NUMA has no node folders: one node holds everything, hugepages are global.
            nodes.Add(new NumaNode(0, online, ReadMemTotalKb(Value("proc/meminfo")) * 1024, [10], ReadPools("sys/kernel/mm/hugepages")));
        }
        return nodes.OrderBy(n => n.Id).ToArray();
    }

    private IReadOnlyList<HugepagePool> ReadPools(string dir)
    {
        var pools = new List<HugepagePool>();
        foreach (var entry in fs.List(dir))
        {
            var m = PoolDir().Match(entry);
            if (!m.Success) continue;
            var kb = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            var path = $"{dir}/{entry}/nr_hugepages";
            pools.Add(new HugepagePool(HugepageSize(kb), kb, ParseLong(Value(path)), ParseLong(Value($"{dir}/{entry}/free_hugepages")), path,
                ParseLong(Value($"{dir}/{entry}/surplus_hugepages"))));
        }
        return pools.OrderBy(p => p.SizeKb).ToArray();
    }

    public static string HugepageSize(long kb) => kb switch
    {
        2048 => "2Mi",
        1048576 => "1Gi",
        _ when kb % 1048576 == 0 => $"{kb / 1048576}Gi",
        _ when kb % 1024 == 0 => $"{kb / 1024}Mi",
        _ => $"{kb}Ki",
    };

    private static long ReadMemTotalKb(string? meminfo)
    {
        var m = meminfo is null ? Match.Empty : MemTotal().Match(meminfo);
        return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    private static long ParseLong(string? s) => long.TryParse(s?.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;

    private CpuInfo DiscoverCpu(int id)
    {
        var dir = $"sys/devices/system/cpu/cpu{id}/topology";
        return new CpuInfo(id, (int)ParseLong(Value($"{dir}/physical_package_id")), (int)ParseLong(Value($"{dir}/core_id")),
            Value($"{dir}/thread_siblings_list") ?? $"{id}");
    }

    private Nic DiscoverNic(string name, IReadOnlyDictionary<int, string> interrupts)
    {
        var netDir = $"sys/class/net/{name}";
        var device = fs.ResolveLink($"{netDir}/device");
        string? driver = null, pci = null, pciDir = null;
        int numa = -1;
        IReadOnlyList<int>? localCpus = null;
        if (device is not null)
        {
            driver = fs.ResolveLink($"{device}/driver") is { } drv ? Path.GetFileName(drv) : null;
            // virtio net devices sit below their PCI function and have no numa_node of their own: walk up to it.
            for (var dir = device; !string.IsNullOrEmpty(dir) && dir.StartsWith("sys/devices", StringComparison.Ordinal); dir = Path.GetDirectoryName(dir))
            {
                if (!PciAddress().IsMatch(Path.GetFileName(dir))) continue;
                pciDir = dir;
                pci = Path.GetFileName(dir);
                break;
            }
            var numaText = Value($"{device}/numa_node") ?? (pciDir is null ? null : Value($"{pciDir}/numa_node"));
            if (int.TryParse(numaText, out var n)) numa = n;
            var local = Value($"{device}/local_cpulist") ?? (pciDir is null ? null : Value($"{pciDir}/local_cpulist"));
            if (local is not null && CpuList.TryParse(local, out var lc)) localCpus = lc;
        }

        var queueNames = fs.List($"{netDir}/queues");
        var rx = new List<RxQueue>();
        var tx = new List<TxQueue>();
        foreach (var q in queueNames)
        {
            if (q.StartsWith("rx-", StringComparison.Ordinal) && int.TryParse(q[3..], out var ri))
                rx.Add(new RxQueue(ri, Value($"{netDir}/queues/{q}/rps_cpus"), Value($"{netDir}/queues/{q}/rps_flow_cnt")));
            else if (q.StartsWith("tx-", StringComparison.Ordinal) && int.TryParse(q[3..], out var ti))
                tx.Add(new TxQueue(ti, Value($"{netDir}/queues/{q}/xps_cpus")));
        }

        var (info, errno) = channels.Get(name);
        var (irqs, irqSource) = DiscoverIrqs(name, device, pciDir, interrupts);
        var nic = new Nic
        {
            Name = name,
            Driver = driver,
            PciAddress = pci,
            NumaNode = numa,
            LocalCpus = localCpus,
            RxQueues = rx.OrderBy(q => q.Index).ToArray(),
            TxQueues = tx.OrderBy(q => q.Index).ToArray(),
            Channels = info,
            ChannelsError = info is null ? Errnos.Describe(errno) : null,
            Irqs = irqs,
            IrqSource = irqSource,
            IsVirtual = device is null,
            TxQueueLength = Value($"{netDir}/tx_queue_len"),
        };
        if (ReadSettingsOf is { } wanted && !wanted(name, driver)) return nic;
        var settings = channels.Settings;
        var (features, featuresErrno) = settings.GetFeatures(name);
        return nic with
        {
            Settings = Enum.GetValues<NicSettingGroup>().ToDictionary(g => g, g =>
            {
                var (setting, errno) = settings.Get(name, g);
                return new NicSettingRead(setting, errno);
            }),
            Features = features,
            FeaturesErrno = featuresErrno,
            Rss = settings.GetRss(name) is var (table, rssErrno) ? new RssRead(table, rssErrno) : null,
            FlowHash = RxFlowHashFields.FlowTypes.ToDictionary(f => f.Name, f =>
            {
                var (fields, errno) = settings.GetFlowHash(name, f.Name);
                return new FlowHashRead(fields, errno);
            }, StringComparer.Ordinal),
        };
    }

    private (IReadOnlyList<QueueIrq> Irqs, IrqSource Source) DiscoverIrqs(string ifName, string? device, string? pciDir, IReadOnlyDictionary<int, string> interrupts)
    {
        // The device's MSI vectors narrow the search when sysfs lists them; /proc/interrupts names say which queue each serves.
        IEnumerable<int> candidates = interrupts.Keys;
        int[] msi = [];
        if (pciDir is not null)
        {
            msi = fs.List($"{pciDir}/msi_irqs").Select(e => int.TryParse(e, out var v) ? v : -1).Where(v => v >= 0).Order().ToArray();
            if (msi.Length > 0) candidates = msi;
        }
        var virtioName = device is not null && VirtioDev().IsMatch(Path.GetFileName(device)) ? Path.GetFileName(device) : null;
        var pciAddress = pciDir is null ? null : Path.GetFileName(pciDir);
        var named = new List<(int Irq, string Name, int Queue, IrqRole Role)>();
        foreach (var irq in candidates.Order())
        {
            if (!interrupts.TryGetValue(irq, out var irqName)) continue;
            if (QueueIrqNames.Classify(irqName, ifName, virtioName, pciAddress) is not { } cls) continue;
            named.Add((irq, irqName, cls.Queue, cls.Role));
        }
        named = QueueIrqNames.SplitGveBlocks(named);
        var source = named.Count > 0 ? IrqSource.Names : IrqSource.None;
        if (named.Count == 0 && virtioName is null && msi.Length > 0)
        {
            // A driver whose names we do not know: its MSI-X vectors, less the ones named as admin/async/misc, serve
            // its queues in vector order (every driver above allocates queue vectors in queue order).
            var queueVectors = msi.Where(v => !interrupts.TryGetValue(v, out var n) || !QueueIrqNames.IsNonQueue(n, ifName)).ToArray();
            for (var q = 0; q < queueVectors.Length; q++)
                named.Add((queueVectors[q], interrupts.GetValueOrDefault(queueVectors[q]) ?? $"msi-{queueVectors[q]}", q, IrqRole.Combined));
            if (named.Count > 0) source = IrqSource.MsiVectors;
        }
        var irqs = named.Select(n => new QueueIrq(n.Irq, n.Name, n.Queue, n.Role, Value($"proc/irq/{n.Irq}/smp_affinity_list"), IsManaged(n.Irq))).ToArray();
        return (irqs, source);
    }

    /// <summary>Which queue an interrupt serves, from its name (see <see cref="QueueIrqNames"/>).</summary>
    public static (int Queue, IrqRole Role)? ClassifyIrqName(string irqName, string ifName, string? virtioName, string? pciAddress) =>
        QueueIrqNames.Classify(irqName, ifName, virtioName, pciAddress);

    private bool IsManaged(int irq)
    {
        // Only debugfs tells in advance; without it the kernel's EPERM at apply time tells.
        var r = fs.Read($"sys/kernel/debug/irq/irqs/{irq}");
        return r.Ok && r.Text!.Contains("AFFINITY_MANAGED", StringComparison.Ordinal);
    }

    private IReadOnlyDictionary<int, string> ReadInterrupts()
    {
        var result = new Dictionary<int, string>();
        var text = fs.Read("proc/interrupts");
        if (!text.Ok) return result;
        foreach (var line in text.Text!.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon < 0 || !int.TryParse(line[..colon].Trim(), out var irq)) continue;
            var tokens = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length > 0) result[irq] = tokens[^1];
        }
        return result;
    }

    [GeneratedRegex(@"^node(\d+)$")] private static partial Regex NodeDir();
    [GeneratedRegex(@"^hugepages-(\d+)kB$")] private static partial Regex PoolDir();
    [GeneratedRegex(@"MemTotal:\s+(\d+) kB")] private static partial Regex MemTotal();
    [GeneratedRegex(@"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")] private static partial Regex PciAddress();
    [GeneratedRegex(@"^virtio\d+$")] private static partial Regex VirtioDev();
}
