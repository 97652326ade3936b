using System.Text.RegularExpressions;
using NetTune.Api.V1Alpha1;

namespace NetTune.Api.Tests;

public class SysctlAllowListTests
{
    [Fact]
    public void KeysTextListsTheKeysInOrder() =>
        Assert.Equal(SysctlAllowList.KeysText, string.Join(", ", SysctlAllowList.Keys));

    [Fact]
    public void CelRuleAllowsExactlyTheKeys()
    {
        var quoted = Regex.Matches(SysctlAllowList.CelRule, "'([^']*)'").Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(SysctlAllowList.Keys, quoted);
        Assert.StartsWith("self.all(k, k in [", SysctlAllowList.CelRule);
        Assert.EndsWith("])", SysctlAllowList.CelRule);
    }

    [Fact]
    public void KeysAreDistinctNetOrVmSysctlNames()
    {
        Assert.Equal(SysctlAllowList.Keys.Count, SysctlAllowList.Keys.Distinct().Count());
        Assert.All(SysctlAllowList.Keys, k => Assert.Matches(@"^(net|vm)\.[a-z0-9_.]+$", k));
    }

    [Theory]
    [InlineData("net.core.somaxconn", true)]
    [InlineData("net.ipv4.tcp_rmem", true)]
    [InlineData("vm.swappiness", true)]
    [InlineData("kernel.core_pattern", false)]
    [InlineData("net.core.somaxconn ", false)]
    [InlineData("NET.CORE.SOMAXCONN", false)]
    [InlineData("", false)]
    public void IsAllowedIsExactAndCaseSensitive(string key, bool allowed) => Assert.Equal(allowed, SysctlAllowList.IsAllowed(key));

    [Theory]
    [InlineData("net.core.somaxconn", "proc/sys/net/core/somaxconn")]
    [InlineData("net.ipv4.tcp_max_syn_backlog", "proc/sys/net/ipv4/tcp_max_syn_backlog")]
    [InlineData("vm.zone_reclaim_mode", "proc/sys/vm/zone_reclaim_mode")]
    public void ProcPathMapsDotsToFolders(string key, string path) => Assert.Equal(path, SysctlAllowList.ProcPath(key));

    [Fact]
    public void TheDesignNotesCoreKeysAreAllowed()
    {
        string[] tuningScript =
        [
            "net.core.somaxconn", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.rmem_max", "net.core.wmem_max",
            "net.core.netdev_max_backlog", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_fastopen", "net.core.busy_poll",
            "net.core.busy_read", "net.core.rps_sock_flow_entries",
        ];
        Assert.All(tuningScript, k => Assert.True(SysctlAllowList.IsAllowed(k), k));
    }
}
