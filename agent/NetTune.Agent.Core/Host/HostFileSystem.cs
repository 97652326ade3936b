using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace NetTune.Agent.Core.Host;

/// <summary>
/// Host files under a root folder, read and written with open/read/write(2) so the caller sees the kernel's exact
/// errno (sysfs returns EPERM for managed IRQs, EIO for offline CPUs, ENOENT from xps_cpus on single-queue devices).
/// </summary>
public sealed class HostFileSystem : IHostFileSystem
{
    private long _writes;

    public HostFileSystem(string root)
    {
        Root = Path.GetFullPath(string.IsNullOrEmpty(root) ? "/" : root);
    }

    public string Root { get; }
    public long WriteCount => Interlocked.Read(ref _writes);

    public string FullPath(string path) => Path.Join(Root, path.TrimStart('/'));

    public unsafe HostIoResult Read(string path)
    {
        var fd = OpenRaw(FullPath(path), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return HostIoResult.Failure(errno);
        try
        {
            var buffer = new byte[8192];
            var total = 0;
            while (true)
            {
                if (total == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                long n;
                fixed (byte* p = &buffer[total]) n = read(fd, p, buffer.Length - total);
                if (n < 0)
                {
                    var e = errno;
                    if (e == 4) continue; // EINTR
                    return HostIoResult.Failure(e);
                }
                if (n == 0) break;
                total += (int)n;
            }
            return HostIoResult.Success(Encoding.UTF8.GetString(buffer, 0, total));
        }
        finally
        {
            close(fd);
        }
    }

    public unsafe HostIoResult Write(string path, string value)
    {
        // O_TRUNC matters only for regular files (fixture trees); sysfs and procfs ignore it.
        var fd = OpenRaw(FullPath(path), O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) return HostIoResult.Failure(errno);
        Interlocked.Increment(ref _writes);
        try
        {
            var bytes = Encoding.UTF8.GetBytes(value + "\n");
            long n;
            do
            {
                fixed (byte* p = bytes) n = write(fd, p, bytes.Length);
            } while (n < 0 && errno == 4);
            if (n < 0) return HostIoResult.Failure(errno);
            // A short write on sysfs means the kernel took only part of the value: say so instead of pretending.
            return n == bytes.Length ? HostIoResult.Success() : HostIoResult.Failure(Errnos.EIO);
        }
        finally
        {
            close(fd);
        }
    }

    public bool Exists(string path) => Path.Exists(FullPath(path));

    public IReadOnlyList<string> List(string path)
    {
        var full = FullPath(path);
        if (!Directory.Exists(full)) return [];
        return Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
    }

    public string? ResolveLink(string path)
    {
        if (new FileInfo(FullPath(path)).LinkTarget is null) return null;
        return RealPath(path, 0);
    }

    /// <summary>realpath(3) confined to the root: every symlink on the way is followed, an absolute target counts from the root.</summary>
    public string RealPath(string path, int depth)
    {
        if (depth > 40) throw new IOException($"too many levels of symbolic links resolving {path}");
        var current = "";
        foreach (var part in path.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? "";
                continue;
            }
            var next = current.Length == 0 ? part : current + "/" + part;
            var target = new FileInfo(Path.Join(Root, next)).LinkTarget;
            if (target is null) current = next;
            else current = RealPath(target.StartsWith('/') ? target : (current.Length == 0 ? target : current + "/" + target), depth + 1);
        }
        return current;
    }

    private static unsafe int OpenRaw(string path, int flags)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes) return open(p, flags, 0);
    }
}
