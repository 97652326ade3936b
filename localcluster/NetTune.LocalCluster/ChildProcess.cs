using System.Diagnostics;

namespace NetTune.LocalCluster;

/// <summary>
/// A server process of the test cluster. It runs under a small shell watchdog that kills it when the test process
/// dies, so a crashed or killed test run never leaves an etcd or apiserver holding ports behind. A folder given as
/// the process's scratch space goes with it, however the process ended.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private const string Watchdog = """
        p=$1; log=$2; scratch=$3; shift 3
        exec >>"$log" 2>&1 </dev/null
        "$@" & c=$!
        trap 'kill -TERM $c 2>/dev/null' TERM INT
        ( while kill -0 "$p" 2>/dev/null; do sleep 1; done; kill -KILL "$c" 2>/dev/null ) & w=$!
        wait "$c"; rc=$?
        while kill -0 "$c" 2>/dev/null; do wait "$c"; rc=$?; done
        kill "$w" 2>/dev/null
        [ -n "$scratch" ] && rm -rf -- "$scratch"
        exit $rc
        """;

    private readonly Process _process;

    private ChildProcess(Process process, string name, string logPath)
    {
        _process = process;
        Name = name;
        LogPath = logPath;
    }

    public string Name { get; }
    public string LogPath { get; }
    public bool HasExited => _process.HasExited;

    /// <param name="scratchFolder">Removed once the process has ended, also when the owner died.</param>
    public static ChildProcess Start(string name, string executable, IEnumerable<string> args, string logPath,
        IReadOnlyDictionary<string, string>? environment = null, string? scratchFolder = null)
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Watchdog);
        psi.ArgumentList.Add("watchdog");
        psi.ArgumentList.Add(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.ArgumentList.Add(logPath);
        psi.ArgumentList.Add(scratchFolder ?? "");
        psi.ArgumentList.Add(executable);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {executable}");
        return new ChildProcess(process, name, logPath);
    }

    /// <summary>The last lines of the process's log, for error messages.</summary>
    public string Tail(int lines = 30)
    {
        try
        {
            var all = File.ReadAllLines(LogPath);
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>
    /// Polls <paramref name="ready"/> until it says yes, failing at once (with the log's end) when the process exits
    /// and after <paramref name="timeout"/>; connection errors while the process comes up count as "not yet".
    /// </summary>
    public async Task WaitUntilReadyAsync(string what, Func<Task<bool>> ready, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        Exception? last = null;
        while (deadline.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            if (HasExited)
                throw new InvalidOperationException($"{Name} exited while waiting for {what}; its log ends:\n{Tail()}");
            try
            {
                if (await ready().ConfigureAwait(false)) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException or k8s.Autorest.HttpOperationException)
            {
                last = e;
            }
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
        throw new TimeoutException($"timed out after {timeout.TotalSeconds:0}s waiting for {what} ({last?.Message}); {Name}'s log ends:\n{Tail()}");
    }

    /// <summary>SIGTERM, then SIGKILL of the whole tree after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (_process.HasExited) return;
        Posix.Kill(_process.Id, Posix.SigTerm);
        using var cts = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _process.Dispose();
    }
}

internal static class Posix
{
    public const int SigTerm = 15;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int sig);

    public static void Kill(int pid, int signal) => _ = SysKill(pid, signal);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    public static extern uint GetEuid();
}
