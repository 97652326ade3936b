using System.Text.Json;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>
/// The agent against the real kernel, inside a throwaway network namespace holding a veth pair with 8 rx and 8 tx
/// queues. The agent runs as a child under `ip netns exec`, which gives it the namespace's own /sys and
/// /proc/sys/net; nothing outside the namespace is touched, and the namespace is deleted whatever happens.
/// </summary>
public sealed class NetnsKernelTests
{
    private const string SpecJson = """
        {"nodeName":"netns","nic":{"interfaces":{"names":["nta"]},"channels":{"rx":4,"tx":4},
         "rps":{"enabled":true},"xps":{"enabled":true}},
         "sysctls":{"net.core.somaxconn":"8191","net.ipv4.tcp_fastopen":"3"}}
        """;

    [RootFact]
    public void Veth_ChannelsRpsXpsAndNamespaceSysctls_ApplyReadBackSurviveAChannelChange_AndRevertExactly()
    {
        var ns = $"ntagent-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        var work = Directory.CreateTempSubdirectory("nettune-agent-netns-").FullName;
        var hostSomaxconn = File.ReadAllText("/proc/sys/net/core/somaxconn");
        try
        {
            Proc.Check("ip", "netns", "add", ns);
            Proc.Check("ip", "-n", ns, "link", "add", "nta", "numrxqueues", "8", "numtxqueues", "8", "type", "veth", "peer", "name", "ntb", "numrxqueues", "8", "numtxqueues", "8");
            Proc.Check("ip", "-n", ns, "link", "set", "nta", "up");
            Proc.Check("ip", "-n", ns, "link", "set", "ntb", "up");
            // Someone's own RPS setting on a queue the spec's channel change removes: revert must bring it back.
            InNs(ns, "echo 2 > /sys/class/net/nta/queues/rx-6/rps_cpus");
            var before = QueueFiles(ns);
            var beforeSysctls = InNs(ns, "cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_fastopen");
            var spec = Path.Join(work, "spec.json");
            File.WriteAllText(spec, SpecJson);

            // --net-namespace own: the namespace's sysctls are the point here, not the host's.
            var applied = Agent(ns, "once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"), "--net-namespace", "own");
            Assert.Equal("Applied", applied.GetProperty("kind").GetString());
            Assert.Equal("rx=4,tx=4,other=0,combined=0", Knob(applied, "nic/nta/channels").GetProperty("value").GetString());
            Assert.Equal("rx-0 rx-1 rx-2 rx-3 tx-0 tx-1 tx-2 tx-3", InNs(ns, "echo $(ls /sys/class/net/nta/queues)").Trim());
            Assert.Equal("3", InNs(ns, "cat /sys/class/net/nta/queues/rx-3/rps_cpus").Trim());
            // veth has no interrupts: tx queue i goes round-robin over the local CPUs.
            Assert.Equal("2", InNs(ns, "cat /sys/class/net/nta/queues/tx-1/xps_cpus").Trim());
            Assert.Equal("8191\n3\n", InNs(ns, "cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_fastopen"));
            Assert.Equal(hostSomaxconn, File.ReadAllText("/proc/sys/net/core/somaxconn"));
            var ntb = InNs(ns, "cat /sys/class/net/ntb/queues/rx-0/rps_cpus").Trim();
            Assert.Equal("0", ntb);

            // Someone else changes the channels back to 8 (with their own journal): queue settings are gone...
            var other = Path.Join(work, "other.json");
            File.WriteAllText(other, """{"nodeName":"netns","nic":{"interfaces":{"names":["nta"]},"channels":{"rx":8,"tx":8}}}""");
            Assert.Equal("Applied", Agent(ns, "once", "--spec", other, "--journal-dir", Path.Join(work, "other-journal")).GetProperty("kind").GetString());
            Assert.Equal("0", InNs(ns, "cat /sys/class/net/nta/queues/rx-5/rps_cpus").Trim());
            // ...and the next apply puts channels and the queue settings back.
            var reapplied = Agent(ns, "once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"), "--net-namespace", "own");
            Assert.Equal("Applied", reapplied.GetProperty("kind").GetString());
            Assert.Equal("rx-0 rx-1 rx-2 rx-3 tx-0 tx-1 tx-2 tx-3", InNs(ns, "echo $(ls /sys/class/net/nta/queues)").Trim());
            Assert.Equal("3", InNs(ns, "cat /sys/class/net/nta/queues/rx-2/rps_cpus").Trim());

