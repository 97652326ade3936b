using System.Diagnostics;

namespace NetTune.Agent.Tests;

/// <summary>A test that changes the real kernel: skipped, with the reason, unless the test process is root.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
            Skip = "needs root: this test changes real kernel settings (run the tests as root to include it)";
        else if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip"))
            Skip = "needs iproute2's ip";
    }
}

/// <summary>Global kernel tests change settings every process sees: they run one at a time, never beside each other.</summary>
[CollectionDefinition("global-kernel", DisableParallelization = true)]
public sealed class GlobalKernelCollection;

public static class Proc
{
    public static (int Code, string Stdout, string Stderr) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }

    public static string Check(string file, params string[] args)
    {
        var (code, stdout, stderr) = Run(file, args);
        Assert.True(code == 0, $"{file} {string.Join(' ', args)} exited {code}: {stderr}{stdout}");
        return stdout;
    }
}

/// <summary>Where the built agent executable is, for tests that run it as a child process.</summary>
public static class AgentBinary
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string DllPath
    {
        get
        {
            var config = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd('/'))!);
            var path = Path.Join(RepoRoot, "agent/NetTune.Agent/bin", config, "net10.0/NetTune.Agent.dll");
            Assert.True(File.Exists(path), $"the agent is not built at {path}");
            return path;
        }
    }

    /// <summary>
    /// The command line that runs the agent with <paramref name="args"/>: $NETTUNE_AGENT_BINARY when set (a published
    /// executable, such as the NativeAOT build of hack/images.sh), else dotnet with the built dll.
    /// </summary>
    public static string[] Command(params string[] args) =>
        Environment.GetEnvironmentVariable("NETTUNE_AGENT_BINARY") is { Length: > 0 } executable ? [executable, .. args] : ["dotnet", DllPath, .. args];

    private static string FindRepoRoot()
    {
        for (var dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
            if (File.Exists(Path.Join(dir, "Directory.Build.props")) && Directory.Exists(Path.Join(dir, "agent"))) return dir;
        throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
