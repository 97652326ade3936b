using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Api.V1Alpha1;
using Tmds.Linux;

namespace NetTune.Agent.Tests;

/// <summary>Hugepages on the real kernel: raised in steps, and lowered while a process still maps a page.</summary>
[Collection("global-kernel")]
public sealed class HugepagesKernelTests
{
    private const string Pool = "sys/devices/system/node/node0/hugepages/hugepages-2048kB";

    [RootFact]
    public unsafe void Hugepages_RaisedInSteps_ThenRevertedWhileAPageIsMapped_LeaveItAsSurplus_UntilItIsUnmapped()
    {
        var original = long.Parse(File.ReadAllText($"/{Pool}/nr_hugepages"));
        Assert.Equal("0", File.ReadAllText($"/{Pool}/surplus_hugepages").Trim());
        var journal = Directory.CreateTempSubdirectory("nettune-agent-kernel-").FullName;
        var fs = new HostFileSystem("/");
        void* page = null;
        const int PageBytes = 2 << 20;
        try
        {
            // Steps of one page: two writes for two more pages.
            var engine = new TuningEngine(fs, new EthtoolChannelControl(), new JournalStore(journal)) { HugepagesRaise = new() { StepBytes = PageBytes } };
            var spec = new NodeStateSpec { NodeName = "vm", Hugepages = [new HugepagesSpec { Size = "2Mi", PagesPerNumaNode = (int)original + 2 }] };
            var applied = engine.Apply(spec);
            Assert.True(applied.Kind == RunKind.Applied, applied.Message);
            Assert.Equal(2, fs.WriteCount);
            Assert.Equal(original + 2, long.Parse(File.ReadAllText($"/{Pool}/nr_hugepages")));

            // A process maps and touches one hugepage, as a pod's HugePages emptyDir would.
            page = LibC.mmap(null, PageBytes, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | 0x40000 /* MAP_HUGETLB */, -1, 0);
            Assert.True(page != LibC.MAP_FAILED, $"mmap MAP_HUGETLB: errno {LibC.errno}");
            *(byte*)page = 1;

            var reverted = engine.Revert();
            Assert.True(reverted.Kind == RunKind.Reverted, reverted.Message);
            var knob = reverted.Knobs.Single(k => k.Knob == "hugepages/node0/2Mi");
            Assert.Equal($"{original}", knob.Value);
            Assert.StartsWith("1 pages are still in use and stay allocated as surplus pages", knob.Message);
            Assert.Equal(original + 1, long.Parse(File.ReadAllText($"/{Pool}/nr_hugepages")));
            Assert.Equal("1", File.ReadAllText($"/{Pool}/surplus_hugepages").Trim());
            Assert.False(File.Exists(Path.Join(journal, "journal.json")));

            Assert.Equal(0, LibC.munmap(page, PageBytes));
            page = null;
            Assert.Equal(original, long.Parse(File.ReadAllText($"/{Pool}/nr_hugepages")));
            Assert.Equal("0", File.ReadAllText($"/{Pool}/surplus_hugepages").Trim());
        }
        finally
        {
            if (page is not null) LibC.munmap(page, PageBytes);
            if (long.Parse(File.ReadAllText($"/{Pool}/nr_hugepages")) != original) File.WriteAllText($"/{Pool}/nr_hugepages", $"{original}");
            Directory.Delete(journal, recursive: true);
        }
    }
}
