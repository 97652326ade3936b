using k8s;
namespace NetTune.Agent.Core.Apply;

/// <summary>The node reaches the API server when GET /version answers, through the same client and route the agent uses.</summary>
public sealed class ApiServerReachability(IKubernetes client) : IConnectivityCheck
{
    private static readonly TimeSpan Attempt = TimeSpan.FromSeconds(5);

    public (bool Reachable, string Detail) WaitUntilReachable(TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        var last = "no attempt";
        while (true)
        {
            using var cts = new CancellationTokenSource(Attempt);
            try
            {
                var version = client.Version.GetCodeAsync(cts.Token).GetAwaiter().GetResult();
                return (true, $"{client.BaseUri} answered {version.GitVersion}");
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or k8s.Autorest.HttpOperationException or IOException)
            {
                last = e.Message;
            }
            if (DateTime.UtcNow >= deadline) return (false, $"{client.BaseUri}: {last}");
            Thread.Sleep(TimeSpan.FromSeconds(1));
        }
    }
}
