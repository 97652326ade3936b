using System.Runtime.CompilerServices;
using static NetTune.IoUring.IoUringConstants;

namespace NetTune.IoUring;

public sealed class IoUringException(string message, int errno) : Exception($"{message}: errno {errno}")
{
    public int Errno { get; } = errno;
}

/// <summary>
/// One io_uring instance: the mmap'd submission and completion rings, driven by a single thread.
/// Not thread-safe by design: the per-core server gives each worker its own ring, which is also what
/// lets us ask the kernel for SINGLE_ISSUER and DEFER_TASKRUN.
/// </summary>
public sealed unsafe class Ring : IDisposable
{
    private readonly int _fd;
    private readonly void* _sqMap, _cqMap;
    private readonly nuint _sqMapSize, _cqMapSize, _sqesSize;
    private readonly uint* _sqHead, _sqTail, _sqFlags;
    private readonly uint _sqMask, _sqEntries;
    private readonly Sqe* _sqes;
    private readonly uint* _cqHead, _cqTail;
    private readonly uint _cqMask;
    private readonly Cqe* _cqes;
    private uint _sqeTail;      // next SQE we hand out (not yet visible to the kernel)
    private uint _sqeSubmitted; // tail last published to the kernel
    private bool _disposed;

    public int Fd => _fd;
    public uint Features { get; }
    public uint SetupFlags { get; }
    public uint SqEntries => _sqEntries;
    public bool HasExtArg => (Features & FeatExtArg) != 0;
    public bool HasMinTimeout => (Features & FeatMinTimeout) != 0;

    /// <summary>Calls to io_uring_enter and SQEs they carried, for the ring-efficiency metrics.</summary>
    public long EnterCalls, SubmittedSqes, ReapedCqes;

    private Ring(int fd, in IoUringParams p)
    {
        _fd = fd;
        Features = p.Features;
        SetupFlags = p.Flags;
        _sqMapSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
        _cqMapSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(Cqe);
        bool single = (p.Features & FeatSingleMmap) != 0;
        if (single) _sqMapSize = _cqMapSize = Math.Max(_sqMapSize, _cqMapSize);

        _sqMap = Libc.mmap(null, _sqMapSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_POPULATE, fd, OffSqRing);
        if (_sqMap == Libc.MAP_FAILED) throw new IoUringException("mmap of the SQ ring failed", Libc.Errno);
        _cqMap = single ? _sqMap : Libc.mmap(null, _cqMapSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_POPULATE, fd, OffCqRing);
        if (_cqMap == Libc.MAP_FAILED) throw new IoUringException("mmap of the CQ ring failed", Libc.Errno);
        _sqesSize = p.SqEntries * (nuint)sizeof(Sqe);
        _sqes = (Sqe*)Libc.mmap(null, _sqesSize, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_POPULATE, fd, OffSqes);
        if (_sqes == Libc.MAP_FAILED) throw new IoUringException("mmap of the SQE array failed", Libc.Errno);

        byte* sq = (byte*)_sqMap, cq = (byte*)_cqMap;
        _sqHead = (uint*)(sq + p.SqOff.Head);
        _sqTail = (uint*)(sq + p.SqOff.Tail);
        _sqFlags = (uint*)(sq + p.SqOff.Flags);
        _sqMask = *(uint*)(sq + p.SqOff.RingMask);
        _sqEntries = *(uint*)(sq + p.SqOff.RingEntries);
        // We fill SQEs strictly in ring order, so the indirection array is the identity, written once.
        uint* array = (uint*)(sq + p.SqOff.Array);
        for (uint i = 0; i < _sqEntries; i++) array[i] = i;

        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqes = (Cqe*)(cq + p.CqOff.Cqes);
        _sqeTail = _sqeSubmitted = *_sqTail;
    }

    /// <summary>
    /// Creates a ring, trying the cheapest task-running modes first and falling back for older kernels.
    /// Must be called on the thread that will drive it (SINGLE_ISSUER binds the ring to its creator).
    /// </summary>
    public static Ring Create(uint entries, uint cqEntries = 0, bool preferSingleIssuer = true)
    {
        uint baseFlags = SetupClamp | (cqEntries > 0 ? SetupCqSize : 0);
        uint[] attempts = preferSingleIssuer
            ? [SetupSingleIssuer | SetupDeferTaskrun | SetupSubmitAll, SetupCoopTaskrun | SetupSubmitAll, SetupSubmitAll, 0]
            : [SetupCoopTaskrun | SetupSubmitAll, SetupSubmitAll, 0];
        int lastErrno = 0;
        foreach (var extra in attempts)
        {
            var p = new IoUringParams { Flags = baseFlags | extra, CqEntries = cqEntries };
            long fd = Libc.syscall(Libc.SYS_io_uring_setup, entries, (long)&p, 0, 0, 0, 0);
            if (fd >= 0) return new Ring((int)fd, p);
            lastErrno = Libc.Errno;
            // Only "this flag is unknown" is worth retrying; EPERM/ENOSYS/ENOMEM will not improve.
            if (lastErrno != Libc.EINVAL) break;
        }
        throw new IoUringException("io_uring_setup failed", lastErrno);
    }

    /// <summary>Whether this kernel lets the process use io_uring at all (sysctl, seccomp, age).</summary>
    public static bool IsSupported(out int errno)
    {
        var p = new IoUringParams();
        long fd = Libc.syscall(Libc.SYS_io_uring_setup, 2, (long)&p, 0, 0, 0, 0);
        if (fd < 0) { errno = Libc.Errno; return false; }
        Libc.close((int)fd);
        errno = 0;
        return true;
    }

