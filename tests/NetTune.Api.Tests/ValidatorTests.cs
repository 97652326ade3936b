using k8s.Models;
using NetTune.Api.V1Alpha1;
using NetTune.Api.Validation;

namespace NetTune.Api.Tests;

public class ValidatorTests
{
    /// <summary>A spec that uses every section and passes; each test breaks one thing.</summary>
    internal static NetworkTuningSpec Valid() => new()
    {
        NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { ["nettune.io/role"] = "web" } },
        Priority = 10,
        Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth*"], Drivers = ["virtio_net"] },
            Channels = new ChannelsSpec { Combined = 4 },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread, ReservedCpus = "0" },
            Rps = new RpsSpec { Enabled = true, FlowEntries = 32768 },
            Xps = new XpsSpec { Enabled = true },
        },
        Hugepages =
        [
            new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 0 }] },
            new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 2 },
        ],
        Sysctls = new Dictionary<string, string> { ["net.core.somaxconn"] = "65535", ["net.ipv4.tcp_rmem"] = "4096 87380 16777216" },
        Rollout = new RolloutSpec { MaxUnavailable = "40%" },
        DataPlane = new DataPlaneSpec
        {
            Enabled = true,
            Image = "nettune/dataplane:0.1.0",
            Mode = DataPlaneMode.StaticFiles,
            StaticFiles = new StaticFilesSpec { HostPath = "/srv/www" },
        },
    };

    private static (string? RuleId, string Field)[] Errors(NetworkTuningSpec spec) =>
        NetworkTuningValidator.Validate(spec).Select(e => (e.RuleId, e.Field)).ToArray();

    private static ValidationError Single(NetworkTuningSpec spec) => Assert.Single(NetworkTuningValidator.Validate(spec));

    [Fact]
    public void AFullValidSpecPasses() => Assert.Empty(NetworkTuningValidator.Validate(Valid()));

    [Fact]
    public void AnEmptySpecNeedsASelectorOrAllNodes()
    {
        Assert.Equal("selector-required", Single(new NetworkTuningSpec()).RuleId);
        Assert.Empty(NetworkTuningValidator.Validate(new NetworkTuningSpec { AllNodes = true }));
    }

    [Fact]
    public void AnEmptySelectorDoesNotSelectEveryNodeUnlessAllNodesSaysSo()
    {
        Assert.Equal("selector-required", Single(new NetworkTuningSpec { NodeSelector = new V1LabelSelector() }).RuleId);
        Assert.Equal("selector-required", Single(new NetworkTuningSpec { NodeSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string>() } }).RuleId);
        Assert.Equal("selector-required", Single(new NetworkTuningSpec { AllNodes = false }).RuleId);
        Assert.Empty(NetworkTuningValidator.Validate(new NetworkTuningSpec
        {
            NodeSelector = new V1LabelSelector { MatchExpressions = [new V1LabelSelectorRequirement { Key = "pool", OperatorProperty = "Exists" }] },
        }));
        var both = Single(new NetworkTuningSpec { AllNodes = true, NodeSelector = Valid().NodeSelector });
        Assert.Equal(("allnodes-excludes-selector", "spec.allNodes"), (both.RuleId, both.Field));
    }

    // --- nic ---

    [Fact]
    public void NicWithoutInterfacesFails()
    {
        var spec = Valid();
        spec.Nic!.Interfaces = null;
        Assert.Equal([("nic-interfaces-required", "spec.nic.interfaces")], Errors(spec));
    }

    [Fact]
    public void InterfacesWithNoNameAndNoDriverFail()
    {
        var spec = Valid();
        spec.Nic!.Interfaces = new InterfaceSelector { Names = [], Drivers = null };
        var error = Single(spec);
        Assert.Equal(("interfaces-nonempty", "spec.nic.interfaces"), (error.RuleId, error.Field));
        Assert.Contains("at least one name glob or driver", error.Message);
    }

    [Fact]
    public void InterfacesByNameOnlyOrByDriverOnlyPass()
    {
        var byName = Valid();
        byName.Nic!.Interfaces = new InterfaceSelector { Names = ["ens1f?"] };
        var byDriver = Valid();
        byDriver.Nic!.Interfaces = new InterfaceSelector { Drivers = ["mlx5_core"] };
        Assert.Empty(Errors(byName));
        Assert.Empty(Errors(byDriver));
    }

    [Theory]
    [InlineData(4, 2, null)]
    [InlineData(4, null, 2)]
    [InlineData(4, 2, 2)]
    public void CombinedWithRxOrTxFails(int combined, int? rx, int? tx)
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { Combined = combined, Rx = rx, Tx = tx };
        Assert.Equal([("channels-combined-excludes-rxtx", "spec.nic.channels")], Errors(spec));
    }

    [Theory]
    [InlineData(4, null, null)]
    [InlineData(null, 2, null)]
    [InlineData(null, null, 3)]
    public void MatchLocalCpusWithACountFails(int? combined, int? rx, int? tx)
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = true, Combined = combined, Rx = rx, Tx = tx };
        var error = Single(spec);
        Assert.Equal(("channels-match-excludes-counts", "spec.nic.channels"), (error.RuleId, error.Field));
        Assert.Equal("spec.nic.channels: matchLocalCpus excludes combined, rx and tx", error.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData(false)]
    public void ChannelsWithNothingToSetFail(bool? matchLocalCpus)
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = matchLocalCpus };
        Assert.Equal([("channels-nonempty", "spec.nic.channels")], Errors(spec));
    }

    [Theory]
    [InlineData(8, null, null, null)]
    [InlineData(null, 2, null, null)]
    [InlineData(null, null, 2, null)]
    [InlineData(null, 2, 2, false)]
    [InlineData(null, null, null, true)]
    public void EachAllowedChannelShapePasses(int? combined, int? rx, int? tx, bool? match)
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { Combined = combined, Rx = rx, Tx = tx, MatchLocalCpus = match };
        Assert.Empty(Errors(spec));
    }

    [Theory]
    [InlineData(0, "spec.nic.channels.combined")]
    [InlineData(4097, "spec.nic.channels.combined")]
    public void CombinedOutOfRangeFails(int combined, string field)
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { Combined = combined };
        var error = Single(spec);
        Assert.Equal((null, field), (error.RuleId, error.Field));
        Assert.Equal($"{combined} is outside [1, 4096]", error.Message);
    }

    [Fact]
    public void RxAndTxOutOfRangeFailEachWithItsField()
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { Rx = 0, Tx = 5000 };
        Assert.Equal([(null, "spec.nic.channels.rx"), (null, "spec.nic.channels.tx")], Errors(spec));
    }

    [Theory]
    [InlineData("3-1")]
    [InlineData("x")]
    [InlineData("9999")]
    public void ReservedCpusThatAreNoCpulistFail(string reserved)
    {
        var spec = Valid();
        spec.Nic!.IrqAffinity!.ReservedCpus = reserved;
        var error = Single(spec);
        Assert.Equal((null, "spec.nic.irqAffinity.reservedCpus"), (error.RuleId, error.Field));
        Assert.Contains($"'{reserved}'", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0-1,8")]
    public void ReservedCpusThatAreACpulistPass(string reserved)
    {
        var spec = Valid();
        spec.Nic!.IrqAffinity!.ReservedCpus = reserved;
        Assert.Empty(Errors(spec));
    }

    [Theory]
    [InlineData(-1, false)]
    [InlineData(0, true)]
    [InlineData(1048576, true)]
    [InlineData(1048577, false)]
    public void RpsFlowEntriesAreBounded(int flows, bool valid)
    {
        var spec = Valid();
        spec.Nic!.Rps!.FlowEntries = flows;
        Assert.Equal(valid ? [] : [(null, "spec.nic.rps.flowEntries")], Errors(spec));
    }

    // --- rss and txqueuelen ---

    [Fact]
    public void RssRefusesBothEqualAndWeights_WeightsOfZero_UnknownFlowTypes_TheDiscardLetter_AndRepeatedFlowTypes()
    {
        var spec = Valid();
        spec.Nic!.Rss = new RssSpec { Equal = 4, Weights = [1, 1] };
        Assert.Equal([("rss-equal-or-weights", "spec.nic.rss")], Errors(spec));
        spec.Nic.Rss = new RssSpec { Weights = [0, 0] };
        Assert.Equal([(null, "spec.nic.rss.weights")], Errors(spec));
        spec.Nic.Rss = new RssSpec
        {
            RxFlowHash = [new() { FlowType = "ah4", Fields = "sd" }, new() { FlowType = "udp4", Fields = "sdr" }, new() { FlowType = "tcp4", Fields = "sdfn" }, new() { FlowType = "tcp4", Fields = "sd" }],
        };
        Assert.Equal([(null, "spec.nic.rss.rxFlowHash[0].flowType"), (null, "spec.nic.rss.rxFlowHash[1].fields"), ("rx-flow-hash-unique", "spec.nic.rss.rxFlowHash")], Errors(spec));
        spec.Nic.Rss = new RssSpec { Weights = [3, 0, 1], RxFlowHash = [new() { FlowType = "udp6", Fields = "sdfn" }] };
        spec.Nic.TxQueueLength = 10000;
        Assert.Empty(Errors(spec));
        spec.Nic.TxQueueLength = -1;
        Assert.Equal([(null, "spec.nic.txQueueLength")], Errors(spec));
    }

    // --- hugepages ---

    [Fact]
    public void ARepeatedHugepageSizeFails()
    {
        var spec = Valid();
        spec.Hugepages!.Add(new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 1 });
        Assert.Equal([("hugepages-unique-size", "spec.hugepages")], Errors(spec));
    }

    [Theory]
    [InlineData("4Mi")]
    [InlineData("2M")]
    [InlineData("")]
    public void AnUnknownHugepageSizeFails(string size)
    {
        var spec = Valid();
        spec.Hugepages![1].Size = size;
        var error = Single(spec);
        Assert.Equal((null, "spec.hugepages[1].size"), (error.RuleId, error.Field));
        Assert.Contains("2Mi or 1Gi", error.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1048577)]
    public void PagesPerNumaNodeOutOfRangeFails(int pages)
    {
        var spec = Valid();
        spec.Hugepages![0].PagesPerNumaNode = pages;
        Assert.Equal([(null, "spec.hugepages[0].pagesPerNumaNode")], Errors(spec));
    }

    [Fact]
    public void ARepeatedNumaOverrideFails()
    {
        var spec = Valid();
        spec.Hugepages![0].PerNumaNode!.Add(new NumaNodePages { NumaNode = 1, Pages = 8 });
        Assert.Equal([("hugepages-override-unique", "spec.hugepages[0].perNumaNode")], Errors(spec));
    }

    [Fact]
    public void OverridesOutOfRangeFailWithTheirIndex()
    {
        var spec = Valid();
        spec.Hugepages![0].PerNumaNode!.Add(new NumaNodePages { NumaNode = 1024, Pages = -1 });
        Assert.Equal(
            [(null, "spec.hugepages[0].perNumaNode[1].numaNode"), (null, "spec.hugepages[0].perNumaNode[1].pages")],
            Errors(spec));
    }

    [Fact]
    public void DistinctOverridesPass()
    {
        var spec = Valid();
        spec.Hugepages![0].PerNumaNode!.Add(new NumaNodePages { NumaNode = 0, Pages = 1048576 });
        Assert.Empty(Errors(spec));
    }

    // --- sysctls ---

    [Fact]
    public void SysctlsOutsideTheAllowListFailNamingEveryRefusedKeyOnce()
    {
        var spec = Valid();
        spec.Sysctls!["kernel.core_pattern"] = "|/tmp/x";
        spec.Sysctls["fs.file-max"] = "100";
        var error = Single(spec);
        Assert.Equal(("sysctls-allowed", "spec.sysctls"), (error.RuleId, error.Field));
        Assert.EndsWith("refused: fs.file-max, kernel.core_pattern", error.Message);
        Assert.DoesNotContain("somaxconn", error.Message);
    }

    [Theory]
    [InlineData("1\nnet.core.somaxconn=1")]
    [InlineData("1\0")]
    [InlineData("")]
    [InlineData("   ")]
    public void SysctlValuesMustBeOneNonEmptyLine(string value)
    {
        var spec = Valid();
        spec.Sysctls!["net.core.somaxconn"] = value;
        var error = Single(spec);
        Assert.Equal((null, "spec.sysctls[net.core.somaxconn]"), (error.RuleId, error.Field));
    }

    [Fact]
    public void SysctlValuesAreAtMost256Characters()
    {
        var spec = Valid();
        spec.Sysctls!["net.ipv4.tcp_rmem"] = "4096 87380 " + new string(' ', 237) + "16777216";
        Assert.Empty(Errors(spec));
        spec.Sysctls["net.ipv4.tcp_rmem"] = "4096 87380 " + new string(' ', 238) + "16777216";
        Assert.Contains("at most 256 characters", Single(spec).Message);
    }

    [Theory]
    [InlineData("net.core.somaxconn", "65535", null)]
    [InlineData("net.core.somaxconn", "1", "net.core.somaxconn: 1 is outside the safe range [128, 1048576]")]
    [InlineData("net.core.somaxconn", "lots", "net.core.somaxconn: 'lots' is not an integer")]
    [InlineData("net.core.somaxconn", "4096 4096", "net.core.somaxconn: '4096 4096' is not an integer")]
    [InlineData("vm.min_free_kbytes", "99999999", "vm.min_free_kbytes: 99999999 is outside the safe range [1024, 16777216]")]
    [InlineData("net.ipv4.tcp_rmem", "4096\t131072\t6291456", null)]
    [InlineData("net.ipv4.tcp_rmem", "4096 131072", "net.ipv4.tcp_rmem: '4096 131072' is not three integers (min default max)")]
    [InlineData("net.ipv4.tcp_rmem", "4096 8192000 6291456", "net.ipv4.tcp_rmem: '4096 8192000 6291456' must be ascending: min <= default <= max")]
    [InlineData("net.ipv4.tcp_wmem", "0 16384 4194304", "net.ipv4.tcp_wmem: '0 16384 4194304' leaves the safe range [4096, 1073741824]")]
    [InlineData("net.ipv4.ip_local_port_range", "1024 65535", null)]
    [InlineData("net.ipv4.ip_local_port_range", "60000 60100", "net.ipv4.ip_local_port_range: '60000 60100' keeps 101 ports, fewer than 1024")]
    [InlineData("net.ipv4.ip_local_port_range", "22 40000", "net.ipv4.ip_local_port_range: '22 40000' leaves [1024, 65535] (ports below 1024 belong to system services)")]
    [InlineData("net.core.default_qdisc", "fq", null)]
    [InlineData("net.core.default_qdisc", "noqueue", "net.core.default_qdisc: 'noqueue' is not one of pfifo_fast, fq, fq_codel, fq_pie, cake, sfq, pie, pfifo, bfifo, codel")]
    [InlineData("net.ipv4.tcp_tw_reuse", "3", "net.ipv4.tcp_tw_reuse: '3' is not one of 0, 1, 2")]
    [InlineData("net.ipv4.tcp_fastopen", "1027", null)]
    [InlineData("net.ipv4.tcp_fastopen", "8", "net.ipv4.tcp_fastopen: 8 sets bits outside the known flags 0x607")]
    [InlineData("net.ipv4.tcp_congestion_control", "bbr", null)]
    [InlineData("net.ipv4.tcp_congestion_control", "bbr; reboot", "net.ipv4.tcp_congestion_control: 'bbr; reboot' is not a name such as cubic or bbr")]
    public void SysctlValuesAreTypedAndInTheirSafeRange_RefusedWithTheKeyAndTheReason(string key, string value, string? message)
    {
        var spec = Valid();
        spec.Sysctls = new Dictionary<string, string> { [key] = value };
        var errors = NetworkTuningValidator.Validate(spec);
        if (message is null) Assert.Empty(errors);
        else Assert.Equal(($"spec.sysctls[{key}]", message), (Assert.Single(errors).Field, errors[0].Message));
    }

    [Fact]
    public void EveryAllowedSysctlHasARule_AndTheKernelsDefaultValuesPass()
    {
        Assert.Equal(SysctlAllowList.Keys.Order(StringComparer.Ordinal), SysctlAllowList.Rules.Keys.Order(StringComparer.Ordinal));
        // Debian 12's kernel defaults (kernel 6.18, as read on this VM): a rule that refuses a default is wrong.
        var defaults = new Dictionary<string, string>
        {
            ["net.core.somaxconn"] = "4096", ["net.core.netdev_max_backlog"] = "1000", ["net.core.netdev_budget"] = "300",
            ["net.core.rmem_max"] = "212992", ["net.core.wmem_max"] = "212992", ["net.core.rmem_default"] = "212992",
            ["net.core.wmem_default"] = "212992", ["net.core.busy_poll"] = "0", ["net.core.busy_read"] = "0",
            ["net.core.rps_sock_flow_entries"] = "0", ["net.core.default_qdisc"] = "pfifo_fast", ["net.ipv4.tcp_rmem"] = "4096\t131072\t6291456",
            ["net.ipv4.tcp_wmem"] = "4096\t16384\t4194304", ["net.ipv4.tcp_max_syn_backlog"] = "1024", ["net.ipv4.tcp_fastopen"] = "1",
            ["net.ipv4.tcp_tw_reuse"] = "2", ["net.ipv4.tcp_fin_timeout"] = "60", ["net.ipv4.tcp_keepalive_time"] = "7200",
            ["net.ipv4.tcp_max_tw_buckets"] = "65536", ["net.ipv4.tcp_congestion_control"] = "cubic", ["net.ipv4.tcp_slow_start_after_idle"] = "1",
            ["net.ipv4.tcp_notsent_lowat"] = "4294967295", ["net.ipv4.ip_local_port_range"] = "32768\t60999", ["vm.swappiness"] = "60",
            ["vm.max_map_count"] = "65530", ["vm.min_free_kbytes"] = "67584", ["vm.dirty_ratio"] = "20", ["vm.dirty_background_ratio"] = "10",
            ["vm.zone_reclaim_mode"] = "0",
        };
        Assert.Equal(SysctlAllowList.Keys.Order(StringComparer.Ordinal), defaults.Keys.Order(StringComparer.Ordinal));
        Assert.All(defaults, kv => Assert.Null(SysctlAllowList.Check(kv.Key, kv.Value)));
    }

    // --- rollout ---

    public static TheoryData<IntOrString, bool> MaxUnavailableCases => new()
    {
        { "40%", true }, { "100%", true }, { "1%", true }, { 1, true }, { 25, true }, { "3", true },
        { 0, false }, { "0", false }, { "0%", false }, { "101%", false }, { "abc", false }, { "-1", false },
        { "1.5", false }, { "40 %", false }, { "", false },
    };

    [Theory]
    [MemberData(nameof(MaxUnavailableCases))]
    public void MaxUnavailableIsACountOrPercentageLettingANodeProceed(IntOrString maxUnavailable, bool valid)
    {
        var spec = Valid();
        spec.Rollout = new RolloutSpec { MaxUnavailable = maxUnavailable };
        Assert.Equal(valid ? [] : [(null, "spec.rollout.maxUnavailable")], Errors(spec));
    }

    [Fact]
    public void RolloutWithoutMaxUnavailablePasses()
    {
        var spec = Valid();
        spec.Rollout = new RolloutSpec { MaxUnavailable = null, DryRun = true };
        Assert.Empty(Errors(spec));
    }

    // --- dataPlane ---

    [Fact]
    public void ADisabledDataPlaneIsNotChecked()
    {
        var spec = Valid();
        spec.DataPlane = new DataPlaneSpec { Enabled = false, Image = null, Mode = DataPlaneMode.Proxy, Port = 0 };
        Assert.Empty(Errors(spec));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void AnEnabledDataPlaneNeedsAnImage(string? image)
    {
        var spec = Valid();
        spec.DataPlane!.Image = image;
        Assert.Equal([("dataplane-image", "spec.dataPlane.image")], Errors(spec));
    }

    [Fact]
    public void StaticFilesModeNeedsAHostPath()
    {
        var spec = Valid();
        spec.DataPlane!.StaticFiles = null;
        Assert.Equal([("dataplane-static-root", "spec.dataPlane.staticFiles.hostPath")], Errors(spec));
        spec.DataPlane.StaticFiles = new StaticFilesSpec { HostPath = "" };
        Assert.Equal([("dataplane-static-root", "spec.dataPlane.staticFiles.hostPath")], Errors(spec));
    }

    [Fact]
    public void ProxyModeNeedsUpstreamsAndNoHostPath()
    {
        var spec = Valid();
        spec.DataPlane!.Mode = DataPlaneMode.Proxy;
        spec.DataPlane.StaticFiles = null;
        Assert.Equal([("dataplane-proxy-upstreams", "spec.dataPlane.proxy.upstreams")], Errors(spec));
        spec.DataPlane.Proxy = new ProxySpec { Upstreams = [] };
        Assert.Equal([("dataplane-proxy-upstreams", "spec.dataPlane.proxy.upstreams")], Errors(spec));
        spec.DataPlane.Proxy.Upstreams.Add("10.0.0.5:8080");
        Assert.Empty(Errors(spec));
    }

    [Theory]
    [InlineData(SeccompProfileKind.Localhost, null, "seccomp-localhost-profile")]
    [InlineData(SeccompProfileKind.Localhost, "", "seccomp-localhost-profile")]
    [InlineData(SeccompProfileKind.NetTune, "x.json", "seccomp-localhost-profile")]
    [InlineData(SeccompProfileKind.RuntimeDefault, "x.json", "seccomp-localhost-profile")]
    [InlineData(SeccompProfileKind.Localhost, "a/../../etc/shadow", "seccomp-localhost-relative")]
    [InlineData(SeccompProfileKind.Localhost, "team/dataplane.json", null)]
    [InlineData(SeccompProfileKind.NetTune, null, null)]
    [InlineData(SeccompProfileKind.RuntimeDefault, null, null)]
    public void ALocalhostSeccompProfileIsNamedOnlyWithTypeLocalhostAndStaysInTheKubeletsFolder(SeccompProfileKind kind, string? profile, string? rule)
    {
        var spec = Valid();
        spec.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = kind, LocalhostProfile = profile };
        Assert.Equal(rule is null ? [] : [(rule, "spec.dataPlane.seccompProfile.localhostProfile")], Errors(spec));
    }

    [Theory]
    [InlineData(0, 9180, "spec.dataPlane.port")]
    [InlineData(65536, 9180, "spec.dataPlane.port")]
    [InlineData(8080, 0, "spec.dataPlane.adminPort")]
    [InlineData(8080, 70000, "spec.dataPlane.adminPort")]
    public void PortsOutOfRangeFail(int port, int adminPort, string field)
    {
        var spec = Valid();
        spec.DataPlane!.Port = port;
        spec.DataPlane.AdminPort = adminPort;
        Assert.Equal([(null, field)], Errors(spec));
    }

    [Theory]
    [InlineData(8080, 8080)]
    [InlineData(8081, 8080)] // the admin port of NUMA node 1
    [InlineData(8143, 8080)] // of NUMA node 63
    public void ThePortMustNotBeAnyNumaNodesAdminPort(int port, int adminPort)
    {
        var spec = Valid();
        spec.DataPlane!.Port = port;
        spec.DataPlane.AdminPort = adminPort;
        var error = Single(spec);
        Assert.Equal(("dataplane-ports", "spec.dataPlane.port"), (error.RuleId, error.Field));
        Assert.Contains("adminPort + N", error.Message);
    }

    [Theory]
    [InlineData(8144, 8080)]
    [InlineData(8079, 8080)]
    public void APortBesideTheAdminPortsPasses(int port, int adminPort)
    {
        var spec = Valid();
        spec.DataPlane!.Port = port;
        spec.DataPlane.AdminPort = adminPort;
        Assert.Empty(NetworkTuningValidator.Validate(spec));
    }

    // --- all together ---

    [Fact]
    public void EveryProblemIsReportedAtOnce()
    {
        var spec = Valid();
        spec.Nic!.Channels = new ChannelsSpec { Combined = 2, Rx = 2 };
        spec.Hugepages![1].Size = "2Mi";
        spec.Sysctls!["kernel.panic"] = "1";
        spec.Rollout = new RolloutSpec { MaxUnavailable = "0%" };
        spec.DataPlane!.Image = null;
        Assert.Equal(
        [
            ("channels-combined-excludes-rxtx", "spec.nic.channels"),
            ("hugepages-unique-size", "spec.hugepages"),
            ("sysctls-allowed", "spec.sysctls"),
            (null, "spec.rollout.maxUnavailable"),
            ("dataplane-image", "spec.dataPlane.image"),
        ], Errors(spec));
    }

    [Fact]
    public void EveryRuleIdTheValidatorReportsIsAKnownRule()
    {
        // Drive each rule once and collect what it reports; an id outside RuleIds would be a typo in the validator.
        var broken = new List<NetworkTuningSpec>();
        var s1 = Valid(); s1.Nic!.Interfaces = null; broken.Add(s1);
        var s2 = Valid(); s2.Nic!.Interfaces = new InterfaceSelector(); broken.Add(s2);
        var s3 = Valid(); s3.Nic!.Channels = new ChannelsSpec { Combined = 1, Tx = 1 }; broken.Add(s3);
        var s4 = Valid(); s4.Nic!.Channels = new ChannelsSpec { MatchLocalCpus = true, Rx = 1 }; broken.Add(s4);
        var s5 = Valid(); s5.Nic!.Channels = new ChannelsSpec(); broken.Add(s5);
        var s6 = Valid(); s6.Hugepages![1].Size = "2Mi"; broken.Add(s6);
        var s7 = Valid(); s7.Hugepages![0].PerNumaNode!.Add(new NumaNodePages { NumaNode = 1 }); broken.Add(s7);
        var s8 = Valid(); s8.Sysctls!["kernel.x"] = "1"; broken.Add(s8);
        var s9 = Valid(); s9.DataPlane!.Image = ""; broken.Add(s9);
        var s10 = Valid(); s10.DataPlane!.StaticFiles = null; broken.Add(s10);
        var s11 = Valid(); s11.DataPlane!.Mode = DataPlaneMode.Proxy; broken.Add(s11);
        var s12 = Valid(); s12.NodeSelector = null; broken.Add(s12);
        var s13 = Valid(); s13.AllNodes = true; broken.Add(s13);
        var s14 = Valid(); s14.DataPlane!.Port = s14.DataPlane.AdminPort + 1; broken.Add(s14);
        var s15 = Valid(); s15.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost }; broken.Add(s15);
        var s16 = Valid(); s16.DataPlane!.SeccompProfile = new DataPlaneSeccompSpec { Type = SeccompProfileKind.Localhost, LocalhostProfile = "../x.json" }; broken.Add(s16);
        var s17 = Valid(); s17.Nic!.Rss = new RssSpec { Equal = 2, Weights = [1] }; broken.Add(s17);
        var s18 = Valid(); s18.Nic!.Rss = new RssSpec { RxFlowHash = [new() { FlowType = "tcp4", Fields = "sd" }, new() { FlowType = "tcp4", Fields = "sd" }] }; broken.Add(s18);
        var s19 = Valid(); s19.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; s19.DataPlane!.Enabled = false; broken.Add(s19);
        var s20 = Valid(); s20.Nic!.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane }; broken.Add(s20);
        var reported = broken.SelectMany(NetworkTuningValidator.Validate).Select(e => e.RuleId).OfType<string>().ToHashSet();
        Assert.Equal(NetworkTuningValidator.RuleIds.Order(StringComparer.Ordinal), reported.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AlignmentNeedsTheDataPlaneAndLeavesChannelsAndRpsToIt()
    {
        var spec = Valid();
        spec.Nic!.Channels = null;
        spec.Nic.Rps = null;
        spec.Nic.IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.AlignWithDataPlane };
        Assert.Empty(Errors(spec));

        spec.DataPlane!.Enabled = false;
        Assert.Equal([("align-needs-dataplane", "spec.nic.irqAffinity.policy")], Errors(spec));
        spec.DataPlane.Enabled = true;
        spec.Nic.Channels = new ChannelsSpec { Combined = 2 };
        Assert.Equal([("align-excludes-channels-rps", "spec.nic.irqAffinity.policy")], Errors(spec));
        spec.Nic.Channels = null;
        spec.Nic.Rps = new RpsSpec { Enabled = true };
        Assert.Equal([("align-excludes-channels-rps", "spec.nic.irqAffinity.policy")], Errors(spec));
        // RFS's table size alone is no RPS: allowed.
        spec.Nic.Rps = new RpsSpec { Enabled = false, FlowEntries = 4096 };
        Assert.Empty(Errors(spec));
    }

    // --- NodeState ---

    [Fact]
    public void NodeStateSpecsGetTheNicHugepagesAndSysctlChecks()
    {
        var spec = new NodeStateSpec
        {
            NodeName = "node-1",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Names = ["eth0"] }, Channels = new ChannelsSpec { Combined = 2, Tx = 2 } },
            Hugepages = [new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 1 }, new HugepagesSpec { Size = "1Gi", PagesPerNumaNode = 2 }],
            Sysctls = new Dictionary<string, string> { ["vm.overcommit_memory"] = "1" },
        };
        Assert.Equal(
            [("channels-combined-excludes-rxtx", "spec.nic.channels"), ("hugepages-unique-size", "spec.hugepages"), ("sysctls-allowed", "spec.sysctls")],
            NetworkTuningValidator.Validate(spec).Select(e => (e.RuleId, e.Field)));
    }

    [Fact]
    public void AValidNodeStateSpecPasses()
    {
        var spec = new NodeStateSpec
        {
            NodeName = "node-1",
            Nic = new NicSpec { Interfaces = new InterfaceSelector { Drivers = ["veth"] }, Channels = new ChannelsSpec { Rx = 2, Tx = 2 } },
            Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 64 }],
            Sysctls = new Dictionary<string, string> { ["net.core.busy_poll"] = "50" },
        };
        Assert.Empty(NetworkTuningValidator.Validate(spec));
    }
}
