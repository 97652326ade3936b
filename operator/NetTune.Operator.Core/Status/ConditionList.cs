using k8s.Models;

namespace NetTune.Operator.Core.Status;

/// <summary>Builds a condition list after the API conventions: lastTransitionTime moves only when the status does.</summary>
public sealed class ConditionList(IEnumerable<V1Condition>? previous, long generation, DateTime now)
{
    private readonly Dictionary<string, V1Condition> _previous =
        (previous ?? []).GroupBy(c => c.Type).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
    private readonly List<V1Condition> _conditions = [];

    public ConditionList Set(string type, string status, string reason, string message)
    {
        // The API server (1.20 at least) takes an empty message for a missing one and refuses the condition.
        if (string.IsNullOrEmpty(message)) message = reason;
        var since = _previous.TryGetValue(type, out var old) && old.Status == status ? old.LastTransitionTime : now;
        _conditions.Add(new V1Condition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message.Length <= 32768 ? message : message[..32765] + "...",
            ObservedGeneration = generation,
            LastTransitionTime = since,
        });
        return this;
    }

    public List<V1Condition> ToList() => [.. _conditions];

    public static V1Condition? Find(IEnumerable<V1Condition>? conditions, string type) => conditions?.FirstOrDefault(c => c.Type == type);
}