    /// <summary>The opcodes this kernel supports (IORING_REGISTER_PROBE); empty if probing itself is unsupported.</summary>
    public bool[] ProbeOpcodes()
    {
        const int maxOps = 256;
        byte* buf = stackalloc byte[16 + maxOps * 8];
        new Span<byte>(buf, 16 + maxOps * 8).Clear();
        long r = Libc.syscall(Libc.SYS_io_uring_register, _fd, RegisterProbe, (long)buf, maxOps, 0, 0);
        var supported = new bool[maxOps];
        if (r < 0) return supported;
        int opsLen = buf[1];
        for (int i = 0; i < opsLen; i++)
        {
            byte* op = buf + 16 + i * 8;
            if ((*(ushort*)(op + 2) & 1) != 0) supported[op[0]] = true;
        }
        return supported;
    }

    /// <summary>io_uring_register(2); returns the raw result (negative: -1 with errno set).</summary>
    public long Register(uint opcode, void* arg, uint count) =>
        Libc.syscall(Libc.SYS_io_uring_register, _fd, opcode, (long)arg, count, 0, 0);

    public int SpaceLeft => (int)(_sqEntries - (_sqeTail - Volatile.Read(ref *_sqHead)));

    public int PendingSubmissions => (int)(_sqeTail - _sqeSubmitted);

    /// <summary>A zeroed SQE, or null when the ring is full (submit, then retry).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Sqe* TryGetSqe()
    {
        uint head = Volatile.Read(ref *_sqHead);
        if (_sqeTail - head >= _sqEntries) return null;
        Sqe* sqe = &_sqes[_sqeTail & _sqMask];
        _sqeTail++;
        *sqe = default;
        return sqe;
    }

    /// <summary>A zeroed SQE; submits what is queued first if the ring is full.</summary>
    public Sqe* GetSqe()
    {
        Sqe* sqe = TryGetSqe();
        if (sqe != null) return sqe;
        SubmitAndWait(0, -1);
        sqe = TryGetSqe();
        if (sqe == null) throw new IoUringException("submission ring stayed full after submit", Libc.EBUSY);
        return sqe;
    }

    /// <summary>
    /// Publishes queued SQEs and waits for at least <paramref name="waitFor"/> completions, or until
    /// <paramref name="timeoutMs"/> passes (negative: no timeout). One syscall either way.
    /// Returns false on timeout or interruption (not errors worth failing for).
    /// </summary>
    public bool SubmitAndWait(uint waitFor, int timeoutMs) => SubmitAndWait(waitFor, timeoutMs, 0);

    /// <summary>
    /// As <see cref="SubmitAndWait(uint, int)"/>, but with <paramref name="minWaitUsec"/> > 0 (and
    /// IORING_FEAT_MIN_TIMEOUT, Linux 6.12+) the kernel waits at most that long for all
    /// <paramref name="waitFor"/> completions and then settles for one: a bounded delay that lets a busy
    /// loop reap completions in batches instead of waking up for each.
    /// </summary>
    public bool SubmitAndWait(uint waitFor, int timeoutMs, uint minWaitUsec)
    {
        uint toSubmit = _sqeTail - _sqeSubmitted;
        Volatile.Write(ref *_sqTail, _sqeTail);
        _sqeSubmitted = _sqeTail;
        uint flags = 0;
        bool defer = (SetupFlags & SetupDeferTaskrun) != 0;
        // With DEFER_TASKRUN completions are only produced inside io_uring_enter with GETEVENTS, so ask
        // for them even when not waiting.
        if (waitFor > 0 || defer) flags |= EnterGetEvents;
        if (toSubmit == 0 && !(flags != 0)) return true;

        long r;
        EnterCalls++;
        if (waitFor > 0 && timeoutMs >= 0 && HasExtArg)
        {
            var ts = new KernelTimespec { Seconds = timeoutMs / 1000, Nanoseconds = timeoutMs % 1000 * 1_000_000L };
            var arg = new GetEventsArg { Ts = (ulong)&ts, MinWaitUsec = HasMinTimeout ? minWaitUsec : 0 };
            if (!HasMinTimeout || minWaitUsec == 0) waitFor = Math.Min(waitFor, 1);
            r = Libc.syscall(Libc.SYS_io_uring_enter, _fd, toSubmit, waitFor, flags | EnterExtArg, (long)&arg, sizeof(GetEventsArg));
        }
        else
        {
            r = Libc.syscall(Libc.SYS_io_uring_enter, _fd, toSubmit, waitFor, flags, 0, 8);
        }
        if (r >= 0)
        {
            SubmittedSqes += r;
            return true;
        }
        int errno = Libc.Errno;
        if (errno is Libc.ETIME or Libc.EINTR) return false;
        // EBUSY/EAGAIN: the CQ is backed up; the caller reaps and calls again.
        if (errno is Libc.EBUSY or Libc.EAGAIN) return false;
        throw new IoUringException("io_uring_enter failed", errno);
    }

    /// <summary>Reads the next completion without consuming it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPeek(out Cqe cqe)
    {
        uint head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail)) { cqe = default; return false; }
        cqe = _cqes[head & _cqMask];
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance()
    {
        Volatile.Write(ref *_cqHead, *_cqHead + 1);
        ReapedCqes++;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Libc.munmap(_sqes, _sqesSize);
        if (_cqMap != _sqMap) Libc.munmap(_cqMap, _cqMapSize);
        Libc.munmap(_sqMap, _sqMapSize);
        Libc.close(_fd);
    }
}
