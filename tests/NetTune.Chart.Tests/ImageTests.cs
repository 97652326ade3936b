using System.Text.RegularExpressions;
using NetTune.Chart.Tests.Support;

namespace NetTune.Chart.Tests;

/// <summary>
/// The container images. No registry is reachable here, so base images cannot be pulled: the Dockerfiles are checked
/// as text, and each image's payload is built by the very command its Dockerfile runs (hack/images.sh publish).
/// </summary>
public sealed partial class ImageTests
{
    public static TheoryData<string, bool> Components => new() { { "operator", false }, { "agent", true }, { "dataplane", false } };

    private static string Dockerfile(string component) => File.ReadAllText(Path.Combine(Tool.RepoRoot, "images", component, "Dockerfile"));

    [Theory, MemberData(nameof(Components))]
    public void DockerfilesAreMultiStageAndRunAsTheRightUser(string component, bool root)
    {
        var text = Dockerfile(component);
        var stages = FromLine().Matches(text);
        Assert.True(stages.Count >= 2, $"{component}: {stages.Count} stage(s)");
        Assert.Contains(" AS build", stages[0].Value);
        Assert.Contains($"RUN bash hack/images.sh publish {component} /out", text);
        Assert.Contains("COPY --from=build /out/", text);
        // The final stage's user: the last USER line after the last FROM.
        var final = text[stages[^1].Index..];
        var user = Assert.Single(UserLine().Matches(final)).Groups[1].Value;
        var uid = user.Split(':')[0];
        if (root) Assert.Equal("0", uid);
        else Assert.NotEqual("0", uid);
        Assert.Matches("(?m)^ENTRYPOINT \\[\"/", final);
        // Everything the build stage copies exists in the repository.
        foreach (Match copy in CopyLine().Matches(text[..stages[^1].Index]))
            foreach (var source in copy.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1])
                Assert.True(File.Exists(Path.Combine(Tool.RepoRoot, source)) || Directory.Exists(Path.Combine(Tool.RepoRoot, source)),
                    $"{component}: COPY {source} names nothing in the repository");
    }

    public static TheoryData<string, string> Projects => new()
    {
        { "operator", "operator/NetTune.Operator/NetTune.Operator.csproj" },
        { "agent", "agent/NetTune.Agent/NetTune.Agent.csproj" },
        { "dataplane", "dataplane/NetTune.DataPlane/NetTune.DataPlane.csproj" },
    };

    [Theory, MemberData(nameof(Projects))]
    public void TheBuildStageCopiesEveryProjectTheComponentNeeds(string component, string project)
    {
        // The build context can't be tried here (no base images): check that the copied folders hold the whole
        // ProjectReference closure, and the props files every project imports.
        var text = Dockerfile(component);
        var copied = CopyLine().Matches(text[..FromLine().Matches(text)[^1].Index])
            .SelectMany(m => m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1])
            .Select(p => p.TrimEnd('/')).ToList();
        Assert.Contains("Directory.Build.props", copied);
        Assert.Contains("Directory.Packages.props", copied);
        var pending = new Stack<string>([Path.GetFullPath(Path.Combine(Tool.RepoRoot, project))]);
        var seen = new HashSet<string>();
        while (pending.TryPop(out var csproj))
        {
            if (!seen.Add(csproj)) continue;
            var relative = Path.GetRelativePath(Tool.RepoRoot, csproj);
            Assert.True(copied.Any(c => relative.StartsWith(c + "/", StringComparison.Ordinal)),
                $"{component}: {relative} is not in the build context (COPY {string.Join(", ", copied)})");
            foreach (Match reference in ProjectReference().Matches(File.ReadAllText(csproj)))
                pending.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(csproj)!, reference.Groups[1].Value)));
        }
        Assert.True(seen.Count >= 2, $"{component}: {seen.Count} project(s)");
    }

    [Fact]
    public async Task TheOperatorImageUserMatchesTheChartsSecurityContext()
    {
        var user = UserLine().Match(Dockerfile("operator")[FromLine().Matches(Dockerfile("operator"))[^1].Index..]).Groups[1].Value;
        var deployment = (await TheChart.RenderAsync("3")).Single<k8s.Models.V1Deployment>();
        Assert.Equal(user.Split(':')[0], deployment.Spec.Template.Spec.SecurityContext.RunAsUser.ToString());
    }

    [Theory, MemberData(nameof(Components)), Trait("Category", "Slow")]
    public async Task PublishesEachPayloadAsItsDockerfileDoes(string component, bool root)
    {
        _ = root;
        var output = Tool.TempDir($"nettune-image-{component}");
        try
        {
            var publish = await Tool.RunAsync("bash", [Path.Combine(Tool.RepoRoot, "hack", "images.sh"), "publish", component, output], timeout: TimeSpan.FromMinutes(6));
            Assert.True(publish.ExitCode == 0, publish.Output);
            var entry = Regex.Match(Dockerfile(component), "(?m)^ENTRYPOINT \\[\"([^\"]+)\"").Groups[1].Value;
            var exe = Path.Combine(output, Path.GetFileName(entry));
            Assert.True(File.Exists(exe), $"{component}: the ENTRYPOINT {entry} is not in the payload");
            var help = await Tool.RunAsync(exe, ["--help"]);
            Assert.True(help.ExitCode == 0, help.Output);
            Assert.Contains("--", help.Stdout);
            if (component == "dataplane")
            {
                // NativeAOT: one file, no managed assemblies, no runtime to install.
                Assert.Empty(Directory.GetFiles(output, "*.dll"));
                var ldd = await Tool.RunAsync("ldd", [exe]);
                Assert.DoesNotContain("libicu", ldd.Stdout);
                Assert.DoesNotContain("libstdc++", ldd.Stdout);
            }
            else
            {
                Assert.True(File.Exists(exe + ".dll"), $"{component}: no managed entry assembly");
                Assert.True(File.Exists(Path.Combine(output, Path.GetFileName(exe) + ".runtimeconfig.json")), $"{component}: not framework-dependent");
            }
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [GeneratedRegex("<ProjectReference Include=\"([^\"]+)\"")]
    private static partial Regex ProjectReference();

    [GeneratedRegex("(?m)^FROM .+$")]
    private static partial Regex FromLine();

    [GeneratedRegex("(?m)^USER (\\S+)\\s*$")]
    private static partial Regex UserLine();

    [GeneratedRegex("(?m)^COPY (?!--from)(.+)$")]
    private static partial Regex CopyLine();
}
