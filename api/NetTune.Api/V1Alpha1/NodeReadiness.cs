namespace NetTune.Api.V1Alpha1;

/// <summary>Labels the operator puts on Nodes from their NetworkTuningNodeState (agents cannot write Nodes).</summary>
public static class NodeLabels
{
    /// <summary>
    /// Present (value "true") only while the node's NetworkTuningNodeState reports its current generation applied in
    /// the node's current boot (status.bootId equal to the Node's status.nodeInfo.bootID when both are known). The
    /// operator removes it when an apply fails, on a revert (also one whose status write came late) and when the node
    /// booted again; it sets it once the agent reports Applied. Workloads that need the tuning (the data-plane pods)
    /// require it in their node affinity.
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
