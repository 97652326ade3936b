using System.Diagnostics;
using System.Globalization;

namespace NetTune.Agent;

/// <summary>How the agent gets this node's kubelet restarted when its capacity lacks hugepages the agent reserved.</summary>
public abstract class KubeletRestarter
{
    /// <summary>What is done, for status and logs: the command, or the file written.</summary>
    public abstract string Description { get; }

    /// <summary>Asks for the restart; <paramref name="reason"/> names the pages it is for.</summary>
    public abstract Task<(bool Ok, string Detail)> RunAsync(string reason, CancellationToken ct);

    /// <summary>The configured way, or null when the agent may only report KubeletRestartRequired.</summary>
    public static KubeletRestarter? From(string? command, string? requestFile) =>
        command is { Length: > 0 } ? new CommandKubeletRestarter(command)
        : requestFile is { Length: > 0 } ? new RequestFileKubeletRestarter(requestFile)
        : null;
}

/// <summary>
/// Runs the configured command, such as "nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet"
/// from a privileged agent pod with the host's PID namespace. The command is split on spaces and run without a shell;
/// its exit code and the end of its output are reported.
/// </summary>
public sealed class CommandKubeletRestarter(string command) : KubeletRestarter
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    public override string Description => command;

    public override async Task<(bool Ok, string Detail)> RunAsync(string reason, CancellationToken ct)
    {
        var parts = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var psi = new ProcessStartInfo(parts[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in parts.Skip(1)) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync(ct);
            var stderr = p.StandardError.ReadToEndAsync(ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(CommandTimeout);
            try
            {
                await p.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                p.Kill(entireProcessTree: true);
                return (false, $"'{command}' did not finish within {CommandTimeout.TotalSeconds:0} s");
            }
            var output = (await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false)).Trim();
            if (output.Length > 300) output = "…" + output[^300..];
            return (p.ExitCode == 0, $"'{command}' exited {p.ExitCode}" + (output.Length > 0 ? $": {output}" : ""));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (false, $"cannot run '{command}': {e.Message}");
        }
    }
}

/// <summary>
/// Writes a restart request into a file on a host folder the agent mounts, for something on the host that watches it
/// (a systemd path unit that restarts kubelet.service, see the agent's README). The agent needs neither the host's PID
/// namespace nor host tools; whoever watches the file decides how the kubelet is restarted.
/// </summary>
public sealed class RequestFileKubeletRestarter(string path) : KubeletRestarter
{
    public override string Description => $"a restart request in {path}";

    public override async Task<(bool Ok, string Detail)> RunAsync(string reason, CancellationToken ct)
    {
        try
        {
            var line = string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:O} {reason}\n");
            // Written whole and renamed into place: a watcher never reads half a request.
            var temporary = path + ".tmp";
            await File.WriteAllTextAsync(temporary, line, ct).ConfigureAwait(false);
            File.Move(temporary, path, overwrite: true);
            return (true, $"wrote a kubelet restart request to {path}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (false, $"cannot write the kubelet restart request {path}: {e.Message}");
        }
    }
}
