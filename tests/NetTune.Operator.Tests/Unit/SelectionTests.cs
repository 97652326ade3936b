using k8s.Models;
using NetTune.Operator.Core.Selection;
using Xunit;

namespace NetTune.Operator.Tests.Unit;

public sealed class SelectionTests
{
    private static readonly Dictionary<string, string> Labels = new() { ["zone"] = "a", ["role"] = "edge" };

    private static V1LabelSelector Expr(string key, string op, params string[] values) =>
        new() { MatchExpressions = [new V1LabelSelectorRequirement { Key = key, OperatorProperty = op, Values = values.Length == 0 ? null : values }] };

    [Fact]
    public void NullAndEmptySelectorsSelectEveryNode()
    {
        Assert.True(LabelSelectorMatcher.Matches(null, Labels));
        Assert.True(LabelSelectorMatcher.Matches(new V1LabelSelector(), null));
    }

    [Fact]
    public void MatchLabelsNeedsEveryPair()
    {
        Assert.True(LabelSelectorMatcher.Matches(new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["zone"] = "a" } }, Labels));
        Assert.False(LabelSelectorMatcher.Matches(new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["zone"] = "a", ["role"] = "core" } }, Labels));
    }

    [Theory]
    [InlineData("zone", "In", true, "a", "b")]
    [InlineData("zone", "In", false, "b", "c")]
    [InlineData("zone", "NotIn", false, "a")]
    [InlineData("missing", "NotIn", true, "a")]
    [InlineData("role", "Exists", true)]
    [InlineData("missing", "Exists", false)]
    [InlineData("missing", "DoesNotExist", true)]
    [InlineData("zone", "DoesNotExist", false)]
    [InlineData("zone", "Near", false, "a")]
    public void SetBasedOperators(string key, string op, bool expected, params string[] values) =>
        Assert.Equal(expected, LabelSelectorMatcher.Matches(Expr(key, op, values), Labels));

    [Fact]
    public void ValidateNamesBadOperatorsAndValueCounts()
    {
        Assert.Empty(LabelSelectorMatcher.Validate(Expr("zone", "In", "a"), "spec.nodeSelector"));
        Assert.Contains("needs at least one value", Assert.Single(LabelSelectorMatcher.Validate(Expr("zone", "In"), "spec.nodeSelector")));
        Assert.Contains("takes no values", Assert.Single(LabelSelectorMatcher.Validate(Expr("zone", "Exists", "x"), "s")));
        Assert.Contains("'Near'", Assert.Single(LabelSelectorMatcher.Validate(Expr("zone", "Near", "x"), "s")));
    }

    [Fact]
    public void NodeSelectorTermCarriesLabelsAndExpressions()
    {
        var selector = Expr("role", "NotIn", "core");
        selector.MatchLabels = new Dictionary<string, string> { ["zone"] = "a" };
        var term = LabelSelectorMatcher.ToNodeSelectorTerm(selector)!;
        Assert.Collection(term.MatchExpressions,
            e => { Assert.Equal("zone", e.Key); Assert.Equal("In", e.OperatorProperty); Assert.Equal(["a"], e.Values); },
            e => { Assert.Equal("role", e.Key); Assert.Equal("NotIn", e.OperatorProperty); Assert.Equal(["core"], e.Values); });
        Assert.Null(LabelSelectorMatcher.ToNodeSelectorTerm(new V1LabelSelector()));
    }
}
