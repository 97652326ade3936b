using System.Net;
using System.Runtime.InteropServices;
using NetTune.DataPlane;
using NetTune.IoUring;

namespace NetTune.DataPlane
{
    internal static class Server
    {
        public static int Main(string[] args)
        {
            ServerOptions options;
            try
            {
                options = ServerOptions.Parse(args);
            }
            catch (OptionsException e)
            {
                (e.IsHelp ? Console.Out : Console.Error).WriteLine(e.Message);
                return e.IsHelp ? 0 : 2;
            }

            try
            {
                return Run(options);
            }
            catch (StartupException e)
            {
                Console.Error.WriteLine($"dataplane: {e.Message}");
                return 1;
            }
        }

        private static unsafe int Run(ServerOptions options)
        {
            if (!options.IsProxy && !Directory.Exists(options.Root)) throw new StartupException($"--root '{options.Root}' is not a directory");
            if (!IPAddress.TryParse(options.Address, out var address)) throw new StartupException($"--address '{options.Address}' is not an IP address");
            if (options.AdminPort >= 0 && !IPAddress.TryParse(options.AdminAddress, out _))
                throw new StartupException($"--admin-address '{options.AdminAddress}' is not an IP address");

            var allowed = Platform.AllowedCpus();
            var cpus = options.Cpus.Count > 0 ? options.Cpus : allowed;
            var outside = cpus.Where(c => !allowed.Contains(c)).ToArray();
            if (outside.Length > 0)
                throw new StartupException($"--cpus {string.Join(',', outside)} outside this process's allowed CPUs ({string.Join(',', allowed)})");

            int rootFd = options.IsProxy ? -1 : OpenRoot(options);
            // Resolved before any worker starts: a name that does not resolve is a start-up error, not a 502 storm.
            // Later the resolver follows the names (on a period and after failed connects) off the workers' threads.
            var hosts = options.HostsFile is { } hostsPath ? new HostsFile(hostsPath) : null;
            var upstreams = options.IsProxy ? options.Upstreams.Select(u => UpstreamAddress.Resolve(u, hosts)).ToArray() : null;
            using var resolver = upstreams != null && upstreams.Any(u => !u.IsLiteral)
                ? new UpstreamResolver(upstreams, hosts, options.UpstreamResolveIntervalSeconds)
                : null;

            var engine = ChooseEngine(options.Engine);

            // Listeners are bound here, before any worker starts, so a busy port is one clear error.
            // With --port 0 the first bind picks the port and the rest join it through SO_REUSEPORT.
            // Workers go round robin over the CPUs: one each by default, several per CPU with --workers.
            var workerCpus = Enumerable.Range(0, options.Workers > 0 ? options.Workers : cpus.Count).Select(i => cpus[i % cpus.Count]).ToArray();
            // Each worker's memory goes to its own CPU's node unless --numa-node names one for all.
            var workerNodes = NumaTopology.NodesFor(workerCpus, options.NumaNode,
                options.NumaNode >= 0 ? new Dictionary<int, int>() : NumaTopology.ReadNodeOfCpus(options.SysfsRoot));
            // Connections and caches fit the memory the process may use: the flags given, the rest from the budget.
            var cgroupLimit = options.MemoryLimitRequested is null ? CgroupMemory.ReadLimit("/") : null;
            options = options.WithMemoryBudget(cgroupLimit, workerCpus.Length);
            var budget = options.MemoryLimitRequested is { } given ? (given == 0 ? "unlimited (--memory-limit 0)" : $"{given >> 20} MiB (--memory-limit)")
                : cgroupLimit is { } limit ? $"{limit >> 20} MiB (cgroup)" : "unlimited (no cgroup limit)";
            Console.WriteLine($"dataplane: memory {budget}: per worker {options.MaxConnectionsPerWorker} connections"
                + (options.IsProxy ? $", {options.UpstreamConnectionsPerWorker} upstream connections" : $", {options.MemoryCacheBytesPerWorker >> 20} MiB file cache"));
            long openFiles = Platform.RaiseOpenFilesLimit();
            long fdsPerConnection = options.IsProxy ? 2 : 1;
            if (openFiles > 0 && (long)options.MaxConnectionsPerWorker * workerCpus.Length * fdsPerConnection > openFiles)
                Console.Error.WriteLine($"dataplane: warning: --max-connections {options.MaxConnectionsPerWorker} x {workerCpus.Length} workers"
                    + (options.IsProxy ? " x 2 fds (client and upstream)" : "") + $" exceeds the open-files limit {openFiles}; accepts will back off at EMFILE");
            var listeners = new List<int>();
            int port = options.Port;
            foreach (var cpu in workerCpus)
            {
                int fd = Platform.CreateListener(address, port, cpu, nonBlocking: engine == IoEngineKind.Epoll);
                if (port == 0) port = Platform.LocalPort(fd);
                listeners.Add(fd);
            }

            var workers = new List<Worker>();
            for (int i = 0; i < workerCpus.Length; i++)
            {
                workers.Add(engine == IoEngineKind.IoUring
                    ? new IoUringWorker(i, workerCpus[i], options, listeners[i], rootFd) { Upstreams = upstreams, NumaNode = workerNodes[i] }
                    : new EpollWorker(i, workerCpus[i], options, listeners[i], rootFd) { Upstreams = upstreams, NumaNode = workerNodes[i] });
            }

            bool draining = false;
            using var drainSignal = new ManualResetEventSlim();
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; drainSignal.Set(); });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; drainSignal.Set(); });

            foreach (var w in workers) w.Start();
            AdminServer? admin = options.AdminPort >= 0 ? new AdminServer(options.AdminAddress, options.AdminPort, workers, () => draining) : null;

            // Wait until every worker is in its loop (or has died) before announcing readiness.
            while (!workers.All(w => w.Stats.Running || w.Stats.Finished)) Thread.Sleep(5);
            var failed = workers.FirstOrDefault(w => w.Failure != null);
            if (failed != null) throw new StartupException($"worker {failed.Index} failed to start: {failed.Failure!.Message}");

            Console.WriteLine($"dataplane listening on {address}:{port} engine={workers[0].EngineName} workers={workers.Count} cpus={string.Join(',', cpus)}"
                + $" numa={string.Join(',', workerNodes.Distinct())}"
                + (upstreams != null ? $" mode=proxy upstreams={string.Join(',', upstreams.Select(u => u.Current.EndPoint))}" : " mode=static")
                + (admin != null ? $" admin={options.AdminAddress}:{admin.Port}" : ""));
            Console.Out.Flush();

            // A worker that fails has closed its listener, so the kernel routes no new connection to it; the
            // others are drained as on SIGTERM and the process exits 1 so the kubelet restarts it with all
            // its workers, rather than running on with fewer than the CPUs it was given.
            Worker? failedWorker = null;
            while (!drainSignal.Wait(500))
            {
                failedWorker = workers.FirstOrDefault(w => w.Failure != null);
                if (failedWorker != null) break;
                if (workers.All(w => w.Stats.Finished))
                {
                    Console.Error.WriteLine("dataplane: all workers stopped");
                    return 1;
                }
            }
            draining = true;
            Console.WriteLine(failedWorker != null
                ? $"dataplane: worker {failedWorker.Index} failed ({failedWorker.Failure!.Message}); draining the others and exiting 1"
                : "dataplane: SIGTERM, draining");
            foreach (var w in workers) w.RequestDrain();
            foreach (var w in workers) w.Join(Timeout.Infinite);
            admin?.Dispose();
            Console.WriteLine("dataplane: drained, exiting");
            return workers.Any(w => w.Failure != null) ? 1 : 0;
        }

        private static unsafe int OpenRoot(ServerOptions options)
        {
            int rootFd;
            var rootPath = System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(options.Root) + "\0");
            fixed (byte* p = rootPath)
            {
                // O_PATH|O_DIRECTORY: a handle for openat2(RESOLVE_BENEATH), not for reading.
                rootFd = Libc.openat(Libc.AT_FDCWD, p, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
            }
            if (rootFd < 0) throw new StartupException($"cannot open --root '{options.Root}': {Marshal.GetPInvokeErrorMessage(Libc.Errno)}");
            byte dot = (byte)'.';
            byte* dotPath = stackalloc byte[2] { dot, 0 };
            int probe = Libc.OpenBeneath(rootFd, dotPath, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_DIRECTORY);
            if (probe < 0) throw new StartupException($"openat2 is unavailable (errno {Libc.Errno}); Linux 5.6+ is required for safe path resolution");
            Libc.close(probe);

            return rootFd;
        }

        private static IoEngineKind ChooseEngine(IoEngineKind requested)
        {
            if (requested == IoEngineKind.Epoll) return IoEngineKind.Epoll;
            bool supported = Ring.IsSupported(out int errno);
            if (requested == IoEngineKind.IoUring)
            {
                if (!supported) throw new StartupException($"io_uring is unavailable ({Marshal.GetPInvokeErrorMessage(errno)}); use --io-engine epoll or auto");
                return IoEngineKind.IoUring;
            }
            if (!supported) Console.Error.WriteLine($"dataplane: io_uring unavailable ({Marshal.GetPInvokeErrorMessage(errno)}), using epoll");
            return supported ? IoEngineKind.IoUring : IoEngineKind.Epoll;
        }
    }
}
