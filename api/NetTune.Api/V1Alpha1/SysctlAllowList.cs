namespace NetTune.Api.V1Alpha1;

/// <summary>
/// The sysctls a NetworkTuning may set: the network and VM keys of the design notes' tuning script (section 8.3)
/// plus the busy-polling and flow-steering keys the other knobs rely on. Anything else is refused, so a tuning object
/// cannot become a general root-on-the-node tool.
/// </summary>
public static class SysctlAllowList
{
    public static readonly IReadOnlyList<string> Keys =
    [
        "net.core.somaxconn",
        "net.core.netdev_max_backlog",
        "net.core.netdev_budget",
        "net.core.rmem_max",
        "net.core.wmem_max",
        "net.core.rmem_default",
        "net.core.wmem_default",
        "net.core.busy_poll",
        "net.core.busy_read",
        "net.core.rps_sock_flow_entries",
        "net.core.default_qdisc",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.tcp_fastopen",
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_max_tw_buckets",
        "net.ipv4.tcp_congestion_control",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
        "net.ipv4.ip_local_port_range",
        "vm.swappiness",
        "vm.max_map_count",
        "vm.min_free_kbytes",
        "vm.dirty_ratio",
        "vm.dirty_background_ratio",
        "vm.zone_reclaim_mode",
    ];

    // Kept as literals because attribute arguments must be constants; a unit test checks they match Keys.
    public const string KeysText =
        "net.core.somaxconn, net.core.netdev_max_backlog, net.core.netdev_budget, net.core.rmem_max, net.core.wmem_max, " +
        "net.core.rmem_default, net.core.wmem_default, net.core.busy_poll, net.core.busy_read, net.core.rps_sock_flow_entries, " +
        "net.core.default_qdisc, net.ipv4.tcp_rmem, net.ipv4.tcp_wmem, net.ipv4.tcp_max_syn_backlog, net.ipv4.tcp_fastopen, " +
        "net.ipv4.tcp_tw_reuse, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_time, net.ipv4.tcp_max_tw_buckets, " +
        "net.ipv4.tcp_congestion_control, net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat, " +
        "net.ipv4.ip_local_port_range, vm.swappiness, vm.max_map_count, vm.min_free_kbytes, vm.dirty_ratio, " +
        "vm.dirty_background_ratio, vm.zone_reclaim_mode";

    public const string CelRule =
        "self.all(k, k in ['net.core.somaxconn', 'net.core.netdev_max_backlog', 'net.core.netdev_budget', 'net.core.rmem_max', " +
        "'net.core.wmem_max', 'net.core.rmem_default', 'net.core.wmem_default', 'net.core.busy_poll', 'net.core.busy_read', " +
        "'net.core.rps_sock_flow_entries', 'net.core.default_qdisc', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem', " +
        "'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.tcp_fastopen', 'net.ipv4.tcp_tw_reuse', 'net.ipv4.tcp_fin_timeout', " +
        "'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_max_tw_buckets', 'net.ipv4.tcp_congestion_control', " +
        "'net.ipv4.tcp_slow_start_after_idle', 'net.ipv4.tcp_notsent_lowat', 'net.ipv4.ip_local_port_range', 'vm.swappiness', " +
        "'vm.max_map_count', 'vm.min_free_kbytes', 'vm.dirty_ratio', 'vm.dirty_background_ratio', 'vm.zone_reclaim_mode'])";

    public const string CelMessage = "sysctls may only set keys of the allow-list";

    private static readonly HashSet<string> KeySet = new(Keys, StringComparer.Ordinal);

    public static bool IsAllowed(string key) => KeySet.Contains(key);

