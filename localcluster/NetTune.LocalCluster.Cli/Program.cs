using System.Runtime.InteropServices;
using NetTune.LocalCluster;

// nettune-local-cluster up KUBECONFIG_OUT [--node NAME] [--cpu-manager-policy static|none] [--label k=v]...
//                           [--guest-node NAME] [--guest-accel auto|tcg|kvm] [--registry]
//   Runs the local cluster until SIGTERM or Ctrl-C (for `make demo`): etcd, kube-apiserver, kube-controller-manager,
//   and with --node one real node of this machine (kubelet, containerd, bridge CNI) and kube-scheduler; with
//   --guest-node a QEMU guest node (2 NUMA nodes, a 4-queue NIC; simulated hardware, a real kernel and kubelet); with
//   --registry an image registry on 127.0.0.2 (TLS, basic auth) the local node pulls from.
//   Writes an admin kubeconfig to KUBECONFIG_OUT once ready, and beside it the registry's address and credentials
//   (registry.json for the push commands, registry.env for shells, registry-dockerconfig.json for a pull Secret);
//   removes them again on exit.
// nettune-local-cluster push-image REGISTRY_JSON ARCHIVE REPOSITORY:TAG
//   Pushes an OCI image archive to that registry; prints HOST/REPOSITORY@DIGEST.
// nettune-local-cluster push-chart REGISTRY_JSON HELM CHART_DIR
//   helm package + helm push of a chart to oci://HOST/charts; prints the chart's oci:// reference and version.
// nettune-local-cluster image NAME ENTRYPOINT OUT PAYLOAD_DIR [--lib PATH]... [--file PATH]... [--env K=V]... [--user UID:GID]
//   Writes an OCI image archive: PAYLOAD_DIR at /app, the libraries ldd lists, the --lib ones (dlopen'ed) and the
//   --file ones (host programs such as nsenter), each at its host path with the libraries it needs.
return args.FirstOrDefault() switch
{
    "up" when args.Length >= 2 => await UpAsync(args[1], args[2..]),
    "image" when args.Length >= 5 => Image(args[1], args[2], args[3], args[4], args[5..]),
    "push-image" when args.Length == 4 && args[3].Contains(':') => await PushImageAsync(args[1], args[2], args[3]),
    "push-chart" when args.Length == 4 => await PushChartAsync(args[1], args[2], args[3]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: nettune-local-cluster up KUBECONFIG_OUT [--node NAME] [--cpu-manager-policy static|none] [--label KEY=VALUE]...");
    Console.Error.WriteLine("                                [--guest-node NAME] [--guest-accel auto|tcg|kvm] [--registry]");
    Console.Error.WriteLine("       nettune-local-cluster push-image REGISTRY_JSON ARCHIVE REPOSITORY:TAG");
    Console.Error.WriteLine("       nettune-local-cluster push-chart REGISTRY_JSON HELM CHART_DIR");
    Console.Error.WriteLine("       nettune-local-cluster image NAME ENTRYPOINT OUT_ARCHIVE PAYLOAD_DIR [--lib PATH]... [--file PATH]... [--env KEY=VALUE]... [--user UID:GID]");
    return 2;
}

static async Task<int> UpAsync(string kubeconfigOut, string[] rest)
{
    kubeconfigOut = Path.GetFullPath(kubeconfigOut);
    NodeOptions? node = null;
    GuestNodeOptions? guest = null;
    var registry = false;
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
            case "--registry":
                registry = true;
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
        (guest is null ? "" : $", the guest node {guest.Name} (simulated hardware: a QEMU guest)") +
        (registry ? ", an image registry" : "") + "...");
    var started = System.Diagnostics.Stopwatch.StartNew();
    await using var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { Node = node, GuestNode = guest, Registry = registry }, stop.Token);
    foreach (var (step, took) in cluster.Node?.StartTimes ?? [])
        Console.WriteLine($"  node: {step,-32} {took.TotalSeconds,5:0.0}s");
    foreach (var (step, took) in cluster.GuestNode?.StartTimes ?? [])
        Console.WriteLine($"  guest node: {step,-26} {took.TotalSeconds,5:0.0}s");
    if (cluster.GuestNode is { } g)
        Console.WriteLine($"  guest node console log: {g.ConsoleLog}");
    Directory.CreateDirectory(Path.GetDirectoryName(kubeconfigOut)!);
    var registryFiles = new[] { "registry.json", "registry.env", "registry-dockerconfig.json" }
        .Select(f => Path.Combine(Path.GetDirectoryName(kubeconfigOut)!, f)).ToArray();
    if (cluster.Registry?.Endpoint is { } r)
    {
        r.Save(registryFiles[0]);
        WritePrivate(registryFiles[1], $"REGISTRY_HOST={r.Host}\nREGISTRY_USERNAME={r.Username}\nREGISTRY_PASSWORD={r.Password}\nREGISTRY_CA={r.CaFile}\n");
        WritePrivate(registryFiles[2], r.DockerConfigJson());
        Console.WriteLine($"  image registry: https://{r.Host} (user {r.Username}; {registryFiles[0]})");
    }
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
    foreach (var file in registryFiles) File.Delete(file);
    return 0;
}

static void WritePrivate(string path, string text)
{
    File.WriteAllText(path, "");
    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    File.WriteAllText(path, text);
}

static async Task<int> PushImageAsync(string registryJson, string archive, string reference)
{
    var colon = reference.LastIndexOf(':');
    var endpoint = RegistryEndpoint.Load(registryJson);
    using var client = new RegistryClient(endpoint);
    var digest = await client.PushArchiveAsync(archive, reference[..colon], reference[(colon + 1)..]);
    Console.WriteLine($"{endpoint.Host}/{reference[..colon]}@{digest}");
    return 0;
}

static async Task<int> PushChartAsync(string registryJson, string helm, string chartDir)
{
    using var client = new RegistryClient(RegistryEndpoint.Load(registryJson));
    var (chart, version) = await client.PushChartAsync(helm, chartDir);
    Console.WriteLine($"{chart} {version}");
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
