using System.Diagnostics;

namespace NetTune.Operator.Bench;

/// <summary>A running operator process: its output goes to a log file; disposing kills it.</summary>
public sealed class OperatorRun : IAsyncDisposable
{
    private readonly StreamWriter _log;

    public OperatorRun(Process process, string logPath, int metricsPort)
    {
        Process = process;
        _log = File.CreateText(logPath);
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{metricsPort}"), Timeout = TimeSpan.FromSeconds(5) };
    }

    public Process Process { get; }

    /// <summary>The operator's metrics port: /readyz and /metrics.</summary>
    public HttpClient Http { get; }

    private void Write(string? line)
    {
        if (line is null) return;
        lock (_log) _log.WriteLine(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        await Process.WaitForExitAsync();
        Process.Dispose();
        Http.Dispose();
        lock (_log) _log.Dispose();
    }
}
