using System.Diagnostics;

namespace NetTune.LocalCluster;

/// <summary>
/// Finds the cluster's binaries. The control plane (etcd, kube-apiserver, kube-controller-manager): $KUBEBUILDER_ASSETS
/// when set (the envtest convention), else the cache that hack/kube-assets.sh fills, building it on first use. The
/// node (kubelet, kube-scheduler, pause): $KUBEBUILDER_ASSETS when it has them, else the same cache (the script says
/// which ones the user's folder lacks).
/// </summary>
public static class KubeAssets
{
    public static readonly string[] Binaries = ["etcd", "kube-apiserver", "kube-controller-manager"];

    public static async Task<string> LocateAsync(CancellationToken ct = default, string role = "control-plane")
    {
        if (role == "control-plane" && Environment.GetEnvironmentVariable("KUBEBUILDER_ASSETS") is { Length: > 0 } userAssets)
        {
            var missing = Binaries.Where(b => !File.Exists(Path.Combine(userAssets, b))).ToList();
            if (missing.Count > 0)
                throw new InvalidOperationException($"KUBEBUILDER_ASSETS={userAssets} lacks {string.Join(", ", missing)}");
            return userAssets;
        }

        // The script answers at once from its cache; otherwise it builds (minutes), printing progress on stderr.
        var script = Path.Combine(KubeCluster.RepoRoot, "hack", "kube-assets.sh");
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(role);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not run {script}");
        var output = await p.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        var folder = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (p.ExitCode != 0 || folder is null || !Directory.Exists(folder))
            throw new InvalidOperationException($"{script} {role} failed (exit {p.ExitCode}); see its messages above");
        return folder;
    }
}
