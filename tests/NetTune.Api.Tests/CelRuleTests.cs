using NetTune.Api.Validation;

namespace NetTune.Api.Tests;

public class CelRuleTests
{
    [Fact]
    public void EveryCelRuleIdHasItsCSharpTwinAndNoTwinIsOrphaned()
    {
        // An id may sit on several places (NetworkTuning and NodeState share rules) but always names one rule.
        var rules = ApiTypes.CelRules().GroupBy(r => r.Id).ToList();
        Assert.All(rules, g => Assert.Single(g.Select(r => (r.Rule, r.Message)).Distinct()));
        Assert.Equal(NetworkTuningValidator.RuleIds.Order(StringComparer.Ordinal), rules.Select(g => g.Key).Order(StringComparer.Ordinal));
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