            var reverted = Agent(ns, "once", "--revert", "--journal-dir", Path.Join(work, "journal"));
            Assert.Equal("Reverted", reverted.GetProperty("kind").GetString());
            Assert.Equal(before, QueueFiles(ns));
            Assert.Equal(beforeSysctls, InNs(ns, "cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_fastopen"));
            Assert.False(File.Exists(Path.Join(work, "journal", "journal.json")));
        }
        finally
        {
            Proc.Run("ip", "netns", "del", ns);
            Directory.Delete(work, recursive: true);
        }
        Assert.DoesNotContain(ns, Proc.Check("ip", "netns", "list"));
    }

    [RootFact]
    public void NetSysctls_FromAnAgentInAnotherNamespace_AreRefused_AndTheNamespaceKeepsItsValues()
    {
        var ns = $"ntagent-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        var work = Directory.CreateTempSubdirectory("nettune-agent-netns-").FullName;
        try
        {
            Proc.Check("ip", "netns", "add", ns);
            var before = InNs(ns, "cat /proc/sys/net/core/somaxconn");
            var spec = Path.Join(work, "spec.json");
            File.WriteAllText(spec, """{"nodeName":"netns","sysctls":{"net.core.somaxconn":"8191"}}""");
            var (code, stdout, stderr) = Proc.Run("ip", ["netns", "exec", ns, .. AgentBinary.Command("once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"))]);
            Assert.True(code == 1, $"agent exited {code}: {stderr}{stdout}");
            var report = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal("Failed", report.GetProperty("kind").GetString());
            var knob = Knob(report, "sysctl/net.core.somaxconn");
            Assert.Equal("Failed", knob.GetProperty("result").GetString());
            // Where pid 1's namespace link is readable the message names both namespaces; in a sandbox it compares their views.
            Assert.Matches("is not the host's|other interfaces or routes than the host's init process", knob.GetProperty("message").GetString());
            Assert.Equal(before, InNs(ns, "cat /proc/sys/net/core/somaxconn"));
        }
        finally
        {
            Proc.Run("ip", "netns", "del", ns);
            Directory.Delete(work, recursive: true);
        }
    }

    [RootFact]
    public void PerNamespaceSysctls_AreExactlyThoseAFreshNamespaceHas()
    {
        var ns = $"ntagent-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        try
        {
            Proc.Check("ip", "netns", "add", ns);
            var net = SysctlAllowList.Keys.Where(k => k.StartsWith("net.", StringComparison.Ordinal)).ToArray();
            // The kernel registers global net sysctls in the initial namespace only: a fresh one lacks their files.
            var present = InNs(ns, string.Join("; ", net.Select(k => $"test -e /proc/sys/{k.Replace('.', '/')} && echo {k}"))  + "; true")
                .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(net.Where(SysctlAllowList.IsPerNetNamespace).Order(StringComparer.Ordinal), present.Order(StringComparer.Ordinal));
            Assert.All(SysctlAllowList.Keys.Where(k => k.StartsWith("vm.", StringComparison.Ordinal)), k => Assert.False(SysctlAllowList.IsPerNetNamespace(k)));
        }
        finally
        {
            Proc.Run("ip", "netns", "del", ns);
        }
    }

    [RootFact]
    public async Task EthtoolNetlinkMonitor_HearsAChannelChange_InTheNamespace()
    {
        var ns = $"ntagent-{Environment.ProcessId}-{Random.Shared.Next(100000)}";
        var work = Directory.CreateTempSubdirectory("nettune-agent-netns-").FullName;
        var output = Path.Join(work, "monitor.out");
        System.Diagnostics.Process? monitor = null;
        try
        {
            Proc.Check("ip", "netns", "add", ns);
            Proc.Check("ip", "-n", ns, "link", "add", "nta", "numrxqueues", "4", "numtxqueues", "4", "type", "veth", "peer", "name", "ntb");
            // The monitor writes to a file: its lines are read back while it runs, without a pipe to the test host.
            monitor = System.Diagnostics.Process.Start("sh", ["-c", $"exec ip netns exec {ns} {string.Join(' ', AgentBinary.Command("monitor", "--count", "1", "--timeout-seconds", "60"))} >{output} 2>&1"])!;
            var subscribed = await WaitForLineAsync(output, "\"subscribed\":true", monitor);

            var spec = Path.Join(work, "spec.json");
            File.WriteAllText(spec, """{"nodeName":"netns","nic":{"interfaces":{"names":["nta"]},"channels":{"rx":2,"tx":2}}}""");
            var report = Agent(ns, "once", "--spec", spec, "--journal-dir", Path.Join(work, "journal"));
            Assert.Equal("Applied", report.GetProperty("kind").GetString());

            await monitor.WaitForExitAsync();
            var lines = File.ReadAllLines(output);
            Assert.True(monitor.ExitCode == 0, $"monitor ({subscribed}) exited {monitor.ExitCode}: {string.Join('\n', lines)}");
            Assert.Contains("""{"command":19,"ifName":"nta"}""", lines);
        }
        finally
        {
            if (monitor is { HasExited: false }) monitor.Kill(entireProcessTree: true);
            monitor?.Dispose();
            Proc.Run("ip", "netns", "del", ns);
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<string> WaitForLineAsync(string path, string text, System.Diagnostics.Process process)
    {
        for (var i = 0; i < 600; i++)
        {
            var line = File.Exists(path) ? File.ReadAllLines(path).FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) : null;
            if (line is not null) return line;
            if (process.HasExited) Assert.Fail($"the monitor exited {process.ExitCode}: {(File.Exists(path) ? File.ReadAllText(path) : "")}");
            await Task.Delay(100);
        }
        Assert.Fail($"no '{text}' from the monitor");
        return "";
    }

    internal static string InNs(string ns, string script) => Proc.Check("ip", "netns", "exec", ns, "sh", "-c", script);

    /// <summary>Every rps_cpus, rps_flow_cnt and xps_cpus of nta with its value.</summary>
    private static string QueueFiles(string ns) => InNs(ns,
        "cd /sys/class/net/nta/queues && for f in rx-*/rps_cpus rx-*/rps_flow_cnt tx-*/xps_cpus; do echo \"$f $(cat $f)\"; done");

    /// <summary>Runs the agent executable inside the namespace and returns its report, which must be a success.</summary>
    internal static JsonElement Agent(string ns, params string[] args)
    {
        var (code, stdout, stderr) = Proc.Run("ip", ["netns", "exec", ns, .. AgentBinary.Command(args)]);
        Assert.True(code is 0 or 1, $"agent exited {code}: {stderr}");
        var report = JsonDocument.Parse(stdout).RootElement;
        Assert.True(code == 0, $"agent reported {report.GetProperty("kind")}: {report.GetProperty("message")}\n{stdout}");
        return report;
    }

    private static JsonElement Knob(JsonElement report, string knob) =>
        report.GetProperty("knobs").EnumerateArray().Single(k => k.GetProperty("knob").GetString() == knob);
}
