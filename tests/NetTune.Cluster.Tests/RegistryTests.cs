using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using NetTune.LocalCluster;

namespace NetTune.Cluster.Tests;

/// <summary>
/// The cluster's image registry: a real docker-registry on loopback that refuses anyone without the credentials,
/// serves what RegistryClient pushed by tag and by digest, and leaves nothing behind when it stops or its owner dies.
/// </summary>
public sealed class RegistryTests
{
    [Fact]
    public async Task ServesPushedImagesOnlyWithItsCredentials_AndLeavesNothingWhenStopped()
    {
        var cluster = await KubeCluster.StartAsync(new KubeClusterOptions { StartControllerManager = false, Registry = true });
        var registry = cluster.Registry!;
        string storage = registry.StorageFolder, host = registry.Endpoint.Host;
        try
        {
            var archive = Path.Combine(Path.GetTempPath(), $"nettune-registry-test-{Guid.NewGuid():N}.oci.tar");
            OciImage.Write(archive, "nettune/registry-test:1", OciImage.RootfsFromFiles([("/bin/true", "/true")]), ["/true"], new Dictionary<string, string>());
            string digest;
            using (var client = new RegistryClient(registry.Endpoint))
            {
                digest = await client.PushArchiveAsync(archive, "nettune/registry-test", "1");
                // Again: every blob is there already, the manifest is the same.
                Assert.Equal(digest, await client.PushArchiveAsync(archive, "nettune/registry-test", "1"));
            }
            File.Delete(archive);

            using var http = new HttpClient(ClusterPki.TrustingOnly(registry.Endpoint.CaFile));
            var manifest = $"https://{host}/v2/nettune/registry-test/manifests/1";
            using (var anonymous = await http.SendAsync(ManifestRequest(manifest, null)))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
                Assert.Equal("Basic", anonymous.Headers.WwwAuthenticate.Single().Scheme);
            }
            using (var wrong = await http.SendAsync(ManifestRequest(manifest, (registry.Endpoint.Username, "not-the-password"))))
                Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            var credentials = (registry.Endpoint.Username, registry.Endpoint.Password);
            using (var byTag = await http.SendAsync(ManifestRequest(manifest, credentials)))
            {
                Assert.Equal(HttpStatusCode.OK, byTag.StatusCode);
                Assert.Equal(digest, byTag.Headers.GetValues("Docker-Content-Digest").Single());
            }
            using (var byDigest = await http.SendAsync(ManifestRequest($"https://{host}/v2/nettune/registry-test/manifests/{digest}", credentials)))
                Assert.Equal(HttpStatusCode.OK, byDigest.StatusCode);
            Assert.NotEmpty(Directory.EnumerateFileSystemEntries(storage));
        }
        finally
        {
            await cluster.DisposeAsync();
        }
        Assert.False(Directory.Exists(storage), $"{storage} is left");
        Assert.False(await ListensAsync(host), $"something still listens on {host}");
    }

    [Fact]
    public async Task AnOwnerKilledWithoutStoppingLeavesNoRegistryAndNoStorage()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        var cli = Path.Combine(KubeCluster.RepoRoot, "localcluster", "NetTune.LocalCluster.Cli", "bin", configuration, "net10.0", "nettune-local-cluster.dll");
        var dir = Directory.CreateTempSubdirectory("nettune-registry-owner-").FullName;
        var kubeconfig = Path.Combine(dir, "kubeconfig");
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { cli, "up", kubeconfig, "--registry" }) psi.ArgumentList.Add(a);
        using var owner = Process.Start(psi)!;
        _ = owner.StandardOutput.ReadToEndAsync();
        _ = owner.StandardError.ReadToEndAsync();
        try
        {
            var started = Stopwatch.StartNew();
            while (!File.Exists(kubeconfig) && started.Elapsed < TimeSpan.FromSeconds(90) && !owner.HasExited) await Task.Delay(250);
            Assert.True(File.Exists(kubeconfig), "the cluster did not come up");
            var host = RegistryEndpoint.Load(Path.Combine(dir, "registry.json")).Host;
            var storage = Assert.Single(Directory.EnumerateDirectories("/var/tmp", $"nettune-registry-{owner.Id}-*"));
            Assert.True(await ListensAsync(host));

            owner.Kill(entireProcessTree: false);
            await owner.WaitForExitAsync();
            var gone = Stopwatch.StartNew();
            while ((Directory.Exists(storage) || await ListensAsync(host)) && gone.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(250);
            Assert.False(Directory.Exists(storage), $"{storage} outlived its owner");
            Assert.False(await ListensAsync(host), $"the registry on {host} outlived its owner");
        }
        finally
        {
            if (!owner.HasExited) owner.Kill(entireProcessTree: true);
            Directory.Delete(dir, recursive: true);
        }
    }

    private static HttpRequestMessage ManifestRequest(string url, (string User, string Password)? credentials)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
        if (credentials is var (user, password))
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return request;
    }

    private static async Task<bool> ListensAsync(string host)
    {
        using var socket = new TcpClient();
        try
        {
            await socket.ConnectAsync(IPEndPoint.Parse(host));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
