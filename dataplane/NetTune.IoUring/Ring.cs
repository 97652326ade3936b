using System.Runtime.CompilerServices;
using Tmds.Linux;
using static NetTune.IoUring.IoUringConstants;
using TmdsLibC = Tmds.Linux.LibC;

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
    private uint _sqeTail;      // next SQE we hand out (published to the kernel at the next enter)
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
        _sqeTail = *_sqTail;
    }

    /// <summary>
    /// Creates a ring, trying the cheapest task-running modes first and falling back for older kernels.
    /// Must be called on the thread that will drive it (SINGLE_ISSUER binds the ring to its creator).
    /// </summary>
    /// <param name="submitAll">IORING_SETUP_SUBMIT_ALL: keep submitting past an SQE that fails (off only to test short submits).</param>
    public static Ring Create(uint entries, uint cqEntries = 0, bool preferSingleIssuer = true, bool submitAll = true)
    {
        uint baseFlags = SetupClamp | (cqEntries > 0 ? SetupCqSize : 0);
        uint all = submitAll ? SetupSubmitAll : 0;
        uint[] attempts = preferSingleIssuer
            ? [SetupSingleIssuer | SetupDeferTaskrun | all, SetupCoopTaskrun | all, all, 0]
            : [SetupCoopTaskrun | all, all, 0];
        int lastErrno = 0;
        foreach (var extra in attempts)
        {
            var p = new IoUringParams { Flags = baseFlags | extra, CqEntries = cqEntries };
            int fd = TmdsLibC.io_uring_setup(entries, AsTmds(&p));
            if (fd >= 0) return new Ring(fd, p);
            lastErrno = Libc.Errno;
            // Only "this flag is unknown" is worth retrying; EPERM/ENOSYS/ENOMEM will not improve.
            if (lastErrno != Libc.EINVAL) break;
        }
        throw new IoUringException("io_uring_setup failed", lastErrno);
    }

    /// <summary>
    /// Our io_uring_params is Tmds.LibC's (120 bytes, the same offsets) with the fields kernels after 5.7
    /// filled in (cq_off.flags, the user_addr words), so the kernel's answer is read through ours.
    /// </summary>
    private static io_uring_params* AsTmds(IoUringParams* p) => (io_uring_params*)p;

    /// <summary>Whether this kernel lets the process use io_uring at all (sysctl, seccomp, age).</summary>
    public static bool IsSupported(out int errno)
    {
        var p = new IoUringParams();
        int fd = TmdsLibC.io_uring_setup(2, AsTmds(&p));
        if (fd < 0) { errno = Libc.Errno; return false; }
        Libc.close(fd);
        errno = 0;
        return true;
    }

    /// <summary>The opcodes this kernel supports (IORING_REGISTER_PROBE); empty if probing itself is unsupported.</summary>
    public bool[] ProbeOpcodes()
    {
        const int maxOps = 256;
        int bytes = sizeof(io_uring_probe) + maxOps * sizeof(io_uring_probe_op);
        byte* buf = stackalloc byte[bytes];
        new Span<byte>(buf, bytes).Clear();
        var probe = (io_uring_probe*)buf;
        int r = TmdsLibC.io_uring_register(_fd, RegisterProbe, probe, maxOps);
        var supported = new bool[maxOps];
        if (r < 0) return supported;
        io_uring_probe_op* ops = io_uring_probe.ops(probe);
        for (int i = 0; i < probe->ops_len; i++)
            if ((ops[i].flags & IoUringConstants.ProbeOpSupported) != 0) supported[ops[i].op] = true;
        return supported;
    }

    /// <summary>io_uring_register(2); returns the raw result (negative: -1 with errno set).</summary>
    public long Register(uint opcode, void* arg, uint count) => TmdsLibC.io_uring_register(_fd, opcode, arg, count);

    public int SpaceLeft => (int)(_sqEntries - (_sqeTail - Volatile.Read(ref *_sqHead)));

    /// <summary>
    /// SQEs the kernel has not consumed yet, counted from its head: a short submit or an -EBUSY/-EAGAIN leaves
    /// some behind, and they go with the next enter instead of waiting for more to be queued.
    /// </summary>
    public int PendingSubmissions => (int)(_sqeTail - Volatile.Read(ref *_sqHead));

    /// <summary>The kernel holds completions that did not fit in the CQ ring (IORING_SQ_CQ_OVERFLOW): an enter with GETEVENTS flushes them.</summary>
    public bool CqOverflowed => (Volatile.Read(ref *_sqFlags) & SqCqOverflow) != 0;

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

    /// <summary>
    /// Called when the SQ ring is full and the kernel will not take more until completions are consumed: the
    /// owner moves completions out of the CQ ring (to handle them later, not from inside the caller of
    /// <see cref="GetSqe"/>), so the kernel can flush its overflow and accept submissions again.
    /// </summary>
    public Action? ConsumeCompletionsWhenFull { get; set; }

    /// <summary>
    /// A zeroed SQE; submits what is queued first if the ring is full. If the kernel still refuses SQEs
    /// (-EBUSY: its completions are backed up), <see cref="ConsumeCompletionsWhenFull"/> makes room and the
    /// submit is tried again a few times before giving up with an exception.
    /// </summary>
    public Sqe* GetSqe()
    {
        Sqe* sqe = TryGetSqe();
        if (sqe != null) return sqe;
        for (int attempt = 0; attempt < 8; attempt++)
        {
            SubmitAndWait(0, -1);
            sqe = TryGetSqe();
            if (sqe != null) return sqe;
            ConsumeCompletionsWhenFull?.Invoke();
        }
        throw new IoUringException("submission ring stayed full after submitting and reaping", Libc.EBUSY);
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
        Volatile.Write(ref *_sqTail, _sqeTail);
        // What the kernel has not consumed, from its head: SQEs an earlier enter left behind go now.
        uint toSubmit = _sqeTail - Volatile.Read(ref *_sqHead);
        uint flags = 0;
        bool defer = (SetupFlags & SetupDeferTaskrun) != 0;
        // With DEFER_TASKRUN completions are only produced inside io_uring_enter with GETEVENTS, so ask
        // for them even when not waiting; completions that overflowed the CQ ring come back the same way.
        if (waitFor > 0 || defer || CqOverflowed) flags |= EnterGetEvents;
        if (toSubmit == 0 && !(flags != 0)) return true;

        long r;
        EnterCalls++;
        if (waitFor > 0 && timeoutMs >= 0 && HasExtArg)
        {
            var ts = new KernelTimespec { Seconds = timeoutMs / 1000, Nanoseconds = timeoutMs % 1000 * 1_000_000L };
            var arg = new GetEventsArg { Ts = (ulong)&ts, MinWaitUsec = HasMinTimeout ? minWaitUsec : 0 };
            if (!HasMinTimeout || minWaitUsec == 0) waitFor = Math.Min(waitFor, 1);
            // Raw syscall, not Tmds.LibC's io_uring_enter: that one (0.5.0, Linux 5.7) passes a sigset and
            // its size, and EXT_ARG (5.11) needs sizeof(io_uring_getevents_arg) in that place.
            r = Libc.syscall(Libc.SYS_io_uring_enter, _fd, toSubmit, waitFor, flags | EnterExtArg, (long)&arg, sizeof(GetEventsArg));
        }
        else
        {
            r = TmdsLibC.io_uring_enter(_fd, toSubmit, waitFor, flags, null);
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
