using NetTune.DataPlane;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>The hugetlb limit of the data plane's cgroup, as a kubelet sets it for a pod that requests hugepages-2Mi.</summary>
public sealed class HugepageBudgetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nettune-hugetlb-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Write(string path, string text)
    {
        var full = Path.Combine(_root, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text);
    }

    [Fact]
    public void CgroupV2_TheLimitLessWhatIsInUse()
    {
        // A container in its own cgroup namespace sees its cgroup at the root of the mount.
        Write("proc/self/cgroup", "0::/\n");
        Write("sys/fs/cgroup/hugetlb.2MB.max", "16777216\n");
        Write("sys/fs/cgroup/hugetlb.2MB.current", "2097152\n");
        Assert.Equal(14L << 20, HugepageBudget.Read(_root));
    }

    [Fact]
    public void CgroupV2_AtTheProcesssOwnPath_MaxMeansNoLimit()
    {
        Write("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
        Write("sys/fs/cgroup/kubepods/pod1/ctr/hugetlb.2MB.max", "max\n");
        Assert.Equal(long.MaxValue, HugepageBudget.Read(_root));
        Write("sys/fs/cgroup/kubepods/pod1/ctr/hugetlb.2MB.max", "4194304\n");
        Assert.Equal(4L << 20, HugepageBudget.Read(_root));
    }

    [Fact]
    public void CgroupV1_TheHugetlbController()
    {
        Write("proc/self/cgroup", "12:hugetlb:/kubepods/pod1/ctr\n11:memory:/kubepods/pod1/ctr\n0::/\n");
        Write("sys/fs/cgroup/hugetlb/kubepods/pod1/ctr/hugetlb.2MB.limit_in_bytes", "8388608\n");
        Write("sys/fs/cgroup/hugetlb/kubepods/pod1/ctr/hugetlb.2MB.usage_in_bytes", "0\n");
        Assert.Equal(8L << 20, HugepageBudget.Read(_root));
    }

    [Fact]
    public void NoHugetlbControllerLeavesItToTheKernelsPool()
    {
        Write("proc/self/cgroup", "11:memory:/x\n0::/\n");
        Assert.Equal(long.MaxValue, HugepageBudget.Read(_root));
        // Usage above the limit leaves nothing, never a negative budget.
        Write("sys/fs/cgroup/hugetlb.2MB.max", "2097152\n");
        Write("sys/fs/cgroup/hugetlb.2MB.current", "4194304\n");
        Assert.Equal(0, HugepageBudget.Read(_root));
    }
}
