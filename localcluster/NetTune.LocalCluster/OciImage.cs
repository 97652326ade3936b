using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NetTune.LocalCluster;

/// <summary>
/// Writes container images without a registry or a build engine: an OCI image layout (oci-layout, index.json,
/// config, manifest and one uncompressed layer) in a tar archive, which <c>ctr images import</c> loads. The index
/// names the image in <c>io.containerd.image.name</c>, so the kubelet finds it under the name a pod spec uses.
/// </summary>
public static class OciImage
{
    /// <summary>
    /// A root filesystem folder holding the given files at the given paths, and for every ELF file among them the
    /// shared libraries <c>ldd</c> lists (and the dynamic loader) at their host paths, plus <paramref name="extraLibraries"/>
    /// (libraries a program opens with dlopen, which ldd cannot see) and an empty /tmp.
    /// </summary>
    public static string RootfsFromFiles(IEnumerable<(string Source, string Target)> files, IEnumerable<string>? extraLibraries = null)
    {
        var rootfs = Directory.CreateTempSubdirectory("nettune-rootfs-").FullName;
        var elves = new List<string>();
        foreach (var (source, target) in files)
        {
            if (Directory.Exists(source))
            {
                foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
                {
                    var to = Path.Combine(rootfs + target, Path.GetRelativePath(source, file));
                    CopyPreservingMode(file, to);
                    if (IsElf(file)) elves.Add(file);
                }
            }
            else
            {
                CopyPreservingMode(source, rootfs + target);
                if (IsElf(source)) elves.Add(source);
            }
        }
        var libraries = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var lib in extraLibraries ?? [])
            if (File.Exists(lib)) libraries.Add(lib);
        foreach (var elf in elves.Concat(libraries.ToList()))
            foreach (var lib in Ldd(elf)) libraries.Add(lib);
        foreach (var lib in libraries)
        {
            var to = rootfs + lib;
            if (!File.Exists(to)) CopyPreservingMode(Path.GetFullPath(new FileInfo(lib).ResolveLinkTarget(true)?.FullName ?? lib), to);
        }
        var tmp = Path.Combine(rootfs, "tmp");
        Directory.CreateDirectory(tmp);
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(tmp, (UnixFileMode)Convert.ToInt32("1777", 8));
        return rootfs;
    }

    /// <summary>Writes the archive for <paramref name="name"/> (e.g. nettune/agent:0.1.0) from a root filesystem folder, which it removes.</summary>
    public static void Write(string archive, string name, string rootfs, IReadOnlyList<string> entrypoint, IReadOnlyDictionary<string, string> env,
        string workingDir = "/", string user = "0:0")
    {
        var layout = Directory.CreateTempSubdirectory("nettune-oci-").FullName;
        try
        {
            var blobs = Path.Combine(layout, "blobs", "sha256");
            Directory.CreateDirectory(blobs);
            var layerTmp = Path.Combine(layout, "layer.tar");
            using (var layer = File.Create(layerTmp))
                TarFile.CreateFromDirectory(rootfs, layer, includeBaseDirectory: false);
            var layerDigest = Sha256(layerTmp);
            File.Move(layerTmp, Path.Combine(blobs, layerDigest));

            var config = new JsonObject
            {
                ["architecture"] = "amd64",
                ["os"] = "linux",
                ["config"] = new JsonObject
                {
                    ["Entrypoint"] = new JsonArray(entrypoint.Select(e => (JsonNode)e!).ToArray()),
                    ["Env"] = new JsonArray(env.Select(kv => (JsonNode)$"{kv.Key}={kv.Value}"!).Prepend("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").ToArray()),
                    ["WorkingDir"] = workingDir,
                    ["User"] = user,
                },
                ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray("sha256:" + layerDigest) },
            };
            var (configDigest, configSize) = WriteBlob(blobs, config);
            var manifest = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", configDigest, configSize),
                ["layers"] = new JsonArray(Descriptor("application/vnd.oci.image.layer.v1.tar", layerDigest, new FileInfo(Path.Combine(blobs, layerDigest)).Length)),
            };
            var (manifestDigest, manifestSize) = WriteBlob(blobs, manifest);
            var descriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifestDigest, manifestSize);
            descriptor["annotations"] = new JsonObject
            {
                ["io.containerd.image.name"] = FullyQualified(name),
                ["org.opencontainers.image.ref.name"] = name[(name.LastIndexOf(':') + 1)..],
            };
            File.WriteAllText(Path.Combine(layout, "index.json"), new JsonObject { ["schemaVersion"] = 2, ["manifests"] = new JsonArray(descriptor) }.ToJsonString());
            File.WriteAllText(Path.Combine(layout, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");

            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(archive))!);
            var tmp = archive + ".tmp";
            using (var output = File.Create(tmp))
                TarFile.CreateFromDirectory(layout, output, includeBaseDirectory: false);
            File.Move(tmp, archive, overwrite: true);
        }
        finally
        {
            Directory.Delete(layout, recursive: true);
            Directory.Delete(rootfs, recursive: true);
        }
    }

    /// <summary>The name containerd stores: docker.io/ for names without a registry, library/ for single names.</summary>
    public static string FullyQualified(string name)
    {
        var first = name.Split('/')[0];
        if (name.Contains('/') && (first.Contains('.') || first.Contains(':') || first == "localhost")) return name;
        return "docker.io/" + (name.Contains('/') ? name : "library/" + name);
    }

    private static JsonObject Descriptor(string mediaType, string digest, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = "sha256:" + digest, ["size"] = size };

    private static (string Digest, long Size) WriteBlob(string blobs, JsonNode json)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(json);
        var digest = Convert.ToHexStringLower(SHA256.HashData(bytes));
        File.WriteAllBytes(Path.Combine(blobs, digest), bytes);
        return (digest, bytes.Length);
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void CopyPreservingMode(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Copy(from, to, overwrite: true);
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(to, File.GetUnixFileMode(from));
    }

    private static bool IsElf(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.Read(magic) == 4 && magic[0] == 0x7f && magic[1] == (byte)'E' && magic[2] == (byte)'L' && magic[3] == (byte)'F';
    }

    /// <summary>The absolute paths ldd resolves for a binary (its libraries and its loader); none for a static one.</summary>
    private static IEnumerable<string> Ldd(string path)
    {
        var psi = new ProcessStartInfo("ldd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not run ldd");
        var output = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        foreach (var line in output.Split('\n'))
        {
            if (line.Contains("not found", StringComparison.Ordinal))
                throw new InvalidOperationException($"ldd {path}: {line.Trim()}");
            foreach (var token in line.Split(' ', '\t'))
                if (token.StartsWith('/') && File.Exists(token)) yield return token;
        }
    }
}
