using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using k8s;
using NetTune.Api.V1Alpha1;
using NetTune.Api.Validation;

namespace NetTune.Api.Tests;

/// <summary>
/// The CRDs' CEL rules run by a real CEL implementation, on the same samples the C# twins are judged on: a rule that
/// does not compile, or whose verdict on a sample differs from its twin's, fails here. The test API server (v1.20)
/// ignores the rules, so nothing else ever evaluates them.
/// The implementation is npm's @bufbuild/cel (hack/cel.sh installs it; cel/evaluate.mjs runs it). NuGet's Cel 0.3.3
/// was tried first and refused: its has() is false for a map key whose value is empty ("" or {}), where cel-spec and
/// the API server (cel-go) test presence, so it would judge `has(self.interfaces)` on `interfaces: {}` wrongly.
/// </summary>
public class CelConformanceTests
{
    private static readonly Lazy<string> EvaluatorFolder = new(() =>
    {
        var (code, stdout, stderr) = RunProcess("bash", [Path.Combine(RepoFiles.Root, "hack", "cel.sh")], "");
        Assert.True(code == 0, $"hack/cel.sh failed ({code}): {stderr}");
        return stdout.Trim().Split('\n')[^1];
    });

    /// <summary>Every rule in the generated CRDs with the id of the [CelRule] it came from.</summary>
    private static IEnumerable<(string Plural, string Path, string Id, string Rule)> CrdRules()
    {
        var ids = ApiTypes.CelRules().GroupBy(r => r.Rule).ToDictionary(g => g.Key, g => g.First().Id);
        foreach (var plural in CrdDocuments.Plurals)
            foreach (var (path, node) in CrdDocuments.Walk(CrdDocuments.OpenApiSchema(plural)))
                foreach (var rule in Rules(node))
                    yield return (plural, path, ids.TryGetValue(rule, out var id) ? id : "(no [CelRule] has this rule)", rule);
    }

    private static IEnumerable<string> Rules(Dictionary<object, object> node) =>
        node.TryGetValue("x-kubernetes-validations", out var list)
            ? ((List<object>)list).Select(r => (string)CrdDocuments.Map(r)["rule"])
            : [];

