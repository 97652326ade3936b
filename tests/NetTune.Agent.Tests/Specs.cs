using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Tests;

/// <summary>NodeState specs the tests share.</summary>
public static class Specs
{
    /// <summary>Every kind of knob on the two-socket fixture: eth1 down to 4 channels (eth0 already has 4), NUMA-local IRQs, RPS/RFS/XPS, hugepages, sysctls.</summary>
    public static NodeStateSpec Full() => new()
    {
        NodeName = "node-a",
        Nic = new NicSpec
        {
            Interfaces = new InterfaceSelector { Names = ["eth*"] },
            Channels = new ChannelsSpec { Combined = 4 },
            IrqAffinity = new IrqAffinitySpec { Policy = IrqAffinityPolicy.NumaLocalSpread, ReservedCpus = "0,8" },
            Rps = new RpsSpec { Enabled = true, FlowEntries = 32768 },
            Xps = new XpsSpec { Enabled = true },
        },
        Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = 512, PerNumaNode = [new NumaNodePages { NumaNode = 1, Pages = 1024 }] }],
        Sysctls = new() { ["net.core.somaxconn"] = "65535", ["net.ipv4.tcp_rmem"] = "4096 262144 16777216", ["net.core.busy_poll"] = "50" },
    };
}
