// For `make demo`: gives a local cluster (no kubelets) nodes that behave like tuned machines. Creates Node objects
// labelled like the sample's selector, writes a two-socket fixture host root per node, runs the real node agent on
// each root and the operator against the cluster, and prints the NetworkTunings' status until stopped (SIGTERM).
// The operator and the agents may use their own kubeconfigs (the chart's ServiceAccount tokens, so they run with the
// chart's RBAC); --this-host adds this machine as a node whose agent only plans (samples/networktuning-local-host.yaml).
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

const string Usage = """
    usage: nettune-demo-nodes KUBECONFIG STATE_DIR [NODES=3] [NAMESPACE=nettune-system]
             [--operator-kubeconfig PATH] [--agent-kubeconfig PATH]      (default: KUBECONFIG, the admin's)
             [--operator-metrics-port N] [--agent-metrics-port N]        (agents get N, N+1, ...; 0: none / any free port)
             [--this-host NODE]   also a Node for this machine, whose agent plans on the real /sys and /proc (--plan-only)
             [--no-operator]      agents only (the operator runs elsewhere)
    """;
var positional = new List<string>();
var named = new Dictionary<string, string>(StringComparer.Ordinal);
string[] known = ["--operator-kubeconfig", "--agent-kubeconfig", "--operator-metrics-port", "--agent-metrics-port", "--this-host"];
for (var i = 0; i < args.Length; i++)
{
    var arg = args[i];
    if (!arg.StartsWith("--", StringComparison.Ordinal))
    {
        positional.Add(arg);
        continue;
    }
    if (arg == "--no-operator")
    {
        named[arg] = "true";
        continue;
    }
    var eq = arg.IndexOf('=');
    var name = eq > 0 ? arg[..eq] : arg;
    var value = !known.Contains(name) ? null : eq > 0 ? arg[(eq + 1)..] : i + 1 < args.Length ? args[++i] : null;
    if (value is null)
    {
        Console.Error.WriteLine(known.Contains(name) ? $"{name} needs a value" : $"unknown option {name}");
        Console.Error.WriteLine(Usage);
        return 2;
    }
    named[name] = value;
}
int Port(string option)
{
    if (!named.TryGetValue(option, out var text)) return 0;
    if (int.TryParse(text, out var port) && port is >= 0 and <= 65535) return port;
    throw new ArgumentException($"{option} '{text}' is not a port number");
}
if (positional.Count is < 2 or > 4 || (positional.Count > 2 && !int.TryParse(positional[2], out _)))
{
    Console.Error.WriteLine(Usage);
    return 2;
}
var kubeconfig = Path.GetFullPath(positional[0]);
var stateDir = Path.GetFullPath(positional[1]);
var count = positional.Count > 2 ? int.Parse(positional[2]) : 3;
var ns = positional.Count > 3 ? positional[3] : "nettune-system";
var operatorKubeconfig = Path.GetFullPath(named.GetValueOrDefault("--operator-kubeconfig") ?? kubeconfig);
var agentKubeconfig = Path.GetFullPath(named.GetValueOrDefault("--agent-kubeconfig") ?? kubeconfig);
var thisHost = named.GetValueOrDefault("--this-host");
int operatorPort, agentPort;
try
{
    operatorPort = Port("--operator-metrics-port");
    agentPort = Port("--agent-metrics-port");
    if (agentPort > 0 && agentPort + count + (thisHost is null ? 0 : 1) - 1 > 65535) throw new ArgumentException("--agent-metrics-port: too high for that many agents");
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
foreach (var file in new[] { kubeconfig, operatorKubeconfig, agentKubeconfig }.Distinct())
{
    if (File.Exists(file)) continue;
    Console.Error.WriteLine($"no kubeconfig at {file}");
    return 2;
}
Directory.CreateDirectory(stateDir);

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
    async Task CreateNodeAsync(string node, string role)
    {
        try
        {
            await client.CoreV1.CreateNodeAsync(new V1Node
            {
                Metadata = new V1ObjectMeta
                {
                    Name = node,
                    Labels = new Dictionary<string, string> { ["nettune.io/role"] = role, ["kubernetes.io/os"] = "linux", ["kubernetes.io/hostname"] = node },
                },
            });
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict) { }
    }
    string Metrics(int port, string none) => port > 0 ? $"http://127.0.0.1:{port}/metrics" : none;

    for (var i = 1; i <= count; i++)
    {
        var node = $"demo-node-{i}";
        await CreateNodeAsync(node, "web");
        var dir = Path.Combine(stateDir, node);
        var root = Path.Combine(dir, "root");
        if (!Directory.Exists(root)) FixtureHosts.WriteTwoSocket(root);
        var port = agentPort > 0 ? agentPort + i - 1 : 0;
        Run("NetTune.Agent.dll", Path.Combine(dir, "agent.log"), "--node-name", node, "--host-root", root, "--channel-backend", "Fixture",
            "--journal-dir", Path.Combine(dir, "journal"), "--kubeconfig", agentKubeconfig, "--metrics-port", port.ToString(), "--drift-interval", "10s",
            // No kubelet on these nodes: a stand-in publishes the hugepages the agent reserved, as a restarted kubelet would.
            "--kubelet-restart-command", FixtureHosts.WriteKubeletRestartScript(root, kubeconfig, node));
        Console.WriteLine($"agent {node}: two-socket fixture root {root}, metrics {Metrics(port, "on a free port")}, log {Path.Combine(dir, "agent.log")}");
    }
    if (thisHost is not null)
    {
        // This machine as a node: the real /sys and /proc and the real ethtool calls, but --plan-only, so the agent
        // publishes what it would change and never writes (whatever a NetworkTuning asks).
        await CreateNodeAsync(thisHost, "local-host");
        var dir = Path.Combine(stateDir, thisHost);
        Directory.CreateDirectory(dir);
        var port = agentPort > 0 ? agentPort + count : 0;
        Run("NetTune.Agent.dll", Path.Combine(dir, "agent.log"), "--node-name", thisHost, "--host-root", "/", "--channel-backend", "Ethtool", "--plan-only",
            "--journal-dir", Path.Combine(dir, "journal"), "--kubeconfig", agentKubeconfig, "--metrics-port", port.ToString(), "--drift-interval", "30s");
        Console.WriteLine($"agent {thisHost}: this host (/), plan only, metrics {Metrics(port, "on a free port")}, log {Path.Combine(dir, "agent.log")}");
    }
    if (!named.ContainsKey("--no-operator"))
    {
        Run("nettune-operator.dll", Path.Combine(stateDir, "operator.log"), "--kubeconfig", operatorKubeconfig, "--namespace", ns,
            "--metrics-port", operatorPort.ToString(), "--log-format", "text", "--pod-delete-grace-seconds", "0");
        Console.WriteLine($"operator: namespace {ns}, metrics {Metrics(operatorPort, "off")}, log {Path.Combine(stateDir, "operator.log")}");
    }

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
        if (!stop.IsCancellationRequested && children.FirstOrDefault(c => c.HasExited) is { } dead)
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
    // SIGTERM to every child, one shared grace period, then SIGKILL to what is left.
    foreach (var p in children)
    {
        if (p.HasExited) continue;
        using (Process.Start("kill", ["-TERM", p.Id.ToString()])) { }
    }
    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
    foreach (var p in children)
    {
        var left = deadline - DateTime.UtcNow;
        if (!p.WaitForExit(left > TimeSpan.Zero ? left : TimeSpan.Zero)) p.Kill(entireProcessTree: true);
    }
}
