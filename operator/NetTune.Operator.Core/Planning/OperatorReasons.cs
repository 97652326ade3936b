namespace NetTune.Operator.Core.Planning;

/// <summary>Condition and Event reasons only the operator uses (the shared ones are in NetTune.Api's ConditionReasons).</summary>
public static class OperatorReasons
{
    public const string Reverting = "Reverting";
    public const string RevertTimedOut = "RevertTimedOut";
    public const string RevertPaused = "RevertPaused";
    public const string RolloutStarted = "RolloutStarted";
    public const string BatchStarted = "BatchStarted";
    public const string BatchApplied = "BatchApplied";
    public const string NodeFailed = "NodeFailed";
}
