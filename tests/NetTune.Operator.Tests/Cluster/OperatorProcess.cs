using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace NetTune.Operator.Tests.Cluster;

/// <summary>The operator executable as a child process (the build copies it next to the tests), with its logs kept.</summary>
public sealed class OperatorProcess : IDisposable
{
    private readonly List<string> _logs = [];

    private OperatorProcess(Process process, int port)
    {
        Process = process;
        Port = port;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
    }

    public Process Process { get; }
    public int Port { get; }
    public HttpClient Http { get; }

    public IReadOnlyList<string> Logs
    {
        get { lock (_logs) return [.. _logs]; }
    }

    public static OperatorProcess Start(string kubeconfig, string ns, params string[] extra)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "nettune-operator.dll"), "--kubeconfig", kubeconfig, "--namespace", ns, "--metrics-port", port.ToString() }.Concat(extra))
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var op = new OperatorProcess(process, port);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (op._logs) op._logs.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (op._logs) op._logs.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return op;
    }

    public async Task<string?> MetricsAsync()
    {
        try { return await Http.GetStringAsync("/metrics"); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return null; }
    }

    public async Task<bool> ReadyAsync()
    {
        try { return (await Http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK; }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
    }

    public void Dispose()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.WaitForExit(10_000);
        Process.Dispose();
        Http.Dispose();
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