    /// <summary>Runs each (rule, self) case in one node process; returns per rule its compile error (or null) and per case its verdict.</summary>
    private static (string?[] Compile, JsonElement[] Results) Run(IReadOnlyList<string> rules, IReadOnlyList<(int Rule, object? Self)> cases)
    {
        var input = JsonSerializer.Serialize(new { rules, cases = cases.Select(c => new { rule = c.Rule, self = c.Self }) });
        var (code, stdout, stderr) = RunProcess("node", [Path.Combine(EvaluatorFolder.Value, "evaluate.mjs")], input);
        Assert.True(code == 0, $"evaluate.mjs failed ({code}): {stderr}");
        using var output = JsonDocument.Parse(stdout);
        var compile = output.RootElement.GetProperty("compile").EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? null : e.GetString()).ToArray();
        var results = output.RootElement.GetProperty("results").EnumerateArray().Select(e => e.Clone()).ToArray();
        return (compile, results);
    }

    private static (int Code, string Stdout, string Stderr) RunProcess(string file, string[] args, string stdin)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void EveryRuleInTheCrdsCompilesAndComesFromACelRule()
    {
        var rules = CrdRules().ToList();
        Assert.NotEmpty(rules);
        var failures = new List<string>();
        var (compile, _) = Run(rules.Select(r => r.Rule).ToList(), []);
        for (var i = 0; i < rules.Count; i++)
        {
            var (plural, path, id, rule) = rules[i];
            if (id.StartsWith('(')) failures.Add($"{plural} {path}: {id}: {rule}");
            if (compile[i] is { } error) failures.Add($"{plural} {path} ({id}): '{rule}' does not compile: {error}");
        }
        Assert.Empty(failures);
        // Every [CelRule] reaches a CRD.
        Assert.Equal(NetworkTuningValidator.RuleIds.Order(StringComparer.Ordinal), rules.Select(r => r.Id).Distinct().Order(StringComparer.Ordinal));
    }

    public static TheoryData<string> TuningSampleNames => new(TwinSamples.Tunings.Keys);

    public static TheoryData<string> NodeStateSampleNames => new(TwinSamples.NodeStates.Keys);

    [Theory]
    [MemberData(nameof(TuningSampleNames))]
    public void OnEveryNetworkTuningSampleTheCelRulesAndTheirTwinsAgree(string sample)
    {
        var spec = TwinSamples.Tunings[sample]();
        var twin = NetworkTuningValidator.Validate(spec).Select(e => e.RuleId).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(twin, CelVerdicts.Value["networktunings/" + sample]);
    }

    [Theory]
    [MemberData(nameof(NodeStateSampleNames))]
    public void OnEveryNodeStateSampleTheCelRulesAndTheirTwinsAgree(string sample)
    {
        var spec = TwinSamples.NodeStates[sample]();
        var twin = NetworkTuningValidator.Validate(spec).Select(e => e.RuleId).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(twin, CelVerdicts.Value["networktuningnodestates/" + sample]);
    }

    [Fact]
    public void TheSamplesBreakEveryRuleAndTheValidOnesPassEveryRule()
    {
        var broken = CelVerdicts.Value.Values.SelectMany(v => v).ToHashSet();
        Assert.Equal(NetworkTuningValidator.RuleIds.Order(StringComparer.Ordinal), broken.Order(StringComparer.Ordinal));
        Assert.Empty(CelVerdicts.Value["networktunings/valid"]);
        Assert.Empty(CelVerdicts.Value["networktuningnodestates/valid"]);
    }

    [Fact]
    public void AWrongRuleIsCaught()
    {
        // The harness itself: verdicts both ways, presence of empty values as cel-spec has it, and a compile error.
        var self = ToCel(JsonDocument.Parse("""{"combined": 4, "names": [], "hostPath": ""}""").RootElement);
        var (compile, results) = Run(["!(has(self.combined) && (has(self.rx) || has(self.tx)))", "has(self.rx)", "has(self.names) && has(self.hostPath)", "self.all(x, "],
            [(0, self), (1, self), (2, self)]);
        Assert.All(compile[..3], Assert.Null);
        Assert.NotNull(compile[3]);
        Assert.Equal([JsonValueKind.True, JsonValueKind.False, JsonValueKind.True], results.Select(r => r.ValueKind));
    }

    /// <summary>
    /// What an API server with CEL would do with spec: apply the schema's defaults, then run every rule on the value
    /// at its place (each item of a list, each value of a map); returns the ids of the rules that do not hold.
    /// </summary>
    /// <summary>Every sample judged by CEL once, in one node process.</summary>
    private static readonly Lazy<Dictionary<string, List<string>>> CelVerdicts = new(() =>
    {
        var tunings = TwinSamples.Tunings.ToList();
        var states = TwinSamples.NodeStates.ToList();
        var verdicts = new Dictionary<string, List<string>>();
        var t = EvaluateAll("networktunings", [.. tunings.Select(s => (object)s.Value())]);
        for (var i = 0; i < tunings.Count; i++) verdicts["networktunings/" + tunings[i].Key] = t[i];
        var n = EvaluateAll("networktuningnodestates", [.. states.Select(s => (object)s.Value())]);
        for (var i = 0; i < states.Count; i++) verdicts["networktuningnodestates/" + states[i].Key] = n[i];
        return verdicts;
    });

    private static List<List<string>> EvaluateAll(string plural, IReadOnlyList<object> specs)
    {
        var ids = ApiTypes.CelRules().GroupBy(r => r.Rule).ToDictionary(g => g.Key, g => g.First().Id);
        var schema = CrdDocuments.At(CrdDocuments.OpenApiSchema(plural), "spec");
        var cases = new List<(int Spec, string Rule, object? Self)>();
        for (var s = 0; s < specs.Count; s++)
        {
            var value = ToCel(JsonDocument.Parse(KubernetesJson.Serialize(specs[s])).RootElement);
            ApplyDefaults(schema, value);
            var found = new List<(string Rule, object? Self)>();
            Collect(schema, value, found);
            cases.AddRange(found.Select(f => (s, f.Rule, f.Self)));
        }
        var rules = cases.Select(c => c.Rule).Distinct().ToList();
        var (compile, results) = Run(rules, cases.Select(c => (rules.IndexOf(c.Rule), c.Self)).ToList());
        var failed = specs.Select(_ => new SortedSet<string>(StringComparer.Ordinal)).ToList();
        for (var i = 0; i < cases.Count; i++)
        {
            var rule = cases[i].Rule;
            Assert.True(compile[rules.IndexOf(rule)] is null, $"'{rule}' does not compile: {compile[rules.IndexOf(rule)]}");
            Assert.True(results[i].ValueKind is JsonValueKind.True or JsonValueKind.False, $"'{rule}' on {JsonSerializer.Serialize(cases[i].Self)}: {results[i]}");
            if (results[i].ValueKind == JsonValueKind.False) failed[cases[i].Spec].Add(ids[rule]);
        }
        return [.. failed.Select(f => f.ToList())];
    }

    /// <summary>Every rule with the value it judges: at its place in the schema, each item of a list, each value of a map.</summary>
    private static void Collect(Dictionary<object, object> schema, object? value, List<(string Rule, object? Self)> cases)
    {
        if (value is null) return;
        foreach (var rule in Rules(schema)) cases.Add((rule, value));
        if (value is Dictionary<string, object?> map)
        {
            if (schema.TryGetValue("properties", out var properties))
                foreach (var (name, child) in CrdDocuments.Map(properties))
                    if (map.TryGetValue((string)name, out var v)) Collect(CrdDocuments.Map(child), v, cases);
            if (schema.TryGetValue("additionalProperties", out var values) && values is Dictionary<object, object> valueSchema)
                foreach (var v in map.Values) Collect(valueSchema, v, cases);
        }
        if (value is List<object?> list && schema.TryGetValue("items", out var items))
            foreach (var v in list) Collect(CrdDocuments.Map(items), v, cases);
    }

    /// <summary>Structural defaulting as the API server does it: missing properties of objects that exist get their default.</summary>
    private static void ApplyDefaults(Dictionary<object, object> schema, object? value)
    {
        if (value is Dictionary<string, object?> map && schema.TryGetValue("properties", out var properties))
        {
            foreach (var (name, child) in CrdDocuments.Map(properties))
            {
                var childSchema = CrdDocuments.Map(child);
                if (!map.ContainsKey((string)name) && childSchema.TryGetValue("default", out var d))
                    map[(string)name] = Typed(childSchema, d);
                if (map.TryGetValue((string)name, out var v)) ApplyDefaults(childSchema, v);
            }
        }
        if (value is List<object?> list && schema.TryGetValue("items", out var items))
            foreach (var v in list) ApplyDefaults(CrdDocuments.Map(items), v);
    }

    /// <summary>A YAML default (a string scalar to YamlDotNet) as the type its schema declares.</summary>
    private static object? Typed(Dictionary<object, object> schema, object yaml) => (schema.GetValueOrDefault("type") as string, yaml) switch
    {
        ("integer", string s) => long.Parse(s, CultureInfo.InvariantCulture),
        ("number", string s) => double.Parse(s, CultureInfo.InvariantCulture),
        ("boolean", string s) => bool.Parse(s),
        (_, string s) => s,
        _ => ToCel(JsonDocument.Parse(JsonSerializer.Serialize(yaml)).RootElement),
    };

    /// <summary>JSON as CEL values: objects as maps, arrays as lists, integers as int (int64), other numbers as double.</summary>
    private static object? ToCel(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => ToCel(p.Value)),
        JsonValueKind.Array => e.EnumerateArray().Select(ToCel).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}

