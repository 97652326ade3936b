using System.Runtime.InteropServices;

namespace NetTune.IoUring;

/// <summary>Opcodes from linux/io_uring.h (enum io_uring_op); later ones are from the kernel docs.</summary>
public enum IoUringOp : byte
{
    Nop = 0, Readv = 1, Writev = 2, PollAdd = 6, PollRemove = 7, Sendmsg = 9, Recvmsg = 10, Timeout = 11,
    TimeoutRemove = 12, Accept = 13, AsyncCancel = 14, LinkTimeout = 15, Connect = 16, Close = 19, Statx = 21, Read = 22,
    Write = 23, Send = 26, Recv = 27, Openat2 = 28, Splice = 30, ProvideBuffers = 31, Tee = 33, Shutdown = 34,
    Socket = 45, SendZc = 47, SendmsgZc = 48,
}

public static class IoUringConstants
{
    public const uint SetupSqPoll = 1u << 1, SetupCqSize = 1u << 3, SetupClamp = 1u << 4, SetupSubmitAll = 1u << 7,
        SetupCoopTaskrun = 1u << 8, SetupTaskrunFlag = 1u << 9, SetupSingleIssuer = 1u << 12,
        SetupDeferTaskrun = 1u << 13;

    public const uint EnterGetEvents = 1u << 0, EnterExtArg = 1u << 3, EnterRegisteredRing = 1u << 4;

    public const uint FeatSingleMmap = 1u << 0, FeatNoDrop = 1u << 1, FeatSubmitStable = 1u << 2,
        FeatFastPoll = 1u << 5, FeatExtArg = 1u << 8, FeatNativeWorkers = 1u << 9, FeatCqeSkip = 1u << 11,
        /// <summary>min_wait_usec in io_uring_getevents_arg is honoured (Linux 6.12; not in the 6.1 headers).</summary>
        FeatMinTimeout = 1u << 15;

    public const byte SqeFixedFile = 1 << 0, SqeIoDrain = 1 << 1, SqeIoLink = 1 << 2, SqeIoHardlink = 1 << 3,
        SqeAsync = 1 << 4, SqeBufferSelect = 1 << 5, SqeCqeSkipSuccess = 1 << 6;

    public const ushort AcceptMultishot = 1 << 0;
    public const ushort RecvSendPollFirst = 1 << 0, RecvMultishot = 1 << 1;
    /// <summary>SEND_ZC/SENDMSG_ZC (in ioprio): the notification says whether the kernel copied after all (Linux 6.2).</summary>
    public const ushort SendZcReportUsage = 1 << 3;
    /// <summary>Set in a zero-copy notification's res when the data was copied (with <see cref="SendZcReportUsage"/>).</summary>
    public const uint NotifUsageZcCopied = 1u << 31;

    public const uint CqeFBuffer = 1u << 0, CqeFMore = 1u << 1, CqeFSockNonEmpty = 1u << 2, CqeFNotif = 1u << 3;

    public const uint SqNeedWakeup = 1u << 0, SqCqOverflow = 1u << 1, SqTaskrun = 1u << 2;

    public const long OffSqRing = 0, OffCqRing = 0x8000000, OffSqes = 0x10000000;

    /// <summary>IO_URING_OP_SUPPORTED in io_uring_probe_op.flags.</summary>
    public const ushort ProbeOpSupported = 1 << 0;

    public const uint RegisterProbe = 8, RegisterRingFds = 20, RegisterPbufRing = 22, UnregisterPbufRing = 23;

    public const uint TimeoutMultishot = 1u << 6;
}

[StructLayout(LayoutKind.Sequential)]
public struct SqRingOffsets
{
    public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
    public ulong UserAddr;
}

[StructLayout(LayoutKind.Sequential)]
public struct CqRingOffsets
{
    public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
    public ulong UserAddr;
}

[StructLayout(LayoutKind.Sequential)]
public struct IoUringParams
{
    public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd;
    public uint Resv0, Resv1, Resv2;
    public SqRingOffsets SqOff;
    public CqRingOffsets CqOff;
}

/// <summary>struct io_uring_sqe, 64 bytes. Unions are flattened to the members we use.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
public struct Sqe
{
    [FieldOffset(0)] public IoUringOp Opcode;
    [FieldOffset(1)] public byte Flags;
    [FieldOffset(2)] public ushort IoPrio;
    [FieldOffset(4)] public int Fd;
    /// <summary>off / addr2.</summary>
    [FieldOffset(8)] public ulong Off;
    /// <summary>addr / splice_off_in.</summary>
    [FieldOffset(16)] public ulong Addr;
    [FieldOffset(24)] public uint Len;
    /// <summary>rw_flags / msg_flags / accept_flags / timeout_flags / splice_flags.</summary>
    [FieldOffset(28)] public uint OpFlags;
    [FieldOffset(32)] public ulong UserData;
    [FieldOffset(40)] public ushort BufIndexOrGroup;
    [FieldOffset(42)] public ushort Personality;
    /// <summary>splice_fd_in / file_index.</summary>
    [FieldOffset(44)] public int SpliceFdIn;
    [FieldOffset(48)] public ulong Addr3;
    [FieldOffset(56)] public ulong Pad;
}

[StructLayout(LayoutKind.Sequential)]
public struct Cqe
{
    public ulong UserData;
    public int Res;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
public struct KernelTimespec
{
    public long Seconds;
    public long Nanoseconds;
}

/// <summary>struct io_uring_getevents_arg, passed with IORING_ENTER_EXT_ARG to wait with a timeout.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GetEventsArg
{
    public ulong SigMask;
    public uint SigMaskSize;
    public uint MinWaitUsec;
    public ulong Ts;
}
