namespace NetTune.Api.Tests;

/// <summary>Finds files of the repository the tests were built from (crds/, samples/).</summary>
internal static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")) && Directory.Exists(Path.Combine(dir.FullName, "api")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException($"no repository root (a folder with Operator.sln) above {AppContext.BaseDirectory}");
    }
}
