using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace NetTune.Chart.Tests.Support;

/// <summary>A server process a test starts and stops: its output is kept for the failure message.</summary>
public sealed class Daemon : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private Daemon(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }
    public bool HasExited => _process.HasExited;

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public static Daemon Start(string name, string file, IEnumerable<string> args, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var daemon = new Daemon(name, process);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        if (!process.Start()) throw new InvalidOperationException($"could not start {name}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    /// <summary>
    /// Runs a referenced project's executable from that project's own output folder (built with the tests, same
    /// configuration): its deps.json there is its own, unmixed with the other executables the tests reference.
    /// </summary>
    public static Daemon StartProject(string name, string projectDir, string assembly, IEnumerable<string> args)
    {
        // .../bin/<Configuration>/<tfm>/ of the test assembly.
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var path = Path.Combine(Tool.RepoRoot, projectDir, "bin", tfmDir.Parent!.Name, tfmDir.Name, assembly);
        if (!File.Exists(path)) throw new FileNotFoundException($"{name}: {path} is not built", path);
        return Start(name, "dotnet", [path, .. args]);
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            if (_log.Length < 200_000) _log.AppendLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process.HasExited)
        {
            _process.Dispose();
            return;
        }
        try
        {
            // SIGTERM first: the components drain and exit on it.
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    /// <summary>A loopback port nothing listens on now.</summary>
    public static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
