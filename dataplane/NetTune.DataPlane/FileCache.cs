using System.Runtime.InteropServices;
using System.Text;
using NetTune.Http;
using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// An open file with its metadata and pre-built header block; optionally its bytes in native memory.
/// Reference-counted because queued sends point into it while the cache may already have replaced it.
/// </summary>
internal sealed unsafe class FileEntry
{
    public required string Key;
    public int Fd;
    public long Size;
    public long MtimeSeconds;
    public uint MtimeNanos;
    public ulong Inode;
    public required byte[] Etag;
    public required byte[] HeaderBlock;
    /// <summary>
    /// The end of this file's 200 head (<see cref="ResponseHead.WriteFullEnd"/>), built once, in native memory
    /// right before <see cref="Content"/>: a whole cached file's head end and body leave as one iovec.
    /// </summary>
    public byte* FullHeadEnd;
    public int FullHeadEndLength;
    /// <summary>The whole file in native memory (at <see cref="FullHeadEnd"/> + its length), or null when it is streamed from <see cref="Fd"/>.</summary>
    public byte* Content;
    public long CheckedAtMs;
    private int _refs = 1; // the cache's own reference
    private FileCache? _owner;

    public void Attach(FileCache owner) => _owner = owner;
    public void AddRef() => _refs++;

    public void Release()
    {
        if (--_refs > 0) return;
        if (Content != null) _owner?.ReturnBudget(Size);
        if (FullHeadEnd != null) NativeMemory.Free(FullHeadEnd);
        FullHeadEnd = Content = null;
        if (Fd >= 0) Libc.close(Fd);
        Fd = -1;
    }
}

/// <summary>
/// Per-worker open-file cache (the equivalent of nginx's open_file_cache plus a small-file memory cache).
/// Lookups are by the normalised path bytes with no allocation; misses and revalidations pay for
/// openat2 + statx. Revalidation after <c>validMs</c> notices changed and deleted files.
/// </summary>
internal sealed unsafe class FileCache : IDisposable
{
    private readonly int _rootFd;
    private readonly Dictionary<string, FileEntry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileEntry>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int _validMs;
    private readonly int _maxEntries;
    private readonly long _maxFileInMemory;
    private long _memoryBudget;
    // The last request-target served and its entry: a hot file asked for again by the same target skips the
    // path normaliser, the widening to chars and the string hash. Forgotten whenever the cache changes.
    private readonly byte[] _recentTarget = new byte[256];
    private int _recentTargetLength;
    private FileEntry? _recentEntry;