    /// <summary>
    /// What each allowed key accepts. The bounds are the values no tuning needs to leave: below them a server cannot
    /// queue connections or buffer a packet, above them memory or ports run out for everything else on the node.
    /// <see cref="SysctlRule.PerNetNamespace"/> is measured on kernel 6.18 (a fresh network namespace lists exactly those).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, SysctlRule> Rules = new Dictionary<string, SysctlRule>(StringComparer.Ordinal)
    {
        ["net.core.somaxconn"] = SysctlRule.Integer(128, 1048576, perNetns: true),
        ["net.core.netdev_max_backlog"] = SysctlRule.Integer(300, 1048576),
        ["net.core.netdev_budget"] = SysctlRule.Integer(50, 10000),
        ["net.core.rmem_max"] = SysctlRule.Integer(4096, 1073741824, perNetns: true),
        ["net.core.wmem_max"] = SysctlRule.Integer(4096, 1073741824, perNetns: true),
        ["net.core.rmem_default"] = SysctlRule.Integer(4096, 67108864, perNetns: true),
        ["net.core.wmem_default"] = SysctlRule.Integer(4096, 67108864, perNetns: true),
        ["net.core.busy_poll"] = SysctlRule.Integer(0, 1000),
        ["net.core.busy_read"] = SysctlRule.Integer(0, 1000),
        ["net.core.rps_sock_flow_entries"] = SysctlRule.Integer(0, 1048576),
        // The kernel lists no available qdiscs; these are the ones a default qdisc can be (noqueue and mq cannot).
        ["net.core.default_qdisc"] = SysctlRule.OneOf(["pfifo_fast", "fq", "fq_codel", "fq_pie", "cake", "sfq", "pie", "pfifo", "bfifo", "codel"]),
        ["net.ipv4.tcp_rmem"] = SysctlRule.Triplet(4096, 1073741824, perNetns: true),
        ["net.ipv4.tcp_wmem"] = SysctlRule.Triplet(4096, 1073741824, perNetns: true),
        ["net.ipv4.tcp_max_syn_backlog"] = SysctlRule.Integer(128, 1048576, perNetns: true),
        // Bits 0x1 client, 0x2 server, 0x4 client without cookie, 0x200 server without cookie, 0x400 server for every listener.
        ["net.ipv4.tcp_fastopen"] = SysctlRule.Flags(0x607, perNetns: true),
        ["net.ipv4.tcp_tw_reuse"] = SysctlRule.OneOf(["0", "1", "2"], perNetns: true),
        ["net.ipv4.tcp_fin_timeout"] = SysctlRule.Integer(5, 600, perNetns: true),
        ["net.ipv4.tcp_keepalive_time"] = SysctlRule.Integer(30, 32767, perNetns: true),
        ["net.ipv4.tcp_max_tw_buckets"] = SysctlRule.Integer(1024, 16777216, perNetns: true),
        // The agent also checks the name against the kernel's net.ipv4.tcp_available_congestion_control.
        ["net.ipv4.tcp_congestion_control"] = SysctlRule.Name(perNetns: true),
        ["net.ipv4.tcp_slow_start_after_idle"] = SysctlRule.OneOf(["0", "1"], perNetns: true),
        ["net.ipv4.tcp_notsent_lowat"] = SysctlRule.Integer(4096, 4294967295, perNetns: true),
        ["net.ipv4.ip_local_port_range"] = SysctlRule.PortRange(perNetns: true),
        ["vm.swappiness"] = SysctlRule.Integer(0, 200),
        ["vm.max_map_count"] = SysctlRule.Integer(65530, 2147483647),
        // The agent also caps it at 5% of the node's memory: the kernel keeps that much free, so more starves everything.
        ["vm.min_free_kbytes"] = SysctlRule.Integer(1024, 16777216),
        ["vm.dirty_ratio"] = SysctlRule.Integer(5, 90),
        ["vm.dirty_background_ratio"] = SysctlRule.Integer(1, 80),
        ["vm.zone_reclaim_mode"] = SysctlRule.Flags(0x7),
    };

    /// <summary>Why <paramref name="value"/> is refused for <paramref name="key"/>, or null when it is accepted.</summary>
    public static string? Check(string key, string value) =>
        Rules.TryGetValue(key, out var rule) ? rule.Check(value) : $"{key} is not in the sysctl allow-list";

    /// <summary>Sysctls that live in each network namespace: a pod with its own namespace gets the kernel's defaults for them.</summary>
    public static bool IsPerNetNamespace(string key) => Rules.TryGetValue(key, out var r) && r.PerNetNamespace;

