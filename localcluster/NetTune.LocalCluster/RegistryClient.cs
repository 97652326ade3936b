using System.Diagnostics;
using System.Formats.Tar;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace NetTune.LocalCluster;

/// <summary>
/// Pushes the OCI image archives <see cref="OciImage"/> writes to a registry, through the OCI distribution API
/// (monolithic blob uploads, then the manifest by tag), with basic auth and TLS checked against exactly the
/// registry's CA. Blobs the registry already has are not sent again. Charts go with helm (package, push).
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly RegistryEndpoint _endpoint;

    public RegistryClient(RegistryEndpoint endpoint)
    {
        _endpoint = endpoint;
        _http = new HttpClient(ClusterPki.TrustingOnly(endpoint.CaFile)) { BaseAddress = new Uri($"https://{endpoint.Host}/"), Timeout = TimeSpan.FromMinutes(5) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{endpoint.Username}:{endpoint.Password}")));
    }

    /// <summary>True once the registry answers its API root with our credentials.</summary>
    public async Task<bool> PingAsync(CancellationToken ct = default)
    {
        using var response = await _http.GetAsync("v2/", ct).ConfigureAwait(false);
        return response.StatusCode == HttpStatusCode.OK;
    }

    /// <summary>Pushes the one image of an OCI archive as REPOSITORY:TAG.</summary>
    /// <returns>The manifest's digest (sha256:...), for references by digest.</returns>
    public async Task<string> PushArchiveAsync(string archive, string repository, string tag, CancellationToken ct = default)
    {
        var layout = Directory.CreateTempSubdirectory("nettune-push-").FullName;
        try
        {
            await TarFile.ExtractToDirectoryAsync(archive, layout, overwriteFiles: false, ct).ConfigureAwait(false);
            string Blob(string digest) => Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);
            var index = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json"), ct).ConfigureAwait(false))!;
            var descriptor = index["manifests"]?.AsArray().SingleOrDefault()
                ?? throw new InvalidDataException($"{archive}: index.json names no single image");
            var manifestDigest = (string)descriptor["digest"]!;
            var manifestBytes = await File.ReadAllBytesAsync(Blob(manifestDigest), ct).ConfigureAwait(false);
            var manifest = JsonNode.Parse(manifestBytes)!;
            var blobs = manifest["layers"]!.AsArray().Select(l => (string)l!["digest"]!).Prepend((string)manifest["config"]!["digest"]!);
            foreach (var digest in blobs)
                await PushBlobAsync(repository, digest, Blob(digest), ct).ConfigureAwait(false);

            using var content = new ByteArrayContent(manifestBytes);
            content.Headers.ContentType = new MediaTypeHeaderValue((string?)manifest["mediaType"] ?? (string)descriptor["mediaType"]!);
            using var put = await _http.PutAsync($"v2/{repository}/manifests/{tag}", content, ct).ConfigureAwait(false);
            await EnsureAsync(put, $"manifest {repository}:{tag}", ct).ConfigureAwait(false);
            var stored = put.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.First() : manifestDigest;
            if (stored != manifestDigest)
                throw new InvalidOperationException($"the registry stored {repository}:{tag} as {stored}, not {manifestDigest}");
            return manifestDigest;
        }
        finally
        {
            Directory.Delete(layout, recursive: true);
        }
    }

    private async Task PushBlobAsync(string repository, string digest, string path, CancellationToken ct)
    {
        using (var head = new HttpRequestMessage(HttpMethod.Head, $"v2/{repository}/blobs/{digest}"))
        using (var exists = await _http.SendAsync(head, ct).ConfigureAwait(false))
            if (exists.StatusCode == HttpStatusCode.OK) return;

        using var start = await _http.PostAsync($"v2/{repository}/blobs/uploads/", null, ct).ConfigureAwait(false);
        await EnsureAsync(start, $"upload of {digest} to {repository}", ct).ConfigureAwait(false);
        var location = start.Headers.Location ?? throw new InvalidOperationException($"the registry gave no upload location for {repository}");
        var upload = location.IsAbsoluteUri ? location : new Uri(_http.BaseAddress!, location);
        var target = new UriBuilder(upload) { Query = (upload.Query.Length > 1 ? upload.Query[1..] + "&" : "") + "digest=" + Uri.EscapeDataString(digest) }.Uri;
        await using var file = File.OpenRead(path);
        using var body = new StreamContent(file);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        body.Headers.ContentLength = file.Length;
        using var put = await _http.PutAsync(target, body, ct).ConfigureAwait(false);
        await EnsureAsync(put, $"blob {digest} of {repository}", ct).ConfigureAwait(false);
    }

    private static async Task EnsureAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        throw new InvalidOperationException($"the registry refused {what}: {(int)response.StatusCode} {body.Trim()}");
    }

    /// <summary>
    /// Packages a chart (helm package) and pushes it as an OCI artifact (helm push) to <c>oci://HOST/charts</c>.
    /// </summary>
    /// <returns>The chart's reference for helm install (oci://HOST/charts/NAME) and its version.</returns>
    public async Task<(string Reference, string Version)> PushChartAsync(string helm, string chartDir, CancellationToken ct = default)
    {
        var work = Directory.CreateTempSubdirectory("nettune-chart-push-").FullName;
        try
        {
            var package = await HelmAsync(helm, ["package", chartDir, "--destination", work], ct).ConfigureAwait(false);
            var archive = Directory.EnumerateFiles(work, "*.tgz").SingleOrDefault()
                ?? throw new InvalidOperationException($"helm package {chartDir} wrote no archive: {package}");
            // The archive is NAME-VERSION.tgz, and both may hold dashes (0.2.0-rc.1): the name is what Chart.yaml says.
            var chartName = File.ReadLines(Path.Combine(chartDir, "Chart.yaml")).Select(l => l.Trim())
                .First(l => l.StartsWith("name:", StringComparison.Ordinal))["name:".Length..].Trim().Trim('"');
            var version = Path.GetFileNameWithoutExtension(archive)[(chartName.Length + 1)..];
            await HelmAsync(helm, ["push", archive, $"oci://{_endpoint.Host}/charts", .. _endpoint.HelmArgs,
                "--registry-config", Path.Combine(work, "registry.json")], ct).ConfigureAwait(false);
            return ($"oci://{_endpoint.Host}/charts/{chartName}", version);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private async Task<string> HelmAsync(string helm, IEnumerable<string> args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(helm) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {helm}");
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        var output = await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false);
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"helm {string.Join(' ', psi.ArgumentList).Replace(_endpoint.Password, "***", StringComparison.Ordinal)} failed ({p.ExitCode}): {output}");
        return output;
    }

    public void Dispose() => _http.Dispose();
}
