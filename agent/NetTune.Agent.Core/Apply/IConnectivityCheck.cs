namespace NetTune.Agent.Core.Apply;

/// <summary>Whether the node still reaches what it must reach (the API server) after its NICs changed.</summary>
public interface IConnectivityCheck
{
    /// <summary>Tries until it succeeds or <paramref name="bound"/> passes; the detail names the endpoint and the last error.</summary>
    (bool Reachable, string Detail) WaitUntilReachable(TimeSpan bound);
}
