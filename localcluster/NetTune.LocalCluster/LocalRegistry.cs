using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace NetTune.LocalCluster;

/// <summary>
/// Where a registry is and how to log in to it: what a push, a helm install from oci:// and a pod's pull secret need.
/// Saved as JSON beside the demo's kubeconfig, so that scripts push to the registry the cluster runs.
/// </summary>
/// <param name="Host">host:port, the first part of every image reference in it.</param>
/// <param name="CaFile">The CA the registry's TLS certificate is signed by (the cluster's).</param>
public sealed record RegistryEndpoint(string Host, string Username, string Password, string CaFile)
{
    public string Reference(string repository, string tag) => $"{Host}/{repository}:{tag}";

    /// <summary>A kubernetes.io/dockerconfigjson Secret's .dockerconfigjson: the credentials for this host only.</summary>
    public string DockerConfigJson() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["auths"] = new Dictionary<string, object>
        {
            [Host] = new Dictionary<string, string>
            {
                ["username"] = Username,
                ["password"] = Password,
                ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Username}:{Password}")),
            },
        },
    });

    /// <summary>helm's flags for this registry (push, pull, install from oci://).</summary>
    public IReadOnlyList<string> HelmArgs => ["--ca-file", CaFile, "--username", Username, "--password", Password];

    public void Save(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this));
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(tmp, path, overwrite: true);
    }

    public static RegistryEndpoint Load(string path) =>
        JsonSerializer.Deserialize<RegistryEndpoint>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path} holds no registry endpoint");
}

/// <summary>
/// The local cluster's image registry: Debian's docker-registry (the CNCF distribution registry) on 127.0.0.2 with TLS
/// from the cluster's CA and basic auth from an htpasswd file (bcrypt, the only hash it accepts), so that nothing
/// pulls from it without credentials. The node's containerd knows it as a registry host and holds no credentials:
/// pods pull with their imagePullSecrets, as on a production cluster. Its storage lives outside /dev/shm (images are
/// hundreds of MB) and goes when the registry stops, also when its owner dies (the process's watchdog removes it).
/// </summary>
public sealed class LocalRegistry : IAsyncDisposable
{
    public const string Binary = "/usr/bin/docker-registry";

    /// <summary>
    /// A loopback address, but not 127.0.0.1, which registry clients take for a plain-HTTP registry by default (this one
    /// serves TLS). helm 3.17 does so for every loopback address, so the chart is pushed and pulled with helm 4.
    /// </summary>
    public static readonly System.Net.IPAddress Address = System.Net.IPAddress.Parse("127.0.0.2");
    private const string StoragePrefix = "nettune-registry-";

    private readonly ChildProcess _process;
    private readonly string _storage;

    private LocalRegistry(ChildProcess process, string storage, RegistryEndpoint endpoint)
    {
        _process = process;
        _storage = storage;
        Endpoint = endpoint;
    }

    public RegistryEndpoint Endpoint { get; }

    /// <summary>Where the registry keeps its blobs (removed when it stops).</summary>
    public string StorageFolder => _storage;

    public static string? MissingPrerequisites() =>
        File.Exists(Binary) ? null : $"an image registry needs {Binary} (make deps installs Debian's docker-registry)";

    internal static async Task<LocalRegistry> StartAsync(string clusterDir, ClusterPki.Files pki, CancellationToken ct)
    {
        if (MissingPrerequisites() is { } missing) throw new InvalidOperationException(missing);
        RemoveStaleStorage();
        var dir = Path.Combine(clusterDir, "registry");
        Directory.CreateDirectory(dir);
        var storage = Path.Combine("/var/tmp", $"{StoragePrefix}{Environment.ProcessId}-{Guid.NewGuid():N}"[..(StoragePrefix.Length + 24)]);
        Directory.CreateDirectory(storage);
        var endpoint = new RegistryEndpoint($"{Address}:{KubeCluster.FreePort()}", "nettune", Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), pki.CaCert);
        var htpasswd = Path.Combine(dir, "htpasswd");
        File.WriteAllText(htpasswd, $"{endpoint.Username}:{BCrypt.Net.BCrypt.HashPassword(endpoint.Password, workFactor: 10)}\n");
        var config = Path.Combine(dir, "config.yml");
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {storage}
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: {endpoint.Host}
              secret: {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16))}
              tls:
                certificate: {pki.RegistryCert}
                key: {pki.RegistryKey}
            auth:
              htpasswd:
                realm: nettune-local-registry
                path: {htpasswd}
            """);
        var process = ChildProcess.Start("docker-registry", Binary, ["serve", config], Path.Combine(dir, "registry.log"), scratchFolder: storage);
        var registry = new LocalRegistry(process, storage, endpoint);
        try
        {
            using var client = new RegistryClient(endpoint);
            await process.WaitUntilReadyAsync("the image registry", () => client.PingAsync(ct), TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            return registry;
        }
        catch
        {
            await registry.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Storage of registries whose owner was killed together with the watchdog (a whole process group).</summary>
    private static void RemoveStaleStorage()
    {
        foreach (var dir in Directory.EnumerateDirectories("/var/tmp", StoragePrefix + "*"))
        {
            var pid = Path.GetFileName(dir)[StoragePrefix.Length..].Split('-')[0];
            if (int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && !Directory.Exists($"/proc/{p}"))
            {
                try { Directory.Delete(dir, recursive: true); }
                catch (IOException) { }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync().ConfigureAwait(false);
        try { Directory.Delete(_storage, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { }
    }
}
