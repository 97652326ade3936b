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

    /// <summary>The procfs path of a sysctl, relative to the host root: net.core.somaxconn → proc/sys/net/core/somaxconn.</summary>
    public static string ProcPath(string key) => "proc/sys/" + key.Replace('.', '/');
}
