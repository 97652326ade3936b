using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using Xunit;

namespace NetTune.Testing.Cluster;

/// <summary>
/// Objects checked against the API of a current Kubernetes release (the test cluster is v1.20): the kinds must still
/// exist, every field must still be a field of its type, and values must fit the JSON schema. hack/k8s-schema.sh
/// installs the npm packages (@kubernetes/client-node's models, generated from <see cref="Release"/>, and
/// kubernetes-models' validate()) outside the repository; hack/k8s-schema/check.mjs runs them.
/// </summary>
public static class CurrentKubernetesApi
{
    /// <summary>The release @kubernetes/client-node 2.0.1's models are generated from ("OpenAPI spec version: release-1.36").</summary>
    public const string Release = "1.36";

    public static string RepoRoot { get; } = FindRoot();

    private static readonly Lazy<string> Folder = new(() =>
    {
        var (code, stdout, stderr) = Run("bash", [Path.Combine(RepoRoot, "hack", "k8s-schema.sh")], "");
        Assert.True(code == 0, $"hack/k8s-schema.sh failed ({code}): {stderr}");
        return stdout.Trim().Split('\n')[^1];
    });

    /// <summary>Each object's problems (empty: it is an object of the current API), by the name given.</summary>
    public static Dictionary<string, List<string>> Check(IEnumerable<(string Name, object Object)> objects)
    {
        var input = new JsonArray([.. objects.Select(o => new JsonObject
        {
            ["name"] = o.Name,
            ["object"] = o.Object as JsonNode ?? JsonNode.Parse(KubernetesJson.Serialize(o.Object)),
        })]);
        var (code, stdout, stderr) = Run("node", [Path.Combine(Folder.Value, "check.mjs")], input.ToJsonString());
        Assert.True(code == 0, $"check.mjs failed ({code}): {stderr}");
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!,
            e => e.GetProperty("errors").EnumerateArray().Select(x => x.GetString()!).ToList());
    }

    private static (int Code, string Stdout, string Stderr) Run(string file, string[] args, string stdin)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")) && Directory.Exists(Path.Combine(dir.FullName, "hack")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"no repository root (a folder with Operator.sln) above {AppContext.BaseDirectory}");
    }
}
