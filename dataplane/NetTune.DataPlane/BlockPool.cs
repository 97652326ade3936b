using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>
/// Fixed-size native blocks carved from 2 MiB slabs, owned by one worker thread (no locking).
/// Slabs are mapped after the worker is pinned and memory-bound, so first touch puts them on the
/// worker's NUMA node; optionally hugepage-backed. Blocks are recycled, never unmapped, so steady state
/// neither allocates nor faults.
/// </summary>
internal sealed unsafe class BlockPool(int blockSize, bool hugePages)
{
    private const int SlabSize = 2 << 20;
    private readonly Stack<nint> _free = new();
    private bool _hugePagesFailed;

    public int BlockSize { get; } = blockSize;
    public long MappedBytes { get; private set; }

    public byte* Rent()
    {
        if (_free.Count == 0) Grow();
        return (byte*)_free.Pop();
    }

    public void Return(byte* block) => _free.Push((nint)block);

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
        }
        if (p == Libc.MAP_FAILED)
            p = Libc.mmap(null, (nuint)slab, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        if (p == Libc.MAP_FAILED) throw new OutOfMemoryException($"mmap of a {slab}-byte slab failed: errno {Libc.Errno}");
        MappedBytes += slab;
        for (int off = slab - BlockSize; off >= 0; off -= BlockSize) _free.Push((nint)((byte*)p + off));
    }
}
