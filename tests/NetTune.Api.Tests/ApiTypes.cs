using System.Reflection;
using NetTune.Api.Schema;

namespace NetTune.Api.Tests;

internal static class ApiTypes
{
    /// <summary>Every [CelRule] on a class or property of the API assembly.</summary>
    public static IReadOnlyList<CelRuleAttribute> CelRules()
    {
        var rules = new List<CelRuleAttribute>();
        foreach (var type in typeof(ApiGroup).Assembly.GetTypes())
        {
            rules.AddRange(type.GetCustomAttributes<CelRuleAttribute>());
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
                rules.AddRange(property.GetCustomAttributes<CelRuleAttribute>());
        }
        return rules;
    }
}
