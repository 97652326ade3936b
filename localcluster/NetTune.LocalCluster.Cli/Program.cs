using System.Runtime.InteropServices;
using NetTune.LocalCluster;

// nettune-local-cluster up KUBECONFIG_OUT [--node NAME] [--cpu-manager-policy static|none] [--label k=v]...
//                           [--guest-node NAME] [--guest-accel auto|tcg|kvm]
//   Runs the local cluster until SIGTERM or Ctrl-C (for `make demo`): etcd, kube-apiserver, kube-controller-manager,
//   and with --node one real node of this machine (kubelet, containerd, bridge CNI) and kube-scheduler; with
//   --guest-node a QEMU guest node (2 NUMA nodes, a 4-queue NIC; simulated hardware, a real kernel and kubelet).
//   Writes an admin kubeconfig to KUBECONFIG_OUT once ready and removes it again on exit.
// nettune-local-cluster image NAME ENTRYPOINT OUT PAYLOAD_DIR [--lib PATH]... [--file PATH]... [--env K=V]... [--user UID:GID]
//   Writes an OCI image archive: PAYLOAD_DIR at /app, the libraries ldd lists, the --lib ones (dlopen'ed) and the
//   --file ones (host programs such as nsenter), each at its host path with the libraries it needs.
return args.FirstOrDefault() switch
{
    "up" when args.Length >= 2 => await UpAsync(args[1], args[2..]),
    "image" when args.Length >= 5 => Image(args[1], args[2], args[3], args[4], args[5..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: nettune-local-cluster up KUBECONFIG_OUT [--node NAME] [--cpu-manager-policy static|none] [--label KEY=VALUE]...");
    Console.Error.WriteLine("                                [--guest-node NAME] [--guest-accel auto|tcg|kvm]");
    Console.Error.WriteLine("       nettune-local-cluster image NAME ENTRYPOINT OUT_ARCHIVE PAYLOAD_DIR [--lib PATH]... [--file PATH]... [--env KEY=VALUE]... [--user UID:GID]");
    return 2;
}

static async Task<int> UpAsync(string kubeconfigOut, string[] rest)
{
    kubeconfigOut = Path.GetFullPath(kubeconfigOut);
    NodeOptions? node = null;
    GuestNodeOptions? guest = null;
    var labels = new Dictionary<string, string>();
    for (var i = 0; i < rest.Length; i++)
    {
        switch (rest[i])
        {
            case "--node" when i + 1 < rest.Length:
                node = (node ?? new NodeOptions()) with { Name = rest[++i] };
                break;
            case "--cpu-manager-policy" when i + 1 < rest.Length:
                node = (node ?? new NodeOptions()) with { CpuManagerPolicy = rest[++i] };
                break;
            case "--guest-node" when i + 1 < rest.Length:
                guest = (guest ?? new GuestNodeOptions()) with { Name = rest[++i] };
                break;
            case "--guest-accel" when i + 1 < rest.Length && rest[i + 1] is "auto" or "tcg" or "kvm":
                guest = (guest ?? new GuestNodeOptions()) with { Accelerator = rest[++i] };
                break;
            case "--label" when i + 1 < rest.Length && rest[i + 1].Contains('='):
                var kv = rest[++i].Split('=', 2);
                labels[kv[0]] = kv[1];
                break;
            default:
                return Usage();
        }
    }
    if (node is not null) node = node with { Labels = labels };

    using var stop = new CancellationTokenSource();
    using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
    using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

    Console.WriteLine("starting etcd, kube-apiserver and kube-controller-manager on loopback" +
        (node is null && guest is null ? "..." : ", kube-scheduler") +
        (node is null ? "" : $", the real node {node.Name}") +
        (guest is null ? "" : $", the guest node {guest.Name} (simulated hardware: a QEMU guest)") + "...");
    var started = System.Diagnostics.Stopwatch.StartNew();
    await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { Node = node, GuestNode = guest }, stop.Token);
    foreach (var (step, took) in cluster.Node?.StartTimes ?? [])
        Console.WriteLine($"  node: {step,-32} {took.TotalSeconds,5:0.0}s");
    foreach (var (step, took) in cluster.GuestNode?.StartTimes ?? [])
        Console.WriteLine($"  guest node: {step,-26} {took.TotalSeconds,5:0.0}s");
    if (cluster.GuestNode is { } g)
        Console.WriteLine($"  guest node console log: {g.ConsoleLog}");
    Directory.CreateDirectory(Path.GetDirectoryName(kubeconfigOut)!);
    File.Copy(cluster.KubeconfigPath, kubeconfigOut + ".tmp", overwrite: true);
    File.Move(kubeconfigOut + ".tmp", kubeconfigOut, overwrite: true);
    Console.WriteLine($"cluster ready at {cluster.ApiServerUrl} in {started.Elapsed.TotalSeconds:0.0}s; kubeconfig: {kubeconfigOut}; logs: {cluster.Folder}");
    try
    {
        await Task.Delay(Timeout.Infinite, stop.Token);
    }
    catch (OperationCanceledException)
    {
    }
    Console.WriteLine("stopping the cluster");
    File.Delete(kubeconfigOut);
    return 0;
}

static int Image(string name, string entrypoint, string archive, string payload, string[] rest)
{
    var libs = new List<string>();
    var env = new Dictionary<string, string>();
    var user = "0:0";
    for (var i = 0; i < rest.Length; i++)
    {
        switch (rest[i])
        {
            case "--lib" or "--file" when i + 1 < rest.Length:
                libs.Add(rest[++i]);
                break;
            case "--user" when i + 1 < rest.Length:
                user = rest[++i];
                break;
            case "--env" when i + 1 < rest.Length && rest[i + 1].Contains('='):
                var kv = rest[++i].Split('=', 2);
                env[kv[0]] = kv[1];
                break;
            default:
                return Usage();
        }
    }
    if (!Directory.Exists(payload))
    {
        Console.Error.WriteLine($"no payload folder {payload}");
        return 1;
    }
    var rootfs = OciImage.RootfsFromFiles([(Path.GetFullPath(payload), "/app")], libs);
    OciImage.Write(archive, name, rootfs, [entrypoint], env, "/app", user);
    Console.WriteLine($"{OciImage.FullyQualified(name)} -> {archive} ({new FileInfo(archive).Length / 1048576.0:0.0} MiB)");
    return 0;
}
