using NetTune.Operator;
using Xunit;

namespace NetTune.Operator.Tests.Unit;

public sealed class CountingHandlerTests
{
    [Theory]
    [InlineData("/api/v1/nodes", "nodes")]
    [InlineData("/api/v1/nodes/node-1", "nodes")]
    [InlineData("/api/v1/namespaces/nettune-system/pods", "pods")]
    [InlineData("/api/v1/namespaces/nettune-system/pods/dp-1", "pods")]
    [InlineData("/api/v1/namespaces/default/events", "events")]
    [InlineData("/api/v1/namespaces/nettune-system", "namespaces")]
    [InlineData("/apis/nettune.io/v1alpha1/networktuningnodestates", "networktuningnodestates")]
    [InlineData("/apis/nettune.io/v1alpha1/networktunings/t/status", "networktunings/status")]
    [InlineData("/apis/apps/v1/namespaces/nettune-system/daemonsets/nettune-agent", "daemonsets")]
    [InlineData("/version", "other")]
    [InlineData("/apis/nettune.io/v1alpha1", "other")]
    public void TheResourceOfAPathIsItsPluralWithTheSubresource(string path, string resource) =>
        Assert.Equal(resource, CountingHandler.ResourceOf(path));
}
