using NetTune.CrdGen;

// Usage: NetTune.CrdGen --out <folder> [--docs <folder>]. Writes one CRD file per API resource (and the Markdown
// API reference) and removes nothing else.
string? outDir = null, docsDir = null;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--out" && i + 1 < args.Length) outDir = args[++i];
    else if (args[i] == "--docs" && i + 1 < args.Length) docsDir = args[++i];
    else
    {
        Console.Error.WriteLine($"unknown argument '{args[i]}'; usage: NetTune.CrdGen --out <folder> [--docs <folder>]");
        return 2;
    }
}
if (outDir is null)
{
    Console.Error.WriteLine("usage: NetTune.CrdGen --out <folder>");
    return 2;
}

Directory.CreateDirectory(outDir);
foreach (var (name, yaml) in CrdGenerator.Generate())
{
    var path = Path.Combine(outDir, name);
    File.WriteAllText(path, yaml);
    Console.WriteLine($"wrote {path}");
}
if (docsDir is not null)
{
    Directory.CreateDirectory(docsDir);
    var path = Path.Combine(docsDir, ApiReference.FileName);
    File.WriteAllText(path, ApiReference.Generate());
    Console.WriteLine($"wrote {path}");
}
return 0;
