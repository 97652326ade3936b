using k8s.Models;

namespace NetTune.Operator.Bench;

/// <summary>
/// The status a kubelet writes for its Node, with the sizes real ones have (about 10 KiB as JSON, most of it the
/// images the node holds): the operator's Node watch receives all of it with every change.
/// </summary>
public static class KubeletNodeStatus
{
    private const int Images = 40;

    public static V1NodeStatus For(string node, int index)
    {
        var now = DateTime.UtcNow;
        var resources = new Dictionary<string, ResourceQuantity>
        {
            ["cpu"] = new("64"), ["memory"] = new("263782508Ki"), ["pods"] = new("110"), ["ephemeral-storage"] = new("959863856Ki"),
            ["hugepages-1Gi"] = new("0"), ["hugepages-2Mi"] = new("0"),
        };
        V1NodeCondition Condition(string type, string status, string reason, string message) =>
            new() { Type = type, Status = status, Reason = reason, Message = message, LastHeartbeatTime = now, LastTransitionTime = now };
        return new V1NodeStatus
        {
            Capacity = resources,
            Allocatable = resources,
            Conditions =
            [
                Condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                Condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                Condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                Condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            Addresses =
            [
                new V1NodeAddress { Type = "InternalIP", Address = $"10.{index / 65536 % 256}.{index / 256 % 256}.{index % 256}" },
                new V1NodeAddress { Type = "Hostname", Address = node },
            ],
            DaemonEndpoints = new V1NodeDaemonEndpoints { KubeletEndpoint = new V1DaemonEndpoint { Port = 10250 } },
            NodeInfo = new V1NodeSystemInfo
            {
                MachineID = Hex(index, 32), SystemUUID = Guid.NewGuid().ToString(),
                KernelVersion = "6.1.0-28-amd64", OsImage = "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion = "containerd://1.7.24",
                KubeletVersion = "v1.31.4", KubeProxyVersion = "v1.31.4", OperatingSystem = "linux", Architecture = "amd64",
            },
            Images = [.. Enumerable.Range(0, Images).Select(i => new V1ContainerImage
            {
                Names = [$"registry.example.com/team-{i % 7}/service-{i}@sha256:{Hex(index * Images + i, 64)}", $"registry.example.com/team-{i % 7}/service-{i}:v1.{i}.{index % 10}"],
                SizeBytes = 20_000_000L + i * 1_234_567L,
            })],
        };
    }

    private static string Hex(int seed, int length)
    {
        var bytes = new byte[length / 2];
        new Random(seed).NextBytes(bytes);
        return Convert.ToHexStringLower(bytes);
    }
}
