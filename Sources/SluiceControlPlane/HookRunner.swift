import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs a scaling hook (SPEC §11): posix_spawn, no shell, in a process group of its own, with
/// a clean environment (the variables given plus PATH), stdin from /dev/null, stdout and
/// stderr read bounded. A hook still running at its timeout is killed with its whole process
/// group. Blocks the calling thread (a scaling activity's own), never a worker.
public enum HookRunner {
    /// Most bytes of stderr kept (for the log); the rest is read and dropped.
    public static let maxStderr = 4_096
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public struct Outcome: Sendable, Equatable {
        /// The exit code when the hook exited.
        public var exitCode: Int32?
        /// The signal that ended it.
        public var signal: Int32?
        public var timedOut = false
        /// The first `HookOutput.maxBytes` bytes of stdout.
        public var stdout: [UInt8] = []
        public var stderr: [UInt8] = []
        /// Why it could not be started.
        public var spawnError: String?

        public init() {}

        public var succeeded: Bool { exitCode == 0 && !timedOut && spawnError == nil }

        /// "exit status 3", "killed by signal 9", "timed out after 5s", or the spawn error.
        public var failureText: String {
            if let spawnError { return spawnError }
            if timedOut { return "timed out" }
            if let signal { return "killed by signal \(signal)" }
            return "exit status \(exitCode ?? -1)"
        }
    }

    /// The process's open descriptors without close-on-exec.
    static func inheritable() -> [Int32] {
        guard let dir = opendir("/proc/self/fd") else { return [] }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var fds: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let fd = Int32(name), fd != own else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { fds.append(fd) }
        }
        return fds
    }

    public static func run(_ path: String, environment: [String: String], timeout: UInt64) -> Outcome {
        var outcome = Outcome()
        // Close-on-exec and nonblocking from the start (no other hook's child inherits them);
        // the child's ends block, as a program's stdout normally does.
        let outPipe: [Int32], errPipe: [Int32]
        do {
            let o = try Posix.pipe(size: 0)
            outPipe = [o.0, o.1]
            do {
                let e = try Posix.pipe(size: 0)
                errPipe = [e.0, e.1]
            } catch {
                close(o.0)
                close(o.1)
                throw error
            }
        } catch {
            outcome.spawnError = "cannot run \(path): pipe: \(error)"
            return outcome
        }
        _ = fcntl(outPipe[1], F_SETFL, 0)
        _ = fcntl(errPipe[1], F_SETFL, 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        // Nothing else of the daemon's: descriptors it inherited without close-on-exec (from
        // systemd or whoever started it) would otherwise live on in the targets a hook starts.
        for fd in inheritable() where fd > 2 && !outPipe.contains(fd) && !errPipe.contains(fd) {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Own process group (killed as one on timeout); signals as a fresh process has them,
        // not as the daemon blocks and ignores them.
        posix_spawnattr_setpgroup(&attr, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var env = environment
        if env["PATH"] == nil { env["PATH"] = getenv("PATH").map { String(cString: $0) } ?? defaultPath }
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let r = argv.withUnsafeBufferPointer { a -> Int32 in
            envp.withUnsafeBufferPointer { e -> Int32 in
                guard let av = a.baseAddress, let ev = e.baseAddress else { return EINVAL }
                return posix_spawn(&pid, path, &actions, &attr, av, ev)
            }
        }
        close(outPipe[1])
        close(errPipe[1])
        defer {
            close(outPipe[0])
            close(errPipe[0])
        }
        guard r == 0 else {
            outcome.spawnError = "cannot run \(path): \(Errno(r))"
            return outcome
        }

        let deadline = Posix.monotonicNanos() &+ timeout
        var openOut = true, openErr = true
        var status: Int32 = 0
        var exited = false
        var buffer = [UInt8](repeating: 0, count: 4_096)
        /// Reads what is there now; false at end of file.
        func drain(_ fd: Int32, into kept: inout [UInt8], cap: Int) -> Bool {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    let room = max(0, cap - kept.count)
                    kept.append(contentsOf: buffer.prefix(min(n, room)))
                    continue
                }
                if n == 0 { return false }
                return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK
            }
        }
        while true {
            // Reap first: a daemon the hook started may hold the pipes open for ever.
            if !exited {
                let w = waitpid(pid, &status, WNOHANG)
                if w == pid || (w < 0 && errno == ECHILD) { exited = true }
            }
            if exited {
                if openOut { _ = drain(outPipe[0], into: &outcome.stdout, cap: HookOutput.maxBytes) }
                if openErr { _ = drain(errPipe[0], into: &outcome.stderr, cap: maxStderr) }
                break
            }
            let now = Posix.monotonicNanos()
            if now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                outcome.timedOut = true
                return outcome
            }
            var fds: [pollfd] = []
            if openOut { fds.append(pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0)) }
            if openErr { fds.append(pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)) }
            let millis = Int32(min((deadline - now) / 1_000_000 + 1, 50))
            if fds.isEmpty {
                usleep(UInt32(millis) * 1_000)
            } else {
                _ = poll(&fds, nfds_t(fds.count), millis)
            }
            if openOut { openOut = drain(outPipe[0], into: &outcome.stdout, cap: HookOutput.maxBytes) }
            if openErr { openErr = drain(errPipe[0], into: &outcome.stderr, cap: maxStderr) }
        }
        if status & 0x7f == 0 {
            outcome.exitCode = (status >> 8) & 0xff
        } else {
            outcome.signal = status & 0x7f
        }
        return outcome
    }
}
