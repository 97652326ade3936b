using k8s.Models;

namespace NetTune.Operator.Core.Selection;

/// <summary>
/// Kubernetes label selector semantics: matchLabels and matchExpressions are ANDed; a null or empty selector selects
/// everything (the API documents that an empty nodeSelector selects every node).
/// </summary>
public static class LabelSelectorMatcher
{
    public static bool Matches(V1LabelSelector? selector, IDictionary<string, string>? labels)
    {
        if (selector is null) return true;
        labels ??= new Dictionary<string, string>();
        if (selector.MatchLabels is { } exact)
        {
            foreach (var (key, value) in exact)
                if (!labels.TryGetValue(key, out var actual) || actual != value) return false;
        }
        if (selector.MatchExpressions is { } expressions)
        {
            foreach (var e in expressions)
                if (!Matches(e, labels)) return false;
        }
        return true;
    }

    private static bool Matches(V1LabelSelectorRequirement requirement, IDictionary<string, string> labels)
    {
        var has = labels.TryGetValue(requirement.Key, out var actual);
        var values = requirement.Values ?? [];
        return requirement.OperatorProperty switch
        {
            "In" => has && values.Contains(actual!),
            "NotIn" => !has || !values.Contains(actual!),
            "Exists" => has,
            "DoesNotExist" => !has,
            // An operator we do not know selects nothing; Validate reports it.
            _ => false,
        };
    }

    /// <summary>The selector mistakes the API server does not catch for a custom resource (it has no schema for them).</summary>
    public static IReadOnlyList<string> Validate(V1LabelSelector? selector, string path)
    {
        var errors = new List<string>();
        if (selector?.MatchExpressions is not { } expressions) return errors;
        for (var i = 0; i < expressions.Count; i++)
        {
            var e = expressions[i];
            var at = $"{path}.matchExpressions[{i}]";
            if (string.IsNullOrEmpty(e.Key)) errors.Add($"{at}.key: must not be empty");
            switch (e.OperatorProperty)
            {
                case "In" or "NotIn":
                    if ((e.Values?.Count ?? 0) == 0) errors.Add($"{at}.values: operator {e.OperatorProperty} needs at least one value");
                    break;
                case "Exists" or "DoesNotExist":
                    if ((e.Values?.Count ?? 0) > 0) errors.Add($"{at}.values: operator {e.OperatorProperty} takes no values");
                    break;
                default:
                    errors.Add($"{at}.operator: '{e.OperatorProperty}' is not one of In, NotIn, Exists, DoesNotExist");
                    break;
            }
        }
        return errors;
    }

    /// <summary>
    /// The same selector as a node affinity term for a pod template. Returns null for a selector that selects every
    /// node: an empty NodeSelectorTerm would select none.
    /// </summary>
    public static V1NodeSelectorTerm? ToNodeSelectorTerm(V1LabelSelector? selector)
    {
        var requirements = new List<V1NodeSelectorRequirement>();
        if (selector?.MatchLabels is { } exact)
            foreach (var (key, value) in exact.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                requirements.Add(new V1NodeSelectorRequirement { Key = key, OperatorProperty = "In", Values = [value] });
        if (selector?.MatchExpressions is { } expressions)
            foreach (var e in expressions)
                requirements.Add(new V1NodeSelectorRequirement { Key = e.Key, OperatorProperty = e.OperatorProperty, Values = e.Values?.ToList() });
        return requirements.Count == 0 ? null : new V1NodeSelectorTerm { MatchExpressions = requirements };
    }
}
