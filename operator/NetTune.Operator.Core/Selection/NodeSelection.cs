using k8s.Models;
using NetTune.Api.Validation;
using NetTune.Api.V1Alpha1;

namespace NetTune.Operator.Core.Selection;

/// <summary>
/// Which nodes a NetworkTuning selects: its nodeSelector (or every node with allNodes: true), without control-plane
/// nodes unless it opts in with includeControlPlane. A spec that asks for neither a selector nor allNodes selects
/// nothing (the API refuses it; servers without CEL may have stored one).
/// </summary>
public static class NodeSelection
{
    public const string ControlPlaneLabel = "node-role.kubernetes.io/control-plane";
    public const string LegacyMasterLabel = "node-role.kubernetes.io/master";

    public static bool Selects(NetworkTuningSpec spec, V1Node node) => Selects(spec, node.Metadata.Labels);

    public static bool Selects(NetworkTuningSpec spec, IDictionary<string, string>? labels) =>
        MatchesIgnoringRole(spec, labels) && (spec.IncludeControlPlane == true || !IsControlPlane(labels));

    /// <summary>A control-plane node the tuning would select if it opted in.</summary>
    public static bool LeftOutControlPlane(NetworkTuningSpec spec, V1Node node) =>
        spec.IncludeControlPlane != true && IsControlPlane(node.Metadata.Labels) && MatchesIgnoringRole(spec, node.Metadata.Labels);

    public static bool IsControlPlane(IDictionary<string, string>? labels) =>
        labels is not null && (labels.ContainsKey(ControlPlaneLabel) || labels.ContainsKey(LegacyMasterLabel));

    private static bool MatchesIgnoringRole(NetworkTuningSpec spec, IDictionary<string, string>? labels)
    {
        if (spec.AllNodes == true) return spec.NodeSelector is null;
        return NetworkTuningValidator.SelectsSomething(spec.NodeSelector) && LabelSelectorMatcher.Matches(spec.NodeSelector, labels);
    }
}
