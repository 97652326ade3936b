using NetTune.Agent.Core.Host;

namespace NetTune.Agent;

/// <summary>Prints ethtool netlink notifications; shows (and lets tests check) what the agent's drift listener hears.</summary>
public static class MonitorCommand
{
    public static int Run(int count, TimeSpan timeout)
    {
        using var listener = EthtoolNotifications.TrySubscribe(out var error);
        if (listener is null)
        {
            Console.Error.WriteLine(error);
            return 2;
        }
        var netns = new FileInfo("/proc/self/ns/net").LinkTarget;
        Console.WriteLine($"{{\"subscribed\":true,\"family\":{listener.FamilyId},\"netns\":\"{netns}\"}}");
        Console.Out.Flush();
        using var cts = new CancellationTokenSource(timeout);
        var seen = 0;
        listener.Run((command, ifName) =>
        {
            Console.WriteLine($"{{\"command\":{command},\"ifName\":\"{ifName}\"}}");
            Console.Out.Flush();
            if (++seen >= count) cts.Cancel();
        }, cts.Token);
        return seen >= count ? 0 : 1;
    }
}
