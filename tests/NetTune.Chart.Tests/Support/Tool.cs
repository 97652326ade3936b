using System.Diagnostics;
using System.Text;
using NetTune.LocalCluster;
using NetTune.Testing.Cluster;

namespace NetTune.Chart.Tests.Support;

public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;
}

/// <summary>Runs the command-line tools the chart is checked with: helm, promtool, the repo's hack scripts.</summary>
public static class Tool
{
    public static string RepoRoot => KubeCluster.RepoRoot;
    public static string ChartDir => Path.Combine(RepoRoot, "charts", "nettune");

    public static async Task<ToolResult> RunAsync(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null,
        string? workingDirectory = null, TimeSpan? timeout = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoRoot,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(cts.Token);
            // A child left running with our pipes would hold them open: the reads count against the timeout too.
            await Task.WhenAll(stdout, stderr).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeout ?? TimeSpan.FromMinutes(3)}");
        }
        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }

    private static readonly SemaphoreSlim HelmLock = new(1, 1);
    private static readonly Dictionary<string, string> HelmPaths = new();

    /// <summary>The helm executable of a major version ("3" or "4"), fetched once by hack/helm.sh.</summary>
    public static async Task<string> HelmAsync(string major)
    {
        await HelmLock.WaitAsync();
        try
        {
            if (HelmPaths.TryGetValue(major, out var known)) return known;
            var result = await RunAsync("bash", [Path.Combine(RepoRoot, "hack", "helm.sh"), major], timeout: TimeSpan.FromMinutes(5));
            Assert.True(result.ExitCode == 0, $"hack/helm.sh {major} failed:\n{result.Output}");
            var path = result.Stdout.Trim().Split('\n')[^1];
            Assert.True(File.Exists(path), $"hack/helm.sh printed '{path}', which is no file");
            HelmPaths[major] = path;
            return path;
        }
        finally
        {
            HelmLock.Release();
        }
    }

    /// <summary>Runs helm with its own config, cache and data folders so nothing of the user's leaks in.</summary>
    public static async Task<ToolResult> HelmRunAsync(string major, params string[] args)
    {
        var helm = await HelmAsync(major);
        var home = Path.Combine(Path.GetTempPath(), "nettune-chart-tests-helm" + major);
        var env = new Dictionary<string, string>
        {
            ["HELM_CONFIG_HOME"] = Path.Combine(home, "config"),
            ["HELM_CACHE_HOME"] = Path.Combine(home, "cache"),
            ["HELM_DATA_HOME"] = Path.Combine(home, "data"),
        };
        return await RunAsync(helm, args, env);
    }

    public static async Task<string> HelmOkAsync(string major, params string[] args)
    {
        var result = await HelmRunAsync(major, args);
        Assert.True(result.ExitCode == 0, $"helm {major} {string.Join(' ', args)} exited {result.ExitCode}:\n{result.Output}");
        return result.Stdout;
    }

    private static readonly SemaphoreSlim PromtoolLock = new(1, 1);
    private static string? _promtool;

    /// <summary>promtool from Debian's prometheus package, installed (once) by hack/prometheus.sh when missing.</summary>
    public static async Task<string> PromtoolAsync()
    {
        await PromtoolLock.WaitAsync();
        try
        {
            if (_promtool is not null) return _promtool;
            var result = await RunAsync("bash", [Path.Combine(RepoRoot, "hack", "prometheus.sh")], timeout: TimeSpan.FromMinutes(8));
            Assert.True(result.ExitCode == 0, $"hack/prometheus.sh failed:\n{result.Output}");
            var dir = result.Stdout.Trim().Split('\n')[^1];
            return _promtool = Path.Combine(dir, "promtool");
        }
        finally
        {
            PromtoolLock.Release();
        }
    }

    public static string TempDir(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static string Utf8(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
