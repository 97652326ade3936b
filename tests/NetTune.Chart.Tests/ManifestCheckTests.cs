using NetTune.Chart.Tests.Support;

namespace NetTune.Chart.Tests;

/// <summary>The typed check the render tests rely on refuses what the API server would drop or refuse.</summary>
public sealed class ManifestCheckTests
{
    [Theory]
    [InlineData("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  clusterIp: None\n", "clusterIp")]
    [InlineData("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers: [{name: c, image: i, resource: {limits: {cpu: \"1\"}}}]\n", "resource")]
    [InlineData("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, lables: {x: y}}\n", "lables")]
    [InlineData("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m}\nspec:\n  selector: {}\n  endpoints: [{port: metrics, scrape_interval: 5s}]\n", "scrape_interval")]
    public void RefusesFieldsTheTypedModelDoesNotHave(string yaml, string field)
    {
        var e = Assert.Throws<FormatException>(() => Manifests.Parse(yaml));
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void RefusesKindsItDoesNotKnow()
    {
        var e = Assert.Throws<FormatException>(() => Manifests.Parse("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\n"));
        Assert.Contains("CronJob", e.Message);
    }

    [Fact]
    public void KeepsQuotedNumbersApartFromNumbers()
    {
        // A ConfigMap value must be a string: a bare number is not one.
        Assert.Throws<FormatException>(() => Manifests.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  port: 8080\n"));
        var parsed = Assert.Single(Manifests.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  port: \"8080\"\n"));
        Assert.Equal("8080", parsed.As<k8s.Models.V1ConfigMap>().Data["port"]);
    }
}
