using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// Fixed-size native blocks carved from 2 MiB slabs, owned by one worker thread (no locking).
/// Slabs are mapped after the worker is pinned and memory-bound, so first touch puts them on the
/// worker's NUMA node; optionally hugepage-backed. Blocks are recycled, so steady state neither allocates
/// nor faults; blocks that lay unused for a whole trim period give their pages back to the kernel
/// (MADV_DONTNEED), so a flood's memory returns once it is over, and fault in again zeroed when next used.
/// </summary>
internal sealed unsafe class BlockPool(int blockSize, bool hugePages)
{
    private const int SlabSize = 2 << 20;
    private readonly IdleStack<nint> _free = new();
    private bool _hugePagesFailed;
    /// <summary>Hugepage slabs (start addresses): their pages are the pod's hugetlb reservation, never given back.</summary>
    private readonly List<nint> _hugeSlabs = new();

    public int BlockSize { get; } = blockSize;
    public long MappedBytes { get; private set; }

    public byte* Rent()
    {
        if (_free.Count == 0) Grow();
        _free.TryPop(out nint block);
        return (byte*)block;
    }

    public void Return(byte* block) => _free.Push((nint)block);

    /// <summary>Gives back the pages of free blocks unused since the last call, keeping <paramref name="keepWarm"/> of them.</summary>
    public void TrimUnused(int keepWarm)
    {
        var (from, to) = _free.MarkUnusedCold(keepWarm);
        for (int i = from; i < to; i++) Discard((byte*)_free[i]);
    }

    /// <summary>Gives back a block's pages; its contents read as zeros afterwards. A hugepage slab's block is left as it is.</summary>
    public void Discard(byte* block)
    {
        foreach (var slab in _hugeSlabs)
            if ((nint)block >= slab && (nint)block < slab + SlabSize) return;
        Libc.madvise(block, (nuint)BlockSize, Libc.MADV_DONTNEED);
    }

    private void Grow()
    {
        int slab = Math.Max(SlabSize, (BlockSize + SlabSize - 1) / SlabSize * SlabSize);
        void* p = Libc.MAP_FAILED;
        // Within the pod's hugetlb limit only: a page faulted beyond it is a SIGBUS, not a failed mmap.
        if (hugePages && !_hugePagesFailed && HugepageBudget.TryTake(slab))
        {
            p = Libc.mmap(null, (nuint)slab, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_HUGETLB, -1, 0);
            // No reserved hugepages is normal; fall back for good rather than retrying every slab.
            if (p == Libc.MAP_FAILED) _hugePagesFailed = true;
            else _hugeSlabs.Add((nint)p);
        }
        if (p == Libc.MAP_FAILED)
            p = Libc.mmap(null, (nuint)slab, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        if (p == Libc.MAP_FAILED) throw new OutOfMemoryException($"mmap of a {slab}-byte slab failed: errno {Libc.Errno}");
        MappedBytes += slab;
        for (int off = slab - BlockSize; off >= 0; off -= BlockSize) _free.Push((nint)((byte*)p + off));
    }
}

/// <summary>
/// Free things (blocks, sessions), last in first out, that notes which of them lay unused for a whole period: the
/// stack's bottom, below its lowest depth since the last look. Those are marked cold once (their memory given back by
/// the owner) and stay cold until used again. Owned by one thread; grows like a list, never allocates otherwise.
/// </summary>
internal sealed class IdleStack<T>
{
    private T[] _items = new T[64];
    private int _count;
    /// <summary>Items below this index are cold: their memory was given back.</summary>
    private int _cold;
    /// <summary>The fewest items held since the last <see cref="MarkUnusedCold"/>.</summary>
    private int _lowWater;

    public int Count => _count;
    public T this[int index] => _items[index];

    public void Push(T item)
    {
        if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
        _items[_count++] = item;
    }

    public bool TryPop(out T item)
    {
        if (_count == 0)
        {
            item = default!;
            return false;
        }
        item = _items[--_count];
        _items[_count] = default!;
        _cold = Math.Min(_cold, _count);
        _lowWater = Math.Min(_lowWater, _count);
        return true;
    }

    /// <summary>
    /// The index range of items that lay unused since the last call and are not cold yet, less the
    /// <paramref name="keepWarm"/> nearest the top; they count as cold from now on. Starts the next period.
    /// </summary>
    public (int From, int To) MarkUnusedCold(int keepWarm)
    {
        int from = _cold;
        int to = Math.Max(from, Math.Min(_count, _lowWater - keepWarm));
        _cold = to;
        _lowWater = _count;
        return (from, to);
    }
}