/// <summary>
/// Specs that keep or break the rules that have CEL twins, each a variation of ValidatorTests.Valid() as the twins'
/// own tests use: judged by the C# validator and by CEL alike.
/// </summary>
internal static class TwinSamples
{
    private static NetworkTuningSpec With(Action<NetworkTuningSpec> change)
    {
        var spec = ValidatorTests.Valid();
        change(spec);
        return spec;
    }

    public static readonly IReadOnlyDictionary<string, Func<NetworkTuningSpec>> Tunings = new Dictionary<string, Func<NetworkTuningSpec>>
    {
        ["valid"] = ValidatorTests.Valid,
        ["empty"] = () => new NetworkTuningSpec(),
        ["all nodes"] = () => new NetworkTuningSpec { AllNodes = true },
        ["all nodes false"] = () => new NetworkTuningSpec { AllNodes = false },
        ["all nodes with a selector"] = () => With(s => s.AllNodes = true),
        ["empty selector"] = () => With(s => s.NodeSelector = new k8s.Models.V1LabelSelector()),
        ["empty matchLabels"] = () => With(s => s.NodeSelector = new k8s.Models.V1LabelSelector { MatchLabels = new Dictionary<string, string>() }),
        ["selector by expression"] = () => With(s => s.NodeSelector = new k8s.Models.V1LabelSelector
        {
            MatchExpressions = [new k8s.Models.V1LabelSelectorRequirement { Key = "pool", OperatorProperty = "In", Values = ["edge"] }],
        }),
        ["control plane opt-in"] = () => With(s => s.IncludeControlPlane = true),
        ["port on the admin port"] = () => With(s => s.DataPlane!.Port = s.DataPlane.AdminPort),
        ["port on numa 1's admin port"] = () => With(s => { s.DataPlane!.Port = 8081; s.DataPlane.AdminPort = 8080; }),
        ["port past the admin ports"] = () => With(s => { s.DataPlane!.Port = 8144; s.DataPlane.AdminPort = 8080; }),
        ["port below the admin port"] = () => With(s => { s.DataPlane!.Port = 8079; s.DataPlane.AdminPort = 8080; }),
        ["disabled data plane with colliding ports"] = () => With(s => { s.DataPlane!.Enabled = false; s.DataPlane.Port = 8081; s.DataPlane.AdminPort = 8080; }),
        ["nic without interfaces"] = () => With(s => s.Nic!.Interfaces = null),
        ["interfaces empty"] = () => With(s => s.Nic!.Interfaces = new InterfaceSelector { Names = [], Drivers = null }),
        ["interfaces by name only"] = () => With(s => s.Nic!.Interfaces = new InterfaceSelector { Names = ["ens1f?"] }),
        ["interfaces by driver only"] = () => With(s => s.Nic!.Interfaces = new InterfaceSelector { Drivers = ["mlx5_core"] }),
        ["combined with rx"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Combined = 4, Rx = 2 }),
        ["combined with tx"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Combined = 4, Tx = 2 }),
        ["combined with rx and tx"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Combined = 4, Rx = 2, Tx = 2 }),
        ["match with combined"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = true, Combined = 4 }),
        ["match with rx"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = true, Rx = 2 }),
        ["match with tx"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = true, Tx = 3 }),
        ["channels with nothing"] = () => With(s => s.Nic!.Channels = new ChannelsSpec()),
        ["channels with match false only"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = false }),
        ["channels combined"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Combined = 8 }),
        ["channels rx only"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Rx = 2 }),
        ["channels tx only"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Tx = 2 }),
        ["channels rx tx match false"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { Rx = 2, Tx = 2, MatchLocalCpus = false }),
        ["channels match"] = () => With(s => s.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = true }),
        ["rss equal with weights"] = () => With(s => s.Nic!.Rss = new RssSpec { Equal = 2, Weights = [1, 1] }),
        ["rss repeated flow type"] = () => With(s => s.Nic!.Rss = new RssSpec
        {
            RxFlowHash = [new RxFlowHashSpec { FlowType = "tcp4", Fields = "sdfn" }, new RxFlowHashSpec { FlowType = "tcp4", Fields = "sd" }],
        }),
        ["rss equal and hash fields"] = () => With(s => s.Nic!.Rss = new RssSpec
        {
            Equal = 4, RxFlowHash = [new RxFlowHashSpec { FlowType = "tcp4", Fields = "sdfn" }, new RxFlowHashSpec { FlowType = "udp4", Fields = "sdfn" }],
        }),
        ["repeated hugepage size"] = () => With(s => s.Hugepages!.Add(new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 1 })),
        ["repeated numa override"] = () => With(s => s.Hugepages![0].PerNumaNode!.Add(new NumaNodePages { NumaNode = 1, Pages = 8 })),
        ["distinct numa overrides"] = () => With(s => s.Hugepages![0].PerNumaNode!.Add(new NumaNodePages { NumaNode = 0, Pages = 1048576 })),
        ["sysctls outside the allow-list"] = () => With(s => { s.Sysctls!["kernel.core_pattern"] = "|/tmp/x"; s.Sysctls["fs.file-max"] = "100"; }),
        ["every allowed sysctl"] = () => With(s => { foreach (var key in SysctlAllowList.Keys) s.Sysctls![key] = "1"; }),
        ["disabled data plane unchecked"] = () => With(s => s.DataPlane = new DataPlaneSpec { Enabled = false, Image = null, Mode = DataPlaneMode.Proxy }),
        ["data plane without image"] = () => With(s => s.DataPlane!.Image = null),
        ["data plane with empty image"] = () => With(s => s.DataPlane!.Image = ""),
        ["data plane with blank image"] = () => With(s => s.DataPlane!.Image = "  "),
        ["static files without staticFiles"] = () => With(s => s.DataPlane!.StaticFiles = null),
        ["static files with empty hostPath"] = () => With(s => s.DataPlane!.StaticFiles = new StaticFilesSpec { HostPath = "" }),
        ["proxy without upstreams"] = () => With(s => { s.DataPlane!.Mode = DataPlaneMode.Proxy; s.DataPlane.StaticFiles = null; }),
        ["proxy with empty upstreams"] = () => With(s => { s.DataPlane!.Mode = DataPlaneMode.Proxy; s.DataPlane.StaticFiles = null; s.DataPlane.Proxy = new ProxySpec { Upstreams = [] }; }),
        ["proxy with upstreams"] = () => With(s => { s.DataPlane!.Mode = DataPlaneMode.Proxy; s.DataPlane.StaticFiles = null; s.DataPlane.Proxy = new ProxySpec { Upstreams = ["10.0.0.5:8080"] }; }),
        ["localhost seccomp without its profile"] = () => With(s => s.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost }),
        ["nettune seccomp naming a profile"] = () => With(s => s.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.NetTune, LocalhostProfile = "x.json" }),
        ["localhost seccomp leaving the folder"] = () => With(s => s.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost, LocalhostProfile = "profiles/../../x.json" }),
        ["localhost seccomp"] = () => With(s => s.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost, LocalhostProfile = "profiles/deny-io-uring.json" }),
        ["runtime default seccomp on a disabled data plane naming a profile"] = () => With(s =>
        {
            s.DataPlane!.Enabled = false;
            s.DataPlane.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.RuntimeDefault, LocalhostProfile = "x.json" };
        }),
        ["aligned"] = () => With(s => { s.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; s.Nic.Channels = null; s.Nic.Rps = new RpsSpec { FlowEntries = 4096 }; }),
        ["aligned without a data plane"] = () => With(s => { s.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; s.Nic.Channels = null; s.Nic.Rps = null; s.DataPlane = null; }),
        ["aligned with a disabled data plane"] = () => With(s => { s.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; s.Nic.Channels = null; s.Nic.Rps = null; s.DataPlane!.Enabled = false; }),
        ["aligned with channels"] = () => With(s => { s.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; s.Nic.Rps = null; }),
        ["aligned with rps"] = () => With(s => { s.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; s.Nic.Channels = null; }),
        ["every problem at once"] = () => With(s =>
        {
            s.Nic!.Channels = new ChannelsSpec { Combined = 2, Rx = 2 };
            s.Hugepages![1].Size = "2Mi";
            s.Sysctls!["kernel.panic"] = "1";
            s.DataPlane!.Image = null;
        }),
    };

    public static readonly IReadOnlyDictionary<string, Func<NodeStateSpec>> NodeStates = new Dictionary<string, Func<NodeStateSpec>>
    {
        ["valid"] = () => new NodeStateSpec
        {
            NodeName = "node-1",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["veth"] }, Channels = new ChannelsSpec { Rx = 2, Tx = 2 } },
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64, PerNumaNode = [new NumaNodePages { NumaNode = 0, Pages = 2 }] }],
            Sysctls = new Dictionary<string, string> { ["net.core.busy_poll"] = "50" },
        },
        ["three rules broken"] = () => new NodeStateSpec
        {
            NodeName = "node-1",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth0"] }, Channels = new ChannelsSpec { Combined = 2, Tx = 2 } },
            Hugepages = [new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 1 }, new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 2 }],
            Sysctls = new Dictionary<string, string> { ["vm.overcommit_memory"] = "1" },
        },
        ["nic without interfaces"] = () => new NodeStateSpec { NodeName = "n", Nic = new NicSpec { Channels = new ChannelsSpec { MatchLocalCpus = true, Rx = 1 } } },
        ["repeated numa override"] = () => new NodeStateSpec
        {
            NodeName = "n",
            Hugepages = [new HugepagesSpec { Size = "2Mi", PerNumaNode = [new NumaNodePages { NumaNode = 1 }, new NumaNodePages { NumaNode = 1, Pages = 3 }] }],
        },
        ["interfaces empty, channels empty"] = () => new NodeStateSpec { NodeName = "n", Nic = new NicSpec { Interfaces = new InterfaceSelector(), Channels = new ChannelsSpec() } },
    };
}
