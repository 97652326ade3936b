using System.Text;
using NetTune.IoUring;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>The per-worker file cache: its head ends before cached bodies, and its memory of the last request-target.</summary>
public sealed unsafe class FileCacheTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("nettune-cache-").FullName;
    private readonly int _rootFd;

    public FileCacheTests()
    {
        File.WriteAllText(Path.Combine(_root, "a.txt"), "aaaa");
        File.WriteAllText(Path.Combine(_root, "b.txt"), "bb");
        fixed (byte* p = Encoding.UTF8.GetBytes(_root + "\0")) _rootFd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        Assert.True(_rootFd >= 0);
    }

    public void Dispose()
    {
        Libc.close(_rootFd);
        Directory.Delete(_root, true);
    }

    private FileCache NewCache(int validMs = 1000, int maxEntries = 100) => new(_rootFd, validMs, maxEntries, 1 << 20, 1 << 30);

    private static FileEntry Found(FileCache cache, string path, long nowMs)
    {
        Assert.Equal(0, cache.Lookup(Encoding.ASCII.GetBytes(path), nowMs, out var entry));
        return entry!;
    }

    [Fact]
    public void ACachedBodySitsRightAfterItsHeadEnd()
    {
        using var cache = NewCache();
        var a = Found(cache, "a.txt", 0);
        var end = Encoding.ASCII.GetString(new ReadOnlySpan<byte>(a.FullHeadEnd, a.FullHeadEndLength));
        Assert.StartsWith("Content-Type: text/plain", end);
        Assert.EndsWith("Content-Length: 4\r\n\r\n", end);
        Assert.True(a.Content == a.FullHeadEnd + a.FullHeadEndLength);
        Assert.Equal("aaaa", Encoding.ASCII.GetString(new ReadOnlySpan<byte>(a.Content, 4)));
    }

    [Fact]
    public void TheRecentTargetIsOnlyThatTargetAndOnlyWhileFresh()
    {
        using var cache = NewCache(validMs: 1000);
        var a = Found(cache, "a.txt", 0);
        cache.Remember("/a.txt"u8, a);
        Assert.True(cache.TryRecent("/a.txt"u8, 999, out var recent));
        Assert.Same(a, recent);
        Assert.False(cache.TryRecent("/b.txt"u8, 999, out _));
        Assert.False(cache.TryRecent("/a.txt?x"u8, 999, out _));
        Assert.False(cache.TryRecent("/a.tx"u8, 999, out _));
        // Past the validity the lookup must revalidate, so the memory does not answer.
        Assert.False(cache.TryRecent("/a.txt"u8, 1000, out _));
    }

    [Fact]
    public void TheRecentTargetIsForgottenWhenTheCacheChanges()
    {
        using var cache = NewCache(validMs: 10);
        var a = Found(cache, "a.txt", 0);
        cache.Remember("/a.txt"u8, a);
        File.WriteAllText(Path.Combine(_root, "a.txt"), "changed!");
        File.SetLastWriteTimeUtc(Path.Combine(_root, "a.txt"), DateTime.UtcNow.AddMinutes(1));
        var fresh = Found(cache, "a.txt", 100); // revalidation replaces the entry
        Assert.NotSame(a, fresh);
        Assert.False(cache.TryRecent("/a.txt"u8, 101, out _));

        cache.Remember("/a.txt"u8, fresh);
        Found(cache, "b.txt", 101); // a new entry
        Assert.False(cache.TryRecent("/a.txt"u8, 101, out _));
    }
}
