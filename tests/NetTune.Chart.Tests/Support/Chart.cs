using System.Text.RegularExpressions;
using k8s.Models;

namespace NetTune.Chart.Tests.Support;

/// <summary>The chart as the tests see it: rendering with a helm version, its values files, its appVersion.</summary>
public static class TheChart
{
    public const string Namespace = "nettune-system";

    /// <summary>The node components' namespace by default (nodeNamespace.name empty).</summary>
    public const string NodeNamespace = Namespace + "-node";
    public static readonly string[] HelmMajors = ["3", "4"];
    public static string NonDefaultValues => Path.Combine(Tool.RepoRoot, "tests", "NetTune.Chart.Tests", "values", "non-default.yaml");

    public static string AppVersion { get; } =
        Regex.Match(File.ReadAllText(Path.Combine(Tool.ChartDir, "Chart.yaml")), "(?m)^appVersion:\\s*\"?([^\"\\s]+)\"?").Groups[1].Value;

    public static Task<string> TemplateAsync(string major, params string[] extra) =>
        Tool.HelmOkAsync(major, ["template", "nettune", Tool.ChartDir, "--namespace", Namespace, .. extra]);

    public static async Task<List<Manifest>> RenderAsync(string major, params string[] extra) =>
        Manifests.Parse(await TemplateAsync(major, extra));

    public static T Single<T>(this IEnumerable<Manifest> manifests, Func<T, bool>? where = null) where T : class =>
        Assert.Single(manifests.Select(m => m.Typed).OfType<T>(), t => where?.Invoke(t) ?? true);

    public static IEnumerable<T> All<T>(this IEnumerable<Manifest> manifests) => manifests.Select(m => m.Typed).OfType<T>();

    public static string? Env(this V1Container c, string name) => c.Env?.SingleOrDefault(e => e.Name == name)?.Value;
}
