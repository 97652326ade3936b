// For `make demo`: gives a local cluster (no kubelets) nodes that behave like tuned machines. Creates Node objects
// labelled like the sample's selector, writes a two-socket fixture host root per node, runs the real node agent on
// each root and the operator against the cluster, and prints the NetworkTunings' status until stopped (SIGTERM).
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Api;
using NetTune.Api.V1Alpha1;
using NetTune.Fixtures.Hosts;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: nettune-demo-nodes KUBECONFIG STATE_DIR [NODES=3] [NAMESPACE=nettune-system]");
    return 2;
}
var kubeconfig = Path.GetFullPath(args[0]);
var stateDir = Path.GetFullPath(args[1]);
var count = args.Length > 2 ? int.Parse(args[2]) : 3;
var ns = args.Length > 3 ? args[3] : "nettune-system";

using var stop = new CancellationTokenSource();
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig));
try { await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } }); }
catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict) { }

var children = new List<Process>();
Process Run(string dll, string log, params string[] arguments)
{
    var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
    start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
    foreach (var a in arguments) start.ArgumentList.Add(a);
    var p = Process.Start(start)!;
    var writer = new StreamWriter(log, append: true) { AutoFlush = true };
    p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (writer) writer.WriteLine(e.Data); };
    p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (writer) writer.WriteLine(e.Data); };
    p.BeginOutputReadLine();
    p.BeginErrorReadLine();
    children.Add(p);
    return p;
}

try
{
    for (var i = 1; i <= count; i++)
    {
        var node = $"demo-node-{i}";
        try
        {
            await client.CoreV1.CreateNodeAsync(new V1Node
            {
                Metadata = new V1ObjectMeta
                {
                    Name = node,
                    Labels = new Dictionary<string, string> { ["nettune.io/role"] = "web", ["kubernetes.io/os"] = "linux", ["kubernetes.io/hostname"] = node },
                },
            });
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict) { }
        var dir = Path.Combine(stateDir, node);
        var root = Path.Combine(dir, "root");
        if (!Directory.Exists(root)) FixtureHosts.WriteTwoSocket(root);
        Run("NetTune.Agent.dll", Path.Combine(dir, "agent.log"), "--node-name", node, "--host-root", root, "--channel-backend", "Fixture",
            "--journal-dir", Path.Combine(dir, "journal"), "--kubeconfig", kubeconfig, "--metrics-port", "0", "--drift-interval", "10s");
        Console.WriteLine($"node {node}: agent on the two-socket fixture root {root}");
    }
    Run("nettune-operator.dll", Path.Combine(stateDir, "operator.log"), "--kubeconfig", kubeconfig, "--namespace", ns,
        "--metrics-port", "0", "--log-format", "text", "--pod-delete-grace-seconds", "0");
    Console.WriteLine($"operator running (log: {Path.Combine(stateDir, "operator.log")})");

    var last = "";
    while (!stop.IsCancellationRequested)
    {
        try
        {
            var list = KubernetesJson.Deserialize<NetworkTuningList>((JsonElement)await client.CustomObjects.ListClusterCustomObjectAsync(
                ApiGroup.Name, ApiGroup.Version, NetworkTuning.Plural, cancellationToken: stop.Token));
            var line = string.Join("; ", list.Items.Select(t =>
            {
                var ready = t.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
                return $"{t.Metadata.Name}: Ready={ready?.Status ?? "?"} ({ready?.Reason}) matched={t.Status?.MatchedNodes} applied={t.Status?.AppliedNodes} failed={t.Status?.FailedNodes}";
            }));
            if (line != last) Console.WriteLine(line.Length == 0 ? "no NetworkTuning yet" : line);
            last = line;
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException) { }
        catch (OperationCanceledException) { break; }
        if (children.FirstOrDefault(c => c.HasExited) is { } dead)
        {
            Console.Error.WriteLine($"a child process exited with {dead.ExitCode}; see the logs in {stateDir}");
            return 1;
        }
        try { await Task.Delay(1000, stop.Token); } catch (OperationCanceledException) { }
    }
    return 0;
}
finally
{
    foreach (var p in children)
    {
        if (p.HasExited) continue;
        using (Process.Start("kill", ["-TERM", p.Id.ToString()])) { }
    }
    foreach (var p in children)
    {
        if (!p.WaitForExit(30_000)) p.Kill(entireProcessTree: true);
    }
}
