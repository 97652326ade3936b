using System.Diagnostics;

namespace NetTune.Agent;

/// <summary>
/// Runs the configured command that restarts this node's kubelet, such as
/// "nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart kubelet" from the privileged agent pod.
/// The command is split on spaces and run without a shell; its exit code and the end of its output are reported.
/// </summary>
public sealed class KubeletRestarter(string command)
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    public string Command => command;

    public async Task<(bool Ok, string Detail)> RunAsync(CancellationToken ct)
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