    /// <summary>The procfs path of a sysctl, relative to the host root: net.core.somaxconn → proc/sys/net/core/somaxconn.</summary>
    public static string ProcPath(string key) => "proc/sys/" + key.Replace('.', '/');
}

public enum SysctlValueKind { Integer, Triplet, PortRange, OneOf, Flags, Name }

/// <summary>The type and safe values of one sysctl; <see cref="Check"/> says why a value is refused.</summary>
public sealed record SysctlRule(SysctlValueKind Kind, long Min, long Max, IReadOnlyList<string>? Values, bool PerNetNamespace)
{
    public static SysctlRule Integer(long min, long max, bool perNetns = false) => new(SysctlValueKind.Integer, min, max, null, perNetns);
    /// <summary>min default max (tcp_rmem, tcp_wmem): each within [min, max] and in ascending order.</summary>
    public static SysctlRule Triplet(long min, long max, bool perNetns = false) => new(SysctlValueKind.Triplet, min, max, null, perNetns);
    public static SysctlRule PortRange(bool perNetns = false) => new(SysctlValueKind.PortRange, 1024, 65535, null, perNetns);
    public static SysctlRule OneOf(IReadOnlyList<string> values, bool perNetns = false) => new(SysctlValueKind.OneOf, 0, 0, values, perNetns);
    /// <summary>An integer made of the bits of <paramref name="mask"/> only.</summary>
    public static SysctlRule Flags(long mask, bool perNetns = false) => new(SysctlValueKind.Flags, 0, mask, null, perNetns);
    public static SysctlRule Name(bool perNetns = false) => new(SysctlValueKind.Name, 1, 15, null, perNetns);

    /// <summary>Fewest ports a port range must keep, so outgoing connections do not run out of source ports.</summary>
    public const int MinPorts = 1024;

    public string? Check(string value)
    {
        var fields = value.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        switch (Kind)
        {
            case SysctlValueKind.Integer:
                if (fields.Length != 1 || !TryInteger(fields[0], out var n)) return $"'{value}' is not an integer";
                return n < Min || n > Max ? $"{n} is outside the safe range [{Min}, {Max}]" : null;
            case SysctlValueKind.Flags:
                if (fields.Length != 1 || !TryInteger(fields[0], out var f) || f < 0) return $"'{value}' is not a non-negative integer";
                return (f & ~Max) != 0 ? $"{f} sets bits outside the known flags 0x{Max:x}" : null;
            case SysctlValueKind.Triplet:
            {
                if (fields.Length != 3 || !TryInteger(fields[0], out var a) || !TryInteger(fields[1], out var b) || !TryInteger(fields[2], out var c))
                    return $"'{value}' is not three integers (min default max)";
                if (a < Min || c > Max) return $"'{value}' leaves the safe range [{Min}, {Max}]";
                return a <= b && b <= c ? null : $"'{value}' must be ascending: min <= default <= max";
            }
            case SysctlValueKind.PortRange:
            {
                if (fields.Length != 2 || !TryInteger(fields[0], out var lo) || !TryInteger(fields[1], out var hi)) return $"'{value}' is not two port numbers (first last)";
                if (lo < Min || hi > Max) return $"'{value}' leaves [{Min}, {Max}] (ports below {Min} belong to system services)";
                return hi - lo + 1 < MinPorts ? $"'{value}' keeps {Math.Max(0, hi - lo + 1)} ports, fewer than {MinPorts}" : null;
            }
            case SysctlValueKind.OneOf:
                return fields.Length == 1 && Values!.Contains(fields[0], StringComparer.Ordinal) ? null : $"'{value}' is not one of {string.Join(", ", Values!)}";
            default:
                return fields.Length == 1 && fields[0].Length <= Max && fields[0].All(ch => ch is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' or '-')
                    ? null : $"'{value}' is not a name such as cubic or bbr";
        }
    }

    private static bool TryInteger(string s, out long n) =>
        long.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out n);
}
