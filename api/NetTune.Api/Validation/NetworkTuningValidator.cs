using System.Text.RegularExpressions;
using k8s.Models;
using NetTune.Api.V1Alpha1;

namespace NetTune.Api.Validation;

/// <param name="RuleId">The id of the CEL rule this check mirrors, or null for a check that only the operator makes.</param>
/// <param name="Field">The JSON path of the offending field, such as spec.nic.channels.</param>
public sealed record ValidationError(string? RuleId, string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>
/// The cross-field rules of the CRDs, in C#. API servers from 1.25 enforce the same rules through CEL; older ones
/// ignore CEL, so the operator runs this on every object it reads and refuses an invalid spec (reason InvalidSpec).
/// Every CEL rule id in the API types has a check here (a unit test enforces that).
/// </summary>
public static partial class NetworkTuningValidator
{
    public static IReadOnlyList<ValidationError> Validate(NetworkTuningSpec spec)
    {
        var errors = new List<ValidationError>();
        ValidateSelection(spec, errors);
        ValidateNic(spec.Nic, "spec.nic", errors);
        ValidateHugepages(spec.Hugepages, "spec.hugepages", errors);
        ValidateSysctls(spec.Sysctls, "spec.sysctls", errors);
        ValidateRollout(spec.Rollout, "spec.rollout", errors);
        ValidateDataPlane(spec.DataPlane, "spec.dataPlane", errors);
        if (spec.Nic?.IrqAffinity?.Policy == IrqAffinityPolicy.AlignWithDataPlane && spec.DataPlane?.Enabled != true)
            errors.Add(new("align-needs-dataplane", "spec.nic.irqAffinity.policy", "nic.irqAffinity.policy AlignWithDataPlane needs dataPlane.enabled: the queues are aligned with the data plane's workers"));
        return errors;
    }

    /// <summary>The same checks for the merged settings the operator writes into a NodeState.</summary>
    public static IReadOnlyList<ValidationError> Validate(NodeStateSpec spec)
    {
        var errors = new List<ValidationError>();
        ValidateNic(spec.Nic, "spec.nic", errors);
        ValidateHugepages(spec.Hugepages, "spec.hugepages", errors);
        ValidateSysctls(spec.Sysctls, "spec.sysctls", errors);
        return errors;
    }

    /// <summary>The CEL rule ids this validator checks; compared with the rules on the API types by a test.</summary>
    public static readonly IReadOnlySet<string> RuleIds = new HashSet<string>
    {
        "nic-interfaces-required", "interfaces-nonempty", "channels-combined-excludes-rxtx", "channels-match-excludes-counts",
        "channels-nonempty", "hugepages-unique-size", "hugepages-override-unique", "sysctls-allowed", "dataplane-image",
        "dataplane-static-root", "dataplane-proxy-upstreams", "selector-required", "allnodes-excludes-selector", "dataplane-ports",
        "seccomp-localhost-profile", "seccomp-localhost-relative", "rss-equal-or-weights", "rx-flow-hash-unique",
        "align-needs-dataplane", "align-excludes-channels-rps",
    };

    /// <summary>An empty selector would select every node, control-plane nodes included: it must be asked for.</summary>
    public static bool SelectsSomething(V1LabelSelector? selector) =>
        (selector?.MatchLabels?.Count ?? 0) > 0 || (selector?.MatchExpressions?.Count ?? 0) > 0;

    private static void ValidateSelection(NetworkTuningSpec spec, List<ValidationError> errors)
    {
        if (spec.AllNodes == true)
        {
            if (spec.NodeSelector is not null)
                errors.Add(new("allnodes-excludes-selector", "spec.allNodes", "allNodes excludes nodeSelector"));
        }
        else if (!SelectsSomething(spec.NodeSelector))
        {
            errors.Add(new("selector-required", "spec.nodeSelector",
                "a nodeSelector with at least one label or expression is required; set allNodes: true to select every node"));
        }
    }

    private static void ValidateNic(NicSpec? nic, string path, List<ValidationError> errors)
    {
        if (nic is null) return;
        var interfaces = nic.Interfaces;
        if (interfaces is null)
            errors.Add(new("nic-interfaces-required", path + ".interfaces", "nic.interfaces must name the interfaces to tune"));
        else if ((interfaces.Names?.Count ?? 0) == 0 && (interfaces.Drivers?.Count ?? 0) == 0)
            errors.Add(new("interfaces-nonempty", path + ".interfaces", "interfaces needs at least one name glob or driver"));

        if (nic.Channels is { } ch)
        {
            var cpath = path + ".channels";
            var match = ch.MatchLocalCpus == true;
            if (ch.Combined is not null && (ch.Rx is not null || ch.Tx is not null))
                errors.Add(new("channels-combined-excludes-rxtx", cpath, "combined excludes rx and tx"));
            if (match && (ch.Combined is not null || ch.Rx is not null || ch.Tx is not null))
                errors.Add(new("channels-match-excludes-counts", cpath, "matchLocalCpus excludes combined, rx and tx"));
            if (!match && ch.Combined is null && ch.Rx is null && ch.Tx is null)
                errors.Add(new("channels-nonempty", cpath, "channels needs combined, rx/tx or matchLocalCpus"));
            CheckRange(ch.Combined, 1, 4096, cpath + ".combined", errors);
            CheckRange(ch.Rx, 1, 4096, cpath + ".rx", errors);
            CheckRange(ch.Tx, 1, 4096, cpath + ".tx", errors);
        }

        if (nic.IrqAffinity?.Policy == IrqAffinityPolicy.AlignWithDataPlane && (nic.Channels is not null || nic.Rps?.Enabled == true))
            errors.Add(new("align-excludes-channels-rps", path + ".irqAffinity.policy",
                "nic.irqAffinity.policy AlignWithDataPlane sets the channels to the data plane's workers and turns RPS off on their queues: it excludes nic.channels and rps.enabled"));
        if (nic.HousekeepingCpus is { } housekeeping && !CpuList.TryParse(housekeeping, out _))
            errors.Add(new(null, path + ".housekeepingCpus", $"'{housekeeping}' is not a cpulist such as 0-1,8"));
        if (nic.IrqAffinity?.ReservedCpus is { } reserved && !CpuList.TryParse(reserved, out _))
            errors.Add(new(null, path + ".irqAffinity.reservedCpus", $"'{reserved}' is not a cpulist such as 0-1,8"));
        if (nic.Rps?.FlowEntries is { } flows)
            CheckRange(flows, 0, 1048576, path + ".rps.flowEntries", errors);
        CheckRange(nic.Rings?.Rx, 1, 65536, path + ".rings.rx", errors);
        CheckRange(nic.Rings?.Tx, 1, 65536, path + ".rings.tx", errors);
        CheckRange(nic.Coalesce?.RxUsecs, 0, 65535, path + ".coalesce.rxUsecs", errors);
        CheckRange(nic.Coalesce?.RxFrames, 0, 65535, path + ".coalesce.rxFrames", errors);
        CheckRange(nic.Coalesce?.TxUsecs, 0, 65535, path + ".coalesce.txUsecs", errors);
        CheckRange(nic.Coalesce?.TxFrames, 0, 65535, path + ".coalesce.txFrames", errors);
        CheckRange(nic.TxQueueLength, 0, 1000000, path + ".txQueueLength", errors);
        if (nic.Rss is { } rss) ValidateRss(rss, path + ".rss", errors);
    }

    private static void ValidateRss(RssSpec rss, string path, List<ValidationError> errors)
    {
        CheckRange(rss.Equal, 1, 4096, path + ".equal", errors);
        if (rss.Equal is not null && rss.Weights is not null)
            errors.Add(new("rss-equal-or-weights", path, "rss.equal and rss.weights exclude each other"));
        if (rss.Weights is { } weights)
        {
            if (weights.Count is 0 or > 4096) errors.Add(new(null, path + ".weights", "weights needs 1 to 4096 entries"));
            if (weights.Any(w => w is < 0 or > 65535)) errors.Add(new(null, path + ".weights", "each weight must be between 0 and 65535"));
            else if (weights.Count > 0 && weights.Sum() == 0) errors.Add(new(null, path + ".weights", "at least one weight must be above 0"));
        }
        if (rss.RxFlowHash is not { } hashes) return;
        if (hashes.Count > 6) errors.Add(new(null, path + ".rxFlowHash", "at most 6 flow types"));
        foreach (var (h, i) in hashes.Select((h, i) => (h, i)))
        {
            if (!RxFlowTypes.Contains(h.FlowType))
                errors.Add(new(null, $"{path}.rxFlowHash[{i}].flowType", $"'{h.FlowType}' is not one of {string.Join(", ", RxFlowTypes)}"));
            if (h.Fields.Length is 0 or > 7 || h.Fields.Any(c => !"mvtsdfn".Contains(c)))
                errors.Add(new(null, $"{path}.rxFlowHash[{i}].fields", $"'{h.Fields}' is not ethtool field letters (m, v, t, s, d, f, n) such as sdfn"));
        }
        if (hashes.GroupBy(h => h.FlowType).Any(g => g.Count() > 1))
            errors.Add(new("rx-flow-hash-unique", path + ".rxFlowHash", "each flow type may appear once"));
    }

    /// <summary>The flow types nic.rss.rxFlowHash takes, as ethtool names them.</summary>
    public static readonly IReadOnlyList<string> RxFlowTypes = ["tcp4", "udp4", "sctp4", "tcp6", "udp6", "sctp6"];

    private static void ValidateHugepages(List<HugepagesSpec>? pages, string path, List<ValidationError> errors)
    {
        if (pages is null) return;
        if (pages.GroupBy(p => p.Size).Any(g => g.Count() > 1))
            errors.Add(new("hugepages-unique-size", path, "each hugepage size may appear once"));
        for (var i = 0; i < pages.Count; i++)
        {
            var p = pages[i];
            var ipath = $"{path}[{i}]";
            if (p.Size is not ("2Mi" or "1Gi"))
                errors.Add(new(null, ipath + ".size", $"size '{p.Size}' must be 2Mi or 1Gi"));
            CheckRange(p.PagesPerNumaNode, 0, 1048576, ipath + ".pagesPerNumaNode", errors);
            CheckRange(p.MaxNodeMemoryPercent, 1, 90, ipath + ".maxNodeMemoryPercent", errors);
            if (p.PerNumaNode is { } overrides)
            {
                if (overrides.GroupBy(o => o.NumaNode).Any(g => g.Count() > 1))
                    errors.Add(new("hugepages-override-unique", ipath + ".perNumaNode", "each NUMA node may be overridden once"));
                for (var j = 0; j < overrides.Count; j++)
                {
                    CheckRange(overrides[j].NumaNode, 0, 1023, $"{ipath}.perNumaNode[{j}].numaNode", errors);
                    CheckRange(overrides[j].Pages, 0, 1048576, $"{ipath}.perNumaNode[{j}].pages", errors);
                }
            }
        }
    }

    private static void ValidateSysctls(Dictionary<string, string>? sysctls, string path, List<ValidationError> errors)
    {
        if (sysctls is null) return;
        var refused = sysctls.Keys.Where(k => !SysctlAllowList.IsAllowed(k)).Order(StringComparer.Ordinal).ToList();
        if (refused.Count > 0)
            errors.Add(new("sysctls-allowed", path, $"sysctls may only set keys of the allow-list; refused: {string.Join(", ", refused)}"));
        foreach (var (key, value) in sysctls)
        {
            // A newline would let one value write several settings through procfs.
            if (string.IsNullOrWhiteSpace(value) || value.Contains('\n') || value.Contains('\0') || value.Length > 256)
                errors.Add(new(null, $"{path}[{key}]", "value must be one non-empty line of at most 256 characters"));
            else if (SysctlAllowList.IsAllowed(key) && SysctlAllowList.Check(key, value) is { } reason)
                errors.Add(new(null, $"{path}[{key}]", $"{key}: {reason}"));
        }
    }

    private static void ValidateRollout(RolloutSpec? rollout, string path, List<ValidationError> errors)
    {
        if (rollout?.MaxUnavailable is not { } max) return;
        if (!MaxUnavailablePattern().IsMatch(max.Value ?? ""))
            errors.Add(new(null, path + ".maxUnavailable", $"'{max.Value}' must be a count or a percentage such as 25%"));
        else if (max.Value is "0" or "0%")
            errors.Add(new(null, path + ".maxUnavailable", "maxUnavailable must let at least one node proceed"));
    }

    private static void ValidateDataPlane(DataPlaneSpec? dp, string path, List<ValidationError> errors)
    {
        // The profile's rules hold whether or not the data plane is enabled, as the CEL rules on its type do.
        if (dp?.SeccompProfile is { } seccomp)
        {
            var hasProfile = !string.IsNullOrEmpty(seccomp.LocalhostProfile);
            if (seccomp.Type == SeccompProfileKind.Localhost ? !hasProfile : seccomp.LocalhostProfile is not null)
                errors.Add(new("seccomp-localhost-profile", path + ".seccompProfile.localhostProfile", "seccompProfile.localhostProfile is required with type Localhost, and only there"));
            if (seccomp.LocalhostProfile?.Contains("..", StringComparison.Ordinal) == true)
                errors.Add(new("seccomp-localhost-relative", path + ".seccompProfile.localhostProfile", "seccompProfile.localhostProfile must stay inside the kubelet's seccomp folder (no '..')"));
        }
        if (dp is null || !dp.Enabled) return;
        if (string.IsNullOrWhiteSpace(dp.Image))
            errors.Add(new("dataplane-image", path + ".image", "dataPlane.image is required when enabled"));
        if (dp.Mode == DataPlaneMode.StaticFiles && string.IsNullOrEmpty(dp.StaticFiles?.HostPath))
            errors.Add(new("dataplane-static-root", path + ".staticFiles.hostPath", "dataPlane.staticFiles.hostPath is required in StaticFiles mode"));
        if (dp.Mode == DataPlaneMode.Proxy && (dp.Proxy?.Upstreams?.Count ?? 0) == 0)
            errors.Add(new("dataplane-proxy-upstreams", path + ".proxy.upstreams", "dataPlane.proxy.upstreams is required in Proxy mode"));
        CheckRange(dp.Port, 1, 65535, path + ".port", errors);
        CheckRange(dp.AdminPort, 1, 65535, path + ".adminPort", errors);
        if (dp.Port >= dp.AdminPort && dp.Port < dp.AdminPort + DataPlaneSpec.AdminPortSpan)
            errors.Add(new("dataplane-ports", path + ".port",
                "port must not be one of the admin ports: the pod of NUMA node N serves its admin endpoint on adminPort + N (N up to 63)"));
    }

    private static void CheckRange(long? value, long min, long max, string field, List<ValidationError> errors)
    {
        if (value is { } v && (v < min || v > max))
            errors.Add(new(null, field, $"{v} is outside [{min}, {max}]"));
    }

    [GeneratedRegex(@"^(100|[1-9]?[0-9])%$|^[0-9]+$")]
    private static partial Regex MaxUnavailablePattern();
}
