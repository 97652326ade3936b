using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using NetTune.Api.V1Alpha1;

namespace NetTune.Agent.Core.Seccomp;

/// <summary>
/// NetTune's seccomp profile for the data-plane pods: the container runtime's default profile for a container without
/// capabilities (the data plane drops them all), plus io_uring_setup, io_uring_enter and io_uring_register, and the
/// NUMA memory-policy calls its workers bind their memory with.
/// containerd 2.0 (PR #9320) and Docker 25 (moby PR #46762) took those three out of their defaults, so under
/// RuntimeDefault the io_uring engine cannot start there. The rules are the ones containerd's
/// contrib/seccomp/seccomp_default.go generates (its 2.x list): every other syscall fails with EPERM, personality only
/// for the harmless personas, clone without namespace flags, clone3 with ENOSYS so that libc falls back to clone.
/// Written in the OCI runtime-spec's LinuxSeccomp format, which containerd and CRI-O read for Localhost profiles.
/// </summary>
public static class DataPlaneSeccompProfile
{
    public static readonly IReadOnlyList<string> IoUringSyscalls = ["io_uring_setup", "io_uring_enter", "io_uring_register"];

    /// <summary>
    /// Each worker binds its memory to its NUMA node (set_mempolicy MPOL_BIND). containerd's default refuses these;
    /// Docker's allows them with CAP_SYS_NICE, which only moving other processes' pages (MPOL_MF_MOVE_ALL) needs, and
    /// the kernel checks that itself.
    /// </summary>
    public static readonly IReadOnlyList<string> MemoryPolicySyscalls = ["set_mempolicy", "get_mempolicy", "mbind"];

    /// <summary>What containerd 2's default allows unconditionally on every architecture.</summary>
    public static readonly IReadOnlyList<string> RuntimeDefaultSyscalls = """
        accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
        clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
        clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
        epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
        execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
        fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
        fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
        futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
        getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
        getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
        getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
        inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
        ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset
        landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
        lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir
        mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
        mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
        msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2 pause
        pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64
        process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv
        recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2
        restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
        sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
        sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
        seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
        sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid
        setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
        set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl
        shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair
        splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
        time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
        timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
        truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice
        wait4 waitid waitpid write writev
        """.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>personality(2) arguments the default allows: PER_LINUX, PER_LINUX32, UNAME26 with each, and the query 0xffffffff.</summary>
    public static readonly IReadOnlyList<ulong> Personalities = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

    /// <summary>CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP: clone(2) may set none of them without CAP_SYS_ADMIN.</summary>
    public const ulong NamespaceCloneFlags = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000;

    private const int Enosys = 38;

    /// <summary>The seccomp architectures and extra syscalls of the runtime's default on this machine's architecture.</summary>
    public static (IReadOnlyList<string> Architectures, IReadOnlyList<string> Syscalls) ForArchitecture(Architecture arch) => arch switch
    {
        Architecture.X64 => (["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], ["arch_prctl", "modify_ldt"]),
        Architecture.Arm64 => (["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"], ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"]),
        _ => throw new PlatformNotSupportedException($"no seccomp profile for {arch}: NetTune's agent runs on x86_64 and arm64 nodes"),
    };

    /// <summary>The profile as JSON (indented, stable: the same bytes for the same architecture, so the agent can compare).</summary>
    public static string Json(Architecture arch)
    {
        var (architectures, archSyscalls) = ForArchitecture(arch);
        // ptrace of one's own children: containerd allows it on kernels 4.8 and later, which seccomp cannot bypass there.
        var allowed = RuntimeDefaultSyscalls.Concat(archSyscalls).Append("ptrace").Concat(IoUringSyscalls).Concat(MemoryPolicySyscalls);
        var syscalls = new JsonArray { Rule(allowed, "SCMP_ACT_ALLOW") };
        foreach (var persona in Personalities)
            syscalls.Add(Rule(["personality"], "SCMP_ACT_ALLOW", Arg(0, persona, 0, "SCMP_CMP_EQ")));
        syscalls.Add(Rule(["clone"], "SCMP_ACT_ALLOW", Arg(0, NamespaceCloneFlags, 0, "SCMP_CMP_MASKED_EQ")));
        var clone3 = Rule(["clone3"], "SCMP_ACT_ERRNO");
        clone3["errnoRet"] = Enosys;
        syscalls.Add(clone3);
        var profile = new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ERRNO",
            ["architectures"] = new JsonArray([.. architectures.Select(a => (JsonNode)a!)]),
            ["syscalls"] = syscalls,
        };
        return profile.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>This node's profile.</summary>
    public static string Json() => Json(RuntimeInformation.OSArchitecture);

    /// <summary>Where the agent installs it, relative to the host root: under the kubelet's seccomp folder, where the pods' Localhost profile points.</summary>
    public static string HostPath(string kubeletRootDir) =>
        Path.Join(kubeletRootDir.Trim('/'), "seccomp", SeccompProfiles.NetTuneLocalhostProfile);

    // A JsonNode, not a JsonObject: JsonArray.Add would take the generic overload, which serializes by reflection (not under NativeAOT).
    private static JsonNode Rule(IEnumerable<string> names, string action, JsonObject? arg = null)
    {
        var rule = new JsonObject { ["names"] = new JsonArray([.. names.Select(n => (JsonNode)n!)]), ["action"] = action };
        if (arg is not null) rule["args"] = new JsonArray(arg);
        return rule;
    }

    private static JsonObject Arg(uint index, ulong value, ulong valueTwo, string op) =>
        new() { ["index"] = index, ["value"] = value, ["valueTwo"] = valueTwo, ["op"] = op };
}