    public FileCache(int rootFd, int validMs, int maxEntries, long maxFileInMemory, long memoryBudget)
    {
        _rootFd = rootFd;
        _validMs = validMs;
        _maxEntries = maxEntries;
        _maxFileInMemory = maxFileInMemory;
        _memoryBudget = memoryBudget;
        _lookup = _entries.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _entries.Count;

    internal void ReturnBudget(long bytes) => _memoryBudget += bytes;

    /// <summary>The entry last found for this request-target (<see cref="Remember"/>), while it needs no revalidation.</summary>
    public bool TryRecent(ReadOnlySpan<byte> target, long nowMs, out FileEntry? entry)
    {
        entry = _recentEntry;
        return entry != null && nowMs - entry.CheckedAtMs < _validMs && target.SequenceEqual(_recentTarget.AsSpan(0, _recentTargetLength));
    }

    /// <summary>Remembers what <see cref="Lookup"/> found for a request-target, for <see cref="TryRecent"/>.</summary>
    public void Remember(ReadOnlySpan<byte> target, FileEntry entry)
    {
        if (target.Length > _recentTarget.Length) return;
        target.CopyTo(_recentTarget);
        _recentTargetLength = target.Length;
        _recentEntry = entry;
    }

    /// <summary>Finds or opens the file; returns 0 and a borrowed entry, or an HTTP status (403/404/500).</summary>
    public int Lookup(ReadOnlySpan<byte> relativePath, long nowMs, out FileEntry? entry)
    {
        Span<char> key = relativePath.Length <= 1024 ? stackalloc char[relativePath.Length] : new char[relativePath.Length];
        // Latin-1 widening maps every byte to one char, so arbitrary (UTF-8 or not) names round-trip.
        Encoding.Latin1.GetChars(relativePath, key);
        if (_lookup.TryGetValue(key, out entry))
        {
            if (nowMs - entry.CheckedAtMs < _validMs) return 0;
            int status = Revalidate(entry, relativePath, nowMs, out var fresh);
            if (status != 0)
            {
                Remove(entry);
                entry = null;
                return status;
            }
            if (fresh != entry)
            {
                Remove(entry);
                entry = fresh;
                Insert(fresh!);
            }
            return 0;
        }

        int result = Open(relativePath, nowMs, out entry);
        if (result == 0) Insert(entry!);
        return result;
    }

    private int Revalidate(FileEntry old, ReadOnlySpan<byte> relativePath, long nowMs, out FileEntry? fresh)
    {
        fresh = null;
        int fd = OpenBeneath(relativePath, out int status);
        if (fd < 0) return status;
        byte* stx = stackalloc byte[StatxFields.BufferSize];
        if (!StatFd(fd, stx) || !IsRegular(stx) && !IsDirectory(stx))
        {
            Libc.close(fd);
            return 404;
        }
        if (IsRegular(stx) && StatxFields.Inode(stx) == old.Inode && StatxFields.Size(stx) == old.Size
            && StatxFields.MtimeSeconds(stx) == old.MtimeSeconds && StatxFields.MtimeNanos(stx) == old.MtimeNanos)
        {
            Libc.close(fd);
            old.CheckedAtMs = nowMs;
            fresh = old;
            return 0;
        }
        Libc.close(fd);
        return Open(relativePath, nowMs, out fresh);
    }

    private int Open(ReadOnlySpan<byte> relativePath, long nowMs, out FileEntry? entry)
    {
        entry = null;
        int fd = OpenBeneath(relativePath, out int status);
        if (fd < 0) return status;
        byte* stx = stackalloc byte[StatxFields.BufferSize];
        if (!StatFd(fd, stx)) { Libc.close(fd); return 500; }
        string keyPath = Encoding.Latin1.GetString(relativePath);
        string typePath = keyPath;
        if (IsDirectory(stx))
        {
            // A directory is served by its index.html; we never list directories.
            byte* index = stackalloc byte[11];
            "index.html"u8.CopyTo(new Span<byte>(index, 10));
            index[10] = 0;
            int indexFd = Libc.OpenBeneath(fd, index, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK);
            int indexErrno = Libc.Errno;
            Libc.close(fd);
            if (indexFd < 0) return indexErrno is Libc.ENOENT ? 404 : 403;
            fd = indexFd;
            typePath = "index.html";
            if (!StatFd(fd, stx)) { Libc.close(fd); return 500; }
        }
        if (!IsRegular(stx)) { Libc.close(fd); return 404; }

        long size = StatxFields.Size(stx);
        long mtime = StatxFields.MtimeSeconds(stx);
        var etag = ResponseHead.BuildEtag(mtime, size);
        entry = new FileEntry
        {
            Key = keyPath,
            Fd = fd,
            Size = size,
            MtimeSeconds = mtime,
            MtimeNanos = StatxFields.MtimeNanos(stx),
            Inode = StatxFields.Inode(stx),
            Etag = etag,
            HeaderBlock = ResponseHead.BuildFileHeaders(MimeTypes.ForPath(typePath), mtime, etag),
            CheckedAtMs = nowMs,
        };
        entry.Attach(this);
        bool inMemory = size > 0 && size <= _maxFileInMemory && size <= _memoryBudget;
        if (!AllocateFullHeadEnd(entry, inMemory ? size : 0)) return 0;
        if (inMemory && LoadIntoMemory(entry)) _memoryBudget -= size;
        return 0;
    }

    /// <summary>The head end, with room for the body behind it when the file is to be cached.</summary>
    private static bool AllocateFullHeadEnd(FileEntry entry, long bodyRoom)
    {
        Span<byte> end = stackalloc byte[entry.HeaderBlock.Length + 64];
        int n = ResponseHead.WriteFullEnd(end, entry.HeaderBlock, entry.Size);
        if (n < 0) return false;
        entry.FullHeadEnd = (byte*)NativeMemory.Alloc((nuint)(n + bodyRoom));
        entry.FullHeadEndLength = n;
        end[..n].CopyTo(new Span<byte>(entry.FullHeadEnd, n));
        return true;
    }

    private static bool LoadIntoMemory(FileEntry entry)
    {
        byte* content = entry.FullHeadEnd + entry.FullHeadEndLength;
        long done = 0;
        while (done < entry.Size)
        {
            nint n = Libc.pread(entry.Fd, content + done, (nuint)(entry.Size - done), done);
            if (n <= 0)
            {
                if (n < 0 && Libc.Errno == Libc.EINTR) continue;
                // The file shrank or failed under us: serve it streamed; the stream path copes with errors.
                return false;
            }
            done += n;
        }
        entry.Content = content;
        return true;
    }

    private int OpenBeneath(ReadOnlySpan<byte> relativePath, out int status)
    {
        status = 0;
        int len = relativePath.Length;
        byte* path = stackalloc byte[len + 2];
        if (len == 0) { path[0] = (byte)'.'; path[1] = 0; }
        else
        {
            relativePath.CopyTo(new Span<byte>(path, len));
            path[len] = 0;
        }
        int fd = Libc.OpenBeneath(_rootFd, path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK);
        if (fd >= 0) return fd;
        status = Libc.Errno switch
        {
            Libc.ENOENT or Libc.ENOTDIR or Libc.ENAMETOOLONG => 404,
            // EXDEV: the path (through "..", or a symlink) leads outside the root.
            Libc.EXDEV or Libc.ELOOP or Libc.EACCES or Libc.EPERM => 403,
            _ => 500,
        };
        return -1;
    }

    private static bool StatFd(int fd, byte* stx)
    {
        byte empty = 0;
        return Libc.statx(fd, &empty, Libc.AT_EMPTY_PATH, StatxFields.STATX_BASIC_STATS, stx) == 0;
    }

    private static bool IsRegular(byte* stx) => (StatxFields.Mode(stx) & StatxFields.S_IFMT) == StatxFields.S_IFREG;
    private static bool IsDirectory(byte* stx) => (StatxFields.Mode(stx) & StatxFields.S_IFMT) == StatxFields.S_IFDIR;

    private void Insert(FileEntry entry)
    {
        _recentEntry = null;
        if (_entries.Count >= _maxEntries)
        {
            // Crude but bounded: drop everything. Entries still referenced by in-flight sends live on
            // until those sends complete.
            foreach (var e in _entries.Values) e.Release();
            _entries.Clear();
        }
        _entries[entry.Key] = entry;
    }

    private void Remove(FileEntry entry)
    {
        _recentEntry = null;
        if (_entries.TryGetValue(entry.Key, out var current) && current == entry) _entries.Remove(entry.Key);
        entry.Release();
    }

    public void Dispose()
    {
        _recentEntry = null;
        foreach (var e in _entries.Values) e.Release();
        _entries.Clear();
    }
}
