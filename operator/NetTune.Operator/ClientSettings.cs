using k8s;

namespace NetTune.Operator;

public static class ClientSettings
{
    /// <summary>
    /// HTTP/2 keep-alive pings on the client's connections. All requests share one HTTP/2 connection; if it goes
    /// silent without closing (a hung server, a dropped NAT entry), nothing else would notice, and every new watch
    /// and write would queue on the dead connection. A missed ping closes it, so the next request opens a new one.
    /// </summary>
    public static KubernetesClientConfiguration WithKeepAlivePings(this KubernetesClientConfiguration config, TimeSpan delay, TimeSpan timeout)
    {
        var previous = config.FirstMessageHandlerSetup;
        config.FirstMessageHandlerSetup = handler =>
        {
            previous?.Invoke(handler);
            handler.KeepAlivePingDelay = delay;
            handler.KeepAlivePingTimeout = timeout;
            handler.KeepAlivePingPolicy = System.Net.Http.HttpKeepAlivePingPolicy.WithActiveRequests;
        };
        return config;
    }
}
