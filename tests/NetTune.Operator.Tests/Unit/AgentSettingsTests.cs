using NetTune.Operator.Core.Builders;
using Xunit;
using static NetTune.Operator.Tests.Unit.Fixtures;

namespace NetTune.Operator.Tests.Unit;

public sealed class AgentSettingsTests
{
    [Fact]
    public void TheDaemonSetCarriesTheAgentSettings()
    {
        Assert.True(AgentSettingsParser.TryParseResources("""{"requests":{"cpu":"50m","memory":"96Mi"},"limits":{"memory":"128Mi"}}""", out var resources, out _));
        Assert.True(AgentSettingsParser.TryParseTolerations("""[{"key":"dedicated","operator":"Equal","value":"net","effect":"NoSchedule"}]""", out var tolerations, out _));
        Assert.True(AgentSettingsParser.TryParseNodeSelector("""{"kubernetes.io/os":"linux"}""", out var selector, out _));
        var options = new AgentOptions("nettune-system", "nettune/agent:1", MetricsPort: 9200)
        {
            LogLevel = "Debug", Resources = resources, Tolerations = tolerations, NodeSelector = selector,
        };

        var ds = AgentDaemonSetBuilder.Build(options);
        var pod = ds.Spec.Template.Spec;
        var c = pod.Containers.Single();
        var args = c.Args.ToList();
        Assert.Equal("9200", args[args.IndexOf("--metrics-port") + 1]);
        Assert.Equal("Debug", args[args.IndexOf("--log-level") + 1]);
        Assert.Equal(9200, c.Ports.Single(p => p.Name == "metrics").ContainerPort);
        Assert.Equal("9200", c.LivenessProbe.HttpGet.Port.Value);
        Assert.Equal("50m", c.Resources.Requests["cpu"].ToString());
        Assert.Equal("128Mi", c.Resources.Limits["memory"].ToString());
        Assert.False(c.Resources.Limits.ContainsKey("cpu"));
        var toleration = Assert.Single(pod.Tolerations);
        Assert.Equal(("dedicated", "Equal", "net", "NoSchedule"), (toleration.Key, toleration.OperatorProperty, toleration.Value, toleration.Effect));
        Assert.Equal("linux", pod.NodeSelector["kubernetes.io/os"]);
        // The operator's agent label still decides, ANDed with the node selector.
        Assert.Equal("true", pod.NodeSelector[Names.AgentNodeLabel]);

        // A changed setting changes the spec hash, so the operator replaces the DaemonSet.
        var plain = AgentDaemonSetBuilder.Build(new AgentOptions("nettune-system", "nettune/agent:1"));
        Assert.NotEqual(plain.Metadata.Annotations[Names.SpecHashAnnotation], ds.Metadata.Annotations[Names.SpecHashAnnotation]);
        Assert.DoesNotContain("--log-level", plain.Spec.Template.Spec.Containers[0].Args);
        Assert.Equal([Names.AgentNodeLabel], plain.Spec.Template.Spec.NodeSelector.Keys);
        Assert.Equal("Exists", Assert.Single(plain.Spec.Template.Spec.Tolerations).OperatorProperty);
    }

    [Fact]
    public void AKubeletRestartReachesTheAgentAsAFlag_ACommandAlsoGetsTheHostPidNamespace()
    {
        var plain = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "agent:1")).Spec.Template.Spec;
        Assert.DoesNotContain(plain.Containers[0].Args, a => a.StartsWith("--kubelet-restart", StringComparison.Ordinal));
        Assert.Null(plain.HostPID);

        Assert.True(KubeletRestart.TryParse("request-file", out var file, out _));
        var byFile = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "agent:1") { KubeletRestart = file }).Spec.Template.Spec;
        var args = byFile.Containers[0].Args.ToList();
        Assert.Equal("/var/lib/nettune/kubelet-restart-request", args[args.IndexOf("--kubelet-restart-request-file") + 1]);
        // The file lies in the journal folder, which is the same path on the host.
        Assert.Equal("/var/lib/nettune", byFile.Volumes.Single(v => v.Name == "journal").HostPath.Path);
        Assert.Null(byFile.HostPID);

        Assert.True(KubeletRestart.TryParse("command:nsenter --target 1 --mount -- systemctl restart kubelet", out var command, out _));
        var byCommand = AgentDaemonSetBuilder.Build(new AgentOptions("ns", "agent:1") { KubeletRestart = command }).Spec.Template.Spec;
        args = byCommand.Containers[0].Args.ToList();
        Assert.Equal("nsenter --target 1 --mount -- systemctl restart kubelet", args[args.IndexOf("--kubelet-restart-command") + 1]);
        Assert.True(byCommand.HostPID);
    }

    [Theory]
    [InlineData("restart")]
    [InlineData("command:")]
    [InlineData("command:   ")]
    public void ABadKubeletRestartIsRefusedWithTheForms(string text)
    {
        Assert.False(KubeletRestart.TryParse(text, out _, out var error));
        Assert.Contains("none, request-file or command:COMMAND", error);
    }

    [Theory]
    [InlineData("""{"requests":{"cpu":"lots"}}""", "requests.cpu")]
    [InlineData("""{"request":{"cpu":"1"}}""", "'request'")]
    [InlineData("""{"requests":{"memory":"512Mi"},"limits":{"memory":"256Mi"}}""", "above its limit")]
    [InlineData("""[1]""", "not a JSON object")]
    [InlineData("""{"requests":""", "not JSON")]
    public void BadResourcesAreRefusedWithTheReason(string json, string reason)
    {
        Assert.False(AgentSettingsParser.TryParseResources(json, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("""[{"operator":"Matches"}]""", "neither Exists nor Equal")]
    [InlineData("""[{"operator":"Exists","effect":"Sometimes"}]""", "effect 'Sometimes'")]
    [InlineData("""[{"key":"a","operator":"Exists","value":"x"}]""", "Exists and a value")]
    [InlineData("""[{"operator":"Equal","value":"x"}]""", "needs a key")]
    [InlineData("""{"operator":"Exists"}""", "not a JSON list")]
    public void BadTolerationsAreRefusedWithTheReason(string json, string reason)
    {
        Assert.False(AgentSettingsParser.TryParseTolerations(json, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void NodeSelectorsAndLogLevelsAreChecked()
    {
        Assert.False(AgentSettingsParser.TryParseNodeSelector("""{"zone":1}""", out _, out var error));
        Assert.Contains("'zone'", error);
        Assert.True(AgentSettingsParser.TryParseLogLevel("warning", out var level, out _));
        Assert.Equal("Warning", level);
        Assert.False(AgentSettingsParser.TryParseLogLevel("Verbose", out _, out error));
        Assert.Contains("Trace, Debug, Information, Warning, Error, Critical", error);
    }
}
