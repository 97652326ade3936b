using NetTune.Api.Validation;

namespace NetTune.Api.Tests;

public class CelRuleTests
{
    [Fact]
    public void EveryCelRuleIdHasItsCSharpTwinAndNoTwinIsOrphaned()
    {
        var ids = ApiTypes.CelRules().Select(r => r.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(NetworkTuningValidator.RuleIds.Order(StringComparer.Ordinal), ids.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void EveryRuleHasAnExpressionAndAMessage()
    {
        foreach (var rule in ApiTypes.CelRules())
        {
            Assert.False(string.IsNullOrWhiteSpace(rule.Rule), rule.Id);
            Assert.False(string.IsNullOrWhiteSpace(rule.Message), rule.Id);
            Assert.Matches("^[a-z]+(-[a-z]+)*$", rule.Id);
        }
    }
}
