using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using NetTune.Api;

namespace NetTune.Operator;

/// <summary>
/// `nettune-operator apply-crds`, the chart's pre-upgrade hook: Helm installs the chart's crds/ on the first install
/// and never upgrades them, so without this a field the new chart's API adds is pruned from every object written after
/// the upgrade. Replaces (or creates) each CRD of the folder, NetTune's group only, and waits until the API server
/// serves it again (Established, names accepted).
/// </summary>
public sealed class CrdUpgrader(IKubernetes client, TextWriter log)
{
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <returns>0 when every CRD is applied and established, 1 when one could not be, 2 for a bad folder.</returns>
    public async Task<int> RunAsync(string dir, TimeSpan timeout, CancellationToken ct = default)
    {
        var files = Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*.yaml").Order(StringComparer.Ordinal).ToList() : [];
        if (files.Count == 0)
        {
            log.WriteLine($"no CRD (*.yaml) in {dir}");
            return 2;
        }
        var crds = new List<V1CustomResourceDefinition>();
        foreach (var file in files)
        {
            V1CustomResourceDefinition crd;
            try { crd = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(await File.ReadAllTextAsync(file, ct).ConfigureAwait(false)); }
            catch (Exception e) when (e is YamlDotNet.Core.YamlException or InvalidOperationException)
            {
                log.WriteLine($"{file} is not a CustomResourceDefinition: {e.Message}");
                return 2;
            }
            if (crd.Kind != "CustomResourceDefinition" || crd.Spec?.Group != ApiGroup.Name)
            {
                log.WriteLine($"{file}: only NetTune's CustomResourceDefinitions (group {ApiGroup.Name}) are applied, not {crd.Kind} of group {crd.Spec?.Group}");
                return 2;
            }
            crds.Add(crd);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            foreach (var crd in crds) await ApplyAsync(crd, deadline.Token).ConfigureAwait(false);
            foreach (var crd in crds) await WaitEstablishedAsync(crd.Metadata.Name, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            log.WriteLine($"timed out after {timeout.TotalSeconds:0}s");
            return 1;
        }
        catch (HttpOperationException e)
        {
            log.WriteLine($"the API server refused: {(int)e.Response.StatusCode} {e.Response.Content}");
            return 1;
        }
        log.WriteLine($"applied and established: {string.Join(", ", crds.Select(c => c.Metadata.Name))}");
        return 0;
    }

    private async Task ApplyAsync(V1CustomResourceDefinition crd, CancellationToken ct)
    {
        var name = crd.Metadata.Name;
        while (true)
        {
            V1CustomResourceDefinition current;
            try
            {
                current = await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(name, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd, cancellationToken: ct).ConfigureAwait(false);
                log.WriteLine($"created {name}");
                return;
            }
            // Labels and annotations others put on the CRD (kubectl's last-applied, GitOps tools' tracking) stay.
            crd.Metadata.ResourceVersion = current.Metadata.ResourceVersion;
            crd.Metadata.Labels = Merge(current.Metadata.Labels, crd.Metadata.Labels);
            crd.Metadata.Annotations = Merge(current.Metadata.Annotations, crd.Metadata.Annotations);
            try
            {
                await client.ApiextensionsV1.ReplaceCustomResourceDefinitionAsync(crd, name, cancellationToken: ct).ConfigureAwait(false);
                log.WriteLine($"replaced {name} (was resourceVersion {current.Metadata.ResourceVersion})");
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                // Changed meanwhile: read it again.
            }
        }
    }

    private static Dictionary<string, string>? Merge(IDictionary<string, string>? current, IDictionary<string, string>? wanted)
    {
        if (current is null && wanted is null) return null;
        var merged = new Dictionary<string, string>(current ?? new Dictionary<string, string>());
        foreach (var (k, v) in wanted ?? new Dictionary<string, string>()) merged[k] = v;
        return merged;
    }

    private async Task WaitEstablishedAsync(string name, CancellationToken ct)
    {
        while (true)
        {
            var crd = await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(name, cancellationToken: ct).ConfigureAwait(false);
            var conditions = crd.Status?.Conditions ?? [];
            if (conditions.Any(c => c.Type == "Established" && c.Status == "True") && conditions.Any(c => c.Type == "NamesAccepted" && c.Status == "True"))
                return;
            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
        }
    }
}
