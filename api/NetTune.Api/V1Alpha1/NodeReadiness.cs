namespace NetTune.Api.V1Alpha1;

/// <summary>Labels the agent puts on its own Node.</summary>
public static class NodeLabels
{
    /// <summary>
    /// Present (value "true") only while the node's current boot has its NetworkTuningNodeState applied: the agent
    /// removes it when it starts in a boot it has not applied yet, when an apply fails, and on revert; it sets it once
    /// an apply succeeds. Workloads that need the tuning (the data-plane pods) require it in their node affinity.
    /// </summary>
    public const string Tuned = ApiGroup.Name + "/tuned";

    public const string TunedValue = "true";
}
