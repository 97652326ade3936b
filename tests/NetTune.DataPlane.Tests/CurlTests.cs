using System.Diagnostics;
using System.Text;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>curl, a client written by other people, against both engines in both modes.</summary>
public class CurlTests(BothEngines servers) : IClassFixture<BothEngines>
{
    public static TheoryData<string> Engines => new() { "iouring", "epoll" };

    /// <summary>Runs curl to completion; stdout as bytes, stderr as text.</summary>
    private static (int Code, byte[] Stdout, string Stderr) Curl(params string[] args)
    {
        var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-sS", "--max-time", "30" }.Concat(args)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = new MemoryStream();
        var copy = p.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException("curl did not finish"); }
        copy.Wait();
        return (p.ExitCode, stdout.ToArray(), stderr.Result);
    }

    private string Url(string engine, string path) => $"http://127.0.0.1:{servers[engine].Port}/{path}";

    [Theory, MemberData(nameof(Engines))]
    public void ReusesOneConnectionForSeveralFilesAndGetsThemByteExact(string engine)
    {
        var dir = Directory.CreateTempSubdirectory("nettune-curl-").FullName;
        try
        {
            // One curl invocation, three URLs: curl keeps the connection and reports connects per transfer.
            var (code, stdout, stderr) = Curl("-w", "%{http_code} %{num_connects}\n",
                "-o", Path.Join(dir, "a"), Url(engine, "1k.bin"),
                "-o", Path.Join(dir, "b"), Url(engine, "10m.bin"),
                "-o", Path.Join(dir, "c"), Url(engine, "64k.bin"));
            Assert.True(code == 0, stderr);
            Assert.Equal(["200 1", "200 0", "200 0"], Encoding.ASCII.GetString(stdout).Trim().Split('\n'));
            Assert.Equal(servers.Root.Small, File.ReadAllBytes(Path.Join(dir, "a")));
            Assert.Equal(TestRoot.Sha(servers.Root.Large), TestRoot.Sha(File.ReadAllBytes(Path.Join(dir, "b"))));
            Assert.Equal(servers.Root.Medium, File.ReadAllBytes(Path.Join(dir, "c")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Theory, MemberData(nameof(Engines))]
    public void RangesHeadAndConditionalRequests(string engine)
    {
        var (code, range, _) = Curl("-r", "100-199", "-w", "\n%{http_code}", Url(engine, "64k.bin"));
        Assert.Equal(0, code);
        Assert.Equal(servers.Root.Medium[100..200], range[..100]);
        Assert.EndsWith("\n206", Encoding.ASCII.GetString(range));

        var (_, head, _) = Curl("-I", Url(engine, "1k.bin"));
        var headers = Encoding.ASCII.GetString(head);
        Assert.StartsWith("HTTP/1.1 200", headers);
        Assert.Contains("Content-Length: 1024", headers);
        var etag = headers.Split("\r\n").Single(l => l.StartsWith("ETag:", StringComparison.Ordinal))[5..].Trim();

        var (_, notModified, _) = Curl("-o", "/dev/null", "-w", "%{http_code}", "-H", $"If-None-Match: {etag}", Url(engine, "1k.bin"));
        Assert.Equal("304", Encoding.ASCII.GetString(notModified));
        var (_, traversal, _) = Curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", Url(engine, "../../etc/passwd"));
        Assert.Equal("403", Encoding.ASCII.GetString(traversal));
    }

    [Theory, MemberData(nameof(Engines))]
    public void ProxiesUploadsAndDownloadsForCurl(string engine)
    {
        using var upstream = new ScriptedUpstream();
        using var proxy = ServerProcess.StartProxy(upstream.Address, engine, "--cpus", "0");
        var file = Path.GetTempFileName();
        try
        {
            var upload = new byte[2 << 20];
            new Random(11).NextBytes(upload);
            File.WriteAllBytes(file, upload);
            string url = $"http://127.0.0.1:{proxy.Port}";
            // curl sends Expect: 100-continue for a body this size, and a chunked body when told to.
            var (code, _, stderr) = Curl("-o", "/dev/null", "--data-binary", $"@{file}", $"{url}/echo?m=cl");
            Assert.True(code == 0, stderr);
            (code, _, stderr) = Curl("-o", "/dev/null", "-H", "Transfer-Encoding: chunked", "--data-binary", $"@{file}", $"{url}/echo?m=chunked");
            Assert.True(code == 0, stderr);
            Assert.Equal(upload, upstream.Requests.Single(r => r.Target == "/echo?m=cl").Body);
            Assert.Equal(upload, upstream.Requests.Single(r => r.Target == "/echo?m=chunked").Body);

            var (_, large, _) = Curl($"{url}/large");
            Assert.Equal(ScriptedUpstream.LargeBody(7), large);
            var (_, chunked, _) = Curl($"{url}/chunked");
            Assert.Equal("hello world!", Encoding.ASCII.GetString(chunked));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
