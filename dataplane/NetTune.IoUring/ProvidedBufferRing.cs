using static NetTune.IoUring.IoUringConstants;

namespace NetTune.IoUring;

/// <summary>
/// A provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19+): the kernel picks a buffer only
/// when data actually arrives, so a multishot receive can stay armed on every idle connection without
/// pinning a buffer to each. Buffers go back with <see cref="Recycle"/> and become visible to the
/// kernel at the next <see cref="Publish"/> (one release store per loop turn, not per buffer).
/// </summary>
public sealed unsafe class ProvidedBufferRing : IDisposable
{
    private readonly Ring _ring;
    private readonly byte* _ringMemory;
    private readonly nuint _ringBytes;
    private readonly byte* _buffers;
    private readonly nuint _bufferBytes;
    private readonly int _mask;
    private ushort _tail;
    private int _pending;

    public ushort GroupId { get; }
    public int Count { get; }
    public int BufferSize { get; }

    private ProvidedBufferRing(Ring ring, ushort groupId, int count, int bufferSize, byte* ringMemory, nuint ringBytes, byte* buffers, nuint bufferBytes)
    {
        _ring = ring;
        GroupId = groupId;
        Count = count;
        BufferSize = bufferSize;
        _ringMemory = ringMemory;
        _ringBytes = ringBytes;
        _buffers = buffers;
        _bufferBytes = bufferBytes;
        _mask = count - 1;
    }

    /// <summary>Registers a ring of <paramref name="count"/> (power of two) buffers; null if the kernel refuses.</summary>
    public static ProvidedBufferRing? TryCreate(Ring ring, ushort groupId, int count, int bufferSize, out int errno)
    {
        if (count <= 0 || (count & (count - 1)) != 0 || count > 32768) throw new ArgumentOutOfRangeException(nameof(count), "must be a power of two up to 32768");
        nuint ringBytes = (nuint)(count * 16);
        nuint bufferBytes = (nuint)count * (nuint)bufferSize;
        var ringMemory = (byte*)Libc.mmap(null, ringBytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_POPULATE, -1, 0);
        if (ringMemory == Libc.MAP_FAILED) { errno = Libc.Errno; return null; }
        var buffers = (byte*)Libc.mmap(null, bufferBytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS, -1, 0);
        if (buffers == Libc.MAP_FAILED) { errno = Libc.Errno; Libc.munmap(ringMemory, ringBytes); return null; }

        // struct io_uring_buf_reg { u64 ring_addr; u32 ring_entries; u16 bgid; u16 flags; u64 resv[3]; }
        ulong* reg = stackalloc ulong[5];
        new Span<ulong>(reg, 5).Clear();
        reg[0] = (ulong)ringMemory;
        *(uint*)(reg + 1) = (uint)count;
        *(ushort*)((byte*)(reg + 1) + 4) = groupId;
        if (ring.Register(RegisterPbufRing, reg, 1) < 0)
        {
            errno = Libc.Errno;
            Libc.munmap(buffers, bufferBytes);
            Libc.munmap(ringMemory, ringBytes);
            return null;
        }
        errno = 0;
        var result = new ProvidedBufferRing(ring, groupId, count, bufferSize, ringMemory, ringBytes, buffers, bufferBytes);
        for (int i = 0; i < count; i++) result.Recycle((ushort)i);
        result.Publish();
        return result;
    }

    public byte* Buffer(ushort bufferId) => _buffers + (nuint)bufferId * (nuint)BufferSize;

    /// <summary>Queues a buffer for the kernel; visible after <see cref="Publish"/>.</summary>
    public void Recycle(ushort bufferId)
    {
        // struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv; }
        byte* slot = _ringMemory + ((_tail + _pending) & _mask) * 16;
        *(ulong*)slot = (ulong)Buffer(bufferId);
        *(uint*)(slot + 8) = (uint)BufferSize;
        *(ushort*)(slot + 12) = bufferId;
        _pending++;
    }

    public void Publish()
    {
        if (_pending == 0) return;
        _tail = (ushort)(_tail + _pending);
        _pending = 0;
        // The tail lives in the first entry's resv field (struct io_uring_buf_ring).
        Volatile.Write(ref *(ushort*)(_ringMemory + 14), _tail);
    }

    public void Dispose()
    {
        ushort* unreg = stackalloc ushort[20];
        new Span<ushort>(unreg, 20).Clear();
        unreg[6] = GroupId;
        _ring.Register(UnregisterPbufRing, unreg, 1);
        Libc.munmap(_buffers, _bufferBytes);
        Libc.munmap(_ringMemory, _ringBytes);
    }
}
