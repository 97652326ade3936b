using System.Runtime.InteropServices;
using NetTune.Testing.Cluster;

// Runs the test cluster (etcd, kube-apiserver, kube-controller-manager) until SIGTERM or Ctrl-C, for `make demo`:
// writes an admin kubeconfig to the path given as the first argument and removes it again on exit.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: nettune-local-cluster KUBECONFIG_OUT");
    return 2;
}
var kubeconfigOut = Path.GetFullPath(args[0]);
using var stop = new CancellationTokenSource();
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

Console.WriteLine("starting etcd, kube-apiserver and kube-controller-manager on loopback...");
await using var cluster = await TestCluster.StartAsync(new TestClusterOptions(), stop.Token);
Directory.CreateDirectory(Path.GetDirectoryName(kubeconfigOut)!);
File.Copy(cluster.KubeconfigPath, kubeconfigOut + ".tmp", overwrite: true);
File.Move(kubeconfigOut + ".tmp", kubeconfigOut, overwrite: true);
Console.WriteLine($"cluster ready at {cluster.ApiServerUrl}; kubeconfig: {kubeconfigOut}");
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
