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

/// <summary>The NodeState condition that says whether the agent places the node's IRQs, and why not.</summary>
public static class IrqAffinityConditions
{
    /// <summary>True while the agent places the IRQs the spec asks for; False when something else (irqbalance) would fight it.</summary>
    public const string Type = "IrqAffinityManaged";

    public const string Managed = "Managed";

    /// <summary>irqbalance runs on the node and balances IRQs the spec asks the agent to place: the agent leaves them alone.</summary>
    public const string IrqBalanceRunning = "IrqBalanceRunning";
}
