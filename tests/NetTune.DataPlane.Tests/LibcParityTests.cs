using System.Reflection;
using System.Text;
using NetTune.IoUring;
using Tmds.Linux;
using Xunit;
using TmdsLibC = Tmds.Linux.LibC;

namespace NetTune.DataPlane.Tests;

/// <summary>
/// NetTune.IoUring.Libc keeps its constants as C# constants and casts its structs to Tmds.LibC's; these
/// tests hold both to Tmds.LibC's values and layouts, and drive the adapters against the real kernel.
/// </summary>
public unsafe class LibcParityTests
{
    /// <summary>Constants Tmds.LibC 0.5.0 does not have; every other one must match its value there.</summary>
    private static readonly HashSet<string> NotInTmds =
    [
        "SYS_io_uring_setup", "SYS_io_uring_enter", "SYS_io_uring_register", "SYS_openat2",
        "RLIMIT_NOFILE", // Tmds.LibC 0.5.0 has no getrlimit/setrlimit
    ];

    [Fact]
    public void EveryLibcConstantHasTmdsLibCsValue()
    {
        var compared = new List<string>();
        var missing = new List<string>();
        foreach (var field in typeof(Libc).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral))
        {
            var tmds = typeof(TmdsLibC).GetProperty(field.Name, BindingFlags.Public | BindingFlags.Static);
            if (tmds is null)
            {
                if (!NotInTmds.Contains(field.Name)) missing.Add(field.Name);
                continue;
            }
            Assert.True(!NotInTmds.Contains(field.Name), $"{field.Name} is listed as not in Tmds.LibC, but it is there");
            // Same bits in our constant's width: EPOLLET is a uint here and a negative int there.
            ulong mask = System.Runtime.InteropServices.Marshal.SizeOf(field.FieldType) == 8 ? ulong.MaxValue : (1ul << (8 * System.Runtime.InteropServices.Marshal.SizeOf(field.FieldType))) - 1;
            Assert.True(((ulong)AsInteger(field.GetRawConstantValue()!) & mask) == ((ulong)AsInteger(tmds.GetValue(null)!) & mask),
                $"{field.Name}: ours {field.GetRawConstantValue()}, Tmds.LibC {tmds.GetValue(null)}");
            compared.Add(field.Name);
        }
        Assert.Empty(missing);
        Assert.Contains("EAGAIN", compared);
        Assert.Contains("EPOLLET", compared);
    }

    [Fact]
    public void MapFailedIsTmdsLibCs() => Assert.True(Libc.MAP_FAILED == TmdsLibC.MAP_FAILED && Libc.MAP_FAILED == (void*)-1);

    [Fact]
    public void StatxConstantsHaveTmdsLibCsValues()
    {
        Assert.Equal(StatxFields.STATX_BASIC_STATS, AsInteger(TmdsLibC.STATX_BASIC_STATS));
        Assert.Equal(StatxFields.S_IFMT, AsInteger(TmdsLibC.S_IFMT));
        Assert.Equal(StatxFields.S_IFREG, AsInteger(TmdsLibC.S_IFREG));
        Assert.Equal(StatxFields.S_IFDIR, AsInteger(TmdsLibC.S_IFDIR));
        Assert.Equal(StatxFields.BufferSize, sizeof(statx));
    }

    /// <summary>Our io_uring names next to Tmds.LibC's, for what Tmds.LibC 0.5.0 (Linux 5.7) has.</summary>
    public static TheoryData<string, string> IoUringConstantPairs => new()
    {
        { nameof(IoUringConstants.SetupSqPoll), "IORING_SETUP_SQPOLL" },
        { nameof(IoUringConstants.SetupCqSize), "IORING_SETUP_CQSIZE" },
        { nameof(IoUringConstants.SetupClamp), "IORING_SETUP_CLAMP" },
        { nameof(IoUringConstants.EnterGetEvents), "IORING_ENTER_GETEVENTS" },
        { nameof(IoUringConstants.FeatSingleMmap), "IORING_FEAT_SINGLE_MMAP" },
        { nameof(IoUringConstants.FeatNoDrop), "IORING_FEAT_NODROP" },
        { nameof(IoUringConstants.FeatSubmitStable), "IORING_FEAT_SUBMIT_STABLE" },
        { nameof(IoUringConstants.FeatFastPoll), "IORING_FEAT_FAST_POLL" },
        { nameof(IoUringConstants.SqeFixedFile), "IOSQE_FIXED_FILE" },
        { nameof(IoUringConstants.SqeIoDrain), "IOSQE_IO_DRAIN" },
        { nameof(IoUringConstants.SqeIoLink), "IOSQE_IO_LINK" },
        { nameof(IoUringConstants.SqeIoHardlink), "IOSQE_IO_HARDLINK" },
        { nameof(IoUringConstants.SqeAsync), "IOSQE_ASYNC" },
        { nameof(IoUringConstants.SqeBufferSelect), "IOSQE_BUFFER_SELECT" },
        { nameof(IoUringConstants.CqeFBuffer), "IORING_CQE_F_BUFFER" },
        { nameof(IoUringConstants.SqNeedWakeup), "IORING_SQ_NEED_WAKEUP" },
        { nameof(IoUringConstants.OffSqRing), "IORING_OFF_SQ_RING" },
        { nameof(IoUringConstants.OffCqRing), "IORING_OFF_CQ_RING" },
        { nameof(IoUringConstants.OffSqes), "IORING_OFF_SQES" },
        { nameof(IoUringConstants.RegisterProbe), "IORING_REGISTER_PROBE" },
    };

    [Theory]
    [MemberData(nameof(IoUringConstantPairs))]
    public void IoUringConstantHasTmdsLibCsValue(string ours, string tmds)
    {
        var field = typeof(IoUringConstants).GetField(ours, BindingFlags.Public | BindingFlags.Static)!;
        var property = typeof(TmdsLibC).GetProperty(tmds, BindingFlags.Public | BindingFlags.Static);
        Assert.NotNull(property);
        Assert.Equal(AsInteger(property.GetValue(null)!), AsInteger(field.GetRawConstantValue()!));
    }

    [Fact]
    public void IoUringOpcodesTmdsLibCHasHaveItsValues()
    {
        int compared = 0;
        foreach (var op in Enum.GetValues<IoUringOp>())
        {
            string name = "IORING_OP_" + UpperSnake(op.ToString());
            var property = typeof(TmdsLibC).GetProperty(name, BindingFlags.Public | BindingFlags.Static);
            if (property is null) continue; // newer than Tmds.LibC 0.5.0 (e.g. SEND_ZC): ours alone
            Assert.True((byte)op == (byte)property.GetValue(null)!, $"{op}: ours {(byte)op}, Tmds.LibC {property.GetValue(null)}");
            compared++;
        }
        Assert.True(compared >= 20, $"only {compared} opcodes matched a Tmds.LibC name");
    }

    [Fact]
    public void StructsCastToTmdsLibCsHaveTheSameSize()
    {
        Assert.Equal(sizeof(iovec), sizeof(IoVec));
        Assert.Equal(sizeof(msghdr), sizeof(MsgHdr));
        Assert.Equal(sizeof(cmsghdr), sizeof(CmsgHdr));
        Assert.Equal(sizeof(sock_extended_err), sizeof(SockExtendedErr));
        Assert.Equal(sizeof(epoll_event), sizeof(EpollEvent));
        Assert.Equal(sizeof(sockaddr_in), sizeof(SockAddrIn));
        Assert.Equal(sizeof(io_uring_params), sizeof(IoUringParams));
        Assert.Equal(sizeof(io_uring_sqe), sizeof(Sqe));
        Assert.Equal(sizeof(io_uring_cqe), sizeof(Cqe));
    }

    [Fact]
    public void MsgHdrFieldsLandInTmdsLibCsMsghdr()
    {
        var iov = new IoVec { Base = (void*)0x1111, Length = 0x2222 };
        var ours = new MsgHdr
        {
            Name = (void*)0x3333, NameLength = 16, Iov = &iov, IovLength = 1, Control = (void*)0x4444,
            ControlLength = 64, Flags = 0x55,
        };
        var theirs = (msghdr*)&ours;
        Assert.True(theirs->msg_name == (void*)0x3333);
        Assert.Equal(16u, (uint)theirs->msg_namelen);
        Assert.True(theirs->msg_iov == (iovec*)&iov);
        Assert.Equal(1, theirs->msg_iovlen);
        Assert.True(theirs->msg_control == (void*)0x4444);
        Assert.Equal(64u, (uint)theirs->msg_controllen);
        Assert.Equal(0x55, theirs->msg_flags);
        Assert.True(theirs->msg_iov->iov_base == (void*)0x1111);
        Assert.Equal(0x2222ul, (ulong)theirs->msg_iov->iov_len);
    }

    [Fact]
    public void EpollEventAndSockAddrFieldsLandInTmdsLibCs()
    {
        var ev = new EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLET, Data = 0x0102030405060708 };
        var theirEvent = (epoll_event*)&ev;
        Assert.Equal(unchecked((int)(Libc.EPOLLIN | Libc.EPOLLET)), theirEvent->events);
        Assert.Equal(0x0102030405060708ul, theirEvent->data.u64);

        var sa = new SockAddrIn { Family = Libc.AF_INET, Port = 0x5000, Address = 0x0100007f };
        var theirAddress = (sockaddr_in*)&sa;
        Assert.Equal(Libc.AF_INET, (int)theirAddress->sin_family);
        Assert.Equal((ushort)0x5000, theirAddress->sin_port);
        Assert.Equal(0x0100007fu, *(uint*)&theirAddress->sin_addr);

        var err = new SockExtendedErr { Errno = 1, Origin = SockExtendedErr.OriginZeroCopy, Code = SockExtendedErr.CodeZeroCopyCopied, Info = 7, Data = 9 };
        var theirErr = (sock_extended_err*)&err;
        Assert.Equal(TmdsLibC.SO_EE_ORIGIN_ZEROCOPY, theirErr->ee_origin);
        Assert.Equal(TmdsLibC.SO_EE_CODE_ZEROCOPY_COPIED, theirErr->ee_code);
        Assert.Equal(7u, theirErr->ee_info);
        Assert.Equal(9u, theirErr->ee_data);
    }

    [Fact]
    public void IoUringSetupFillsOurParamsThroughTmdsLibC()
    {
        using var ring = Ring.Create(8);
        Assert.True(ring.Fd >= 0);
        Assert.Equal(8u, ring.SqEntries);
        Assert.True((ring.Features & IoUringConstants.FeatSingleMmap) != 0);
        bool[] supported = ring.ProbeOpcodes();
        Assert.True(supported[(int)IoUringOp.Nop]);
        Assert.True(supported[(int)IoUringOp.Accept]);
        Assert.True(supported[(int)IoUringOp.Recv]);
    }

    [Fact]
    public void IoUringEnterThroughTmdsLibCCompletesANop()
    {
        using var ring = Ring.Create(8);
        Sqe* sqe = ring.GetSqe();
        sqe->Opcode = IoUringOp.Nop;
        sqe->UserData = 42;
        Assert.True(ring.SubmitAndWait(1, -1)); // no timeout: the plain io_uring_enter, not EXT_ARG
        Assert.True(ring.TryPeek(out var cqe));
        Assert.Equal(42ul, cqe.UserData);
        Assert.Equal(0, cqe.Res);
        ring.Advance();

        sqe = ring.GetSqe();
        sqe->Opcode = IoUringOp.Nop;
        sqe->UserData = 43;
        Assert.True(ring.SubmitAndWait(1, 1000)); // with a timeout: EXT_ARG through the raw syscall
        Assert.True(ring.TryPeek(out cqe));
        Assert.Equal(43ul, cqe.UserData);
    }

    [Fact]
    public void ErrnoComesBackThroughTmdsLibCAndOurOwnImports()
    {
        const int EBADF = 9;
        Assert.Equal(-1, Libc.close(-1));
        Assert.Equal(EBADF, Libc.Errno);
        Assert.Equal(TmdsLibC.EBADF, Libc.Errno);
        long offset = 0;
        Assert.Equal(-1, (long)Libc.sendfile(-1, -1, &offset, 1)); // ours: not in Tmds.LibC 0.5.0
        Assert.Equal(EBADF, Libc.Errno);
        long closeNumber = IsX64 ? 3 : 57;
        Assert.Equal(-1, Libc.syscall(closeNumber, -1, 0, 0, 0, 0, 0));
        Assert.Equal(EBADF, Libc.Errno);
    }

    [Fact]
    public void StatxFieldsReadTheKernelsAnswer()
    {
        string path = Path.Combine(Path.GetTempPath(), $"nettune-statx-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, new byte[12345]);
        try
        {
            byte* buffer = stackalloc byte[StatxFields.BufferSize];
            byte[] name = Encoding.UTF8.GetBytes(path + "\0");
            fixed (byte* p = name)
                Assert.Equal(0, Libc.statx(-100 /* AT_FDCWD */, p, 0, StatxFields.STATX_BASIC_STATS, buffer));
            Assert.Equal(12345, StatxFields.Size(buffer));
            Assert.Equal(StatxFields.S_IFREG, StatxFields.Mode(buffer) & StatxFields.S_IFMT);
            var mtime = File.GetLastWriteTimeUtc(path);
            Assert.Equal(new DateTimeOffset(mtime).ToUnixTimeSeconds(), StatxFields.MtimeSeconds(buffer));
            Assert.True(StatxFields.MtimeNanos(buffer) < 1_000_000_000);
            Assert.NotEqual(0ul, StatxFields.Inode(buffer));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void OpenBeneathRefusesEscapesThroughTmdsLibCsOpenat2()
    {
        string root = Directory.CreateTempSubdirectory("nettune-beneath-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(root, "inside"), "x");
            byte[] rootName = Encoding.UTF8.GetBytes(root + "\0");
            int dirfd;
            fixed (byte* p = rootName) dirfd = TmdsLibC.open(p, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, default);
            Assert.True(dirfd >= 0);
            try
            {
                fixed (byte* inside = "inside\0"u8)
                {
                    int fd = Libc.OpenBeneath(dirfd, inside, Libc.O_RDONLY | Libc.O_CLOEXEC);
                    Assert.True(fd >= 0, $"errno {Libc.Errno}");
                    Libc.close(fd);
                }
                fixed (byte* outside = "../etc/hostname\0"u8)
                {
                    Assert.Equal(-1, Libc.OpenBeneath(dirfd, outside, Libc.O_RDONLY | Libc.O_CLOEXEC));
                    Assert.Equal(Libc.EXDEV, Libc.Errno);
                }
            }
            finally
            {
                Libc.close(dirfd);
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static bool IsX64 => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;

    private static string UpperSnake(string pascal)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            if (i > 0 && char.IsUpper(pascal[i])) sb.Append('_');
            sb.Append(char.ToUpperInvariant(pascal[i]));
        }
        return sb.ToString();
    }

    /// <summary>A constant's value as a number, whether it is a primitive or one of Tmds.LibC's typedef structs.</summary>
    private static long AsInteger(object value)
    {
        switch (value)
        {
            case ulong u: return unchecked((long)u);
            case IConvertible c when value.GetType().IsPrimitive: return c.ToInt64(null);
        }
        var type = value.GetType();
        var conversion = type.GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => m.Name is "op_Implicit" or "op_Explicit" && m.GetParameters()[0].ParameterType == type && m.ReturnType.IsPrimitive)
            .OrderByDescending(m => System.Runtime.InteropServices.Marshal.SizeOf(m.ReturnType))
            .First();
        return AsInteger(conversion.Invoke(null, [value])!);
    }
}
