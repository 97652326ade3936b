using NetTune.Agent.Core.Apply;
using NetTune.Agent.Core.Host;
using NetTune.Agent.Core.Journal;
using NetTune.Agent.Core.Topology;
using NetTune.Fixtures.Hosts;

namespace NetTune.Agent.Tests;

/// <summary>A fresh fixture host root in a temporary folder, with a journal folder beside it; deleted on dispose.</summary>
public sealed class FixtureHost : IDisposable
{
    private FixtureHost(string dir, Action<string> write)
    {
        Dir = dir;
        Root = Path.Join(dir, "root");
        JournalDir = Path.Join(dir, "journal");
        write(Root);
        Fs = new HostFileSystem(Root);
    }

    public string Dir { get; }
    public string Root { get; }
    public string JournalDir { get; }
    public HostFileSystem Fs { get; }

    public static FixtureHost BondedVlan() => Create(FixtureHosts.WriteBondedVlan);
    public static FixtureHost TwoSocket() => Create(FixtureHosts.WriteTwoSocket);
    public static FixtureHost Cpu256() => Create(FixtureHosts.WriteCpu256);
    public static FixtureHost ThisVm() => Create(FixtureHosts.WriteThisVm);
    public static FixtureHost DriverZoo() => Create(FixtureHosts.WriteDriverZoo);
    public static FixtureHost Mlx5Bond() => Create(FixtureHosts.WriteMlx5Bond);

    private static FixtureHost Create(Action<string> write) =>
        new(Directory.CreateTempSubdirectory("nettune-agent-fixture-").FullName, write);

    public HostSnapshot Discover() => new TopologyDiscovery(Fs, new SimulatedChannelControl(Fs)).Discover();

    public TuningEngine Engine(IHostFileSystem? fs = null, Action<string>? journalFault = null, HugepagesRaiseOptions? hugepages = null)
    {
        fs ??= Fs;
        return new TuningEngine(fs, new SimulatedChannelControl(fs), new JournalStore(JournalDir, journalFault)) { HugepagesRaise = hugepages ?? new() };
    }

    public string Read(string rel) => File.ReadAllText(Path.Join(Root, rel)).TrimEnd('\n');

    public void Write(string rel, string value) => File.WriteAllText(Path.Join(Root, rel), value + "\n");

    /// <summary>Every file's bytes and every link's target, by relative path: the whole tree, for byte-exact comparisons.</summary>
    public SortedDictionary<string, string> TreeImage()
    {
        var image = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Walk(new DirectoryInfo(Root));
        return image;

        void Walk(DirectoryInfo dir)
        {
            foreach (var e in dir.EnumerateFileSystemInfos())
            {
                var rel = Path.GetRelativePath(Root, e.FullName);
                if (e.LinkTarget is { } target) image[rel] = "-> " + target;
                else if (e is DirectoryInfo d) { image[rel + "/"] = ""; Walk(d); }
                else image[rel] = Convert.ToBase64String(File.ReadAllBytes(e.FullName));
            }
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Thrown by <see cref="CrashingFileSystem"/> to stand for the agent dying at that point.</summary>
public sealed class SimulatedCrash(string where) : Exception($"simulated crash {where}");

/// <summary>A fixture root's real host file system with one behaviour changed: the writes.</summary>
public abstract class WriteInterceptingFileSystem(HostFileSystem inner) : IHostFileSystem
{
    protected HostFileSystem Inner => inner;
    public string Root => inner.Root;
    public long WriteCount => inner.WriteCount;
    public HostIoResult Read(string path) => inner.Read(path);
    public bool Exists(string path) => inner.Exists(path);
    public IReadOnlyList<string> List(string path) => inner.List(path);
    public string? ResolveLink(string path) => inner.ResolveLink(path);
    public abstract HostIoResult Write(string path, string value);
}

/// <summary>The real host file system of a fixture root that dies before its Nth write.</summary>
public sealed class CrashingFileSystem(HostFileSystem inner, int crashBeforeWrite) : WriteInterceptingFileSystem(inner)
{
    private int _writes;

    public override HostIoResult Write(string path, string value)
    {
        if (++_writes == crashBeforeWrite) throw new SimulatedCrash($"before write {crashBeforeWrite} ({path})");
        return Inner.Write(path, value);
    }
}

public static class TreeAssert
{
    /// <summary>Equal trees, or a failure naming each differing path with both contents decoded.</summary>
    public static void Same(SortedDictionary<string, string> expected, SortedDictionary<string, string> actual)
    {
        var diffs = expected.Keys.Union(actual.Keys).Where(k => !expected.TryGetValue(k, out var a) || !actual.TryGetValue(k, out var b) || a != b)
            .Select(k => $"{k}: expected {Show(expected, k)}, actual {Show(actual, k)}").ToArray();
        Assert.True(diffs.Length == 0, $"{diffs.Length} paths differ:\n" + string.Join("\n", diffs.Take(20)));
    }

    private static string Show(SortedDictionary<string, string> tree, string key)
    {
        if (!tree.TryGetValue(key, out var v)) return "(missing)";
        if (v.StartsWith("-> ", StringComparison.Ordinal) || v.Length == 0) return v;
        return "'" + System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(v)).Replace("\n", "\\n") + "'";
    }
}
