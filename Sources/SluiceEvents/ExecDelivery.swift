#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// One exec attempt: runs the program (posix_spawn, no shell) with the event JSON on stdin and
/// `SLUICE_EVENT_ID`, `SLUICE_EVENT_TYPE`, `SLUICE_RULE` added to sluiced's environment. Exit 0 is
/// success; a program still running after `timeoutNanos` is killed (SIGKILL) and counts as failed.
/// stdout goes to /dev/null, stderr to sluiced's stderr. Runs on a rule's delivery thread only.
enum ExecDelivery {
    static let timeoutNanos: UInt64 = 30 * 1_000_000_000

    /// Takes a SIGPIPE left pending on this thread (where it is blocked) by a write to a program that
    /// had exited, so it never fires later.
    private static func consumePendingSIGPIPE() {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        while sigtimedwait(&pipeSignal, nil, &zero) == SIGPIPE {}
    }

    /// Delivers once; nil on success, else why not.
    static func run(program: String, json: [UInt8], id: String, type: String, rule: String,
                    timeoutNanos: UInt64 = ExecDelivery.timeoutNanos) -> String? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return "pipe: \(OutboxFile.osError())" }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)  // dup2 onto 0 in the child clears it there
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, readEnd, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The daemon blocks its signals (signalfd); the program starts with none blocked and default handlers.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment: [String] = []
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            if !text.hasPrefix("SLUICE_EVENT_ID=") && !text.hasPrefix("SLUICE_EVENT_TYPE=") && !text.hasPrefix("SLUICE_RULE=") {
                environment.append(text)
            }
            e += 1
        }
        environment += ["SLUICE_EVENT_ID=\(id)", "SLUICE_EVENT_TYPE=\(type)", "SLUICE_RULE=\(rule)"]
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(program), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        close(readEnd)
        guard spawned == 0 else {
            close(writeEnd)
            return "cannot run \(program): \(String(cString: strerror(spawned)))"
        }
        // Events are far smaller than a pipe's buffer, so this write does not wait for the reader;
        // a program that exits without reading gets EPIPE here (SIGPIPE is ignored by sluiced).
        var written = 0
        while written < json.count {
            let n = json.withUnsafeBytes { write(writeEnd, $0.baseAddress.map { $0 + written }, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            written += n
        }
        close(writeEnd)
        if written < json.count { consumePendingSIGPIPE() }
        let deadline = Posix.monotonicNanos() &+ timeoutNanos
        var status: Int32 = 0
        var pause: UInt32 = 200
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return "waitpid: \(OutboxFile.osError())" }
            if Posix.monotonicNanos() >= deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return "\(program) killed after \(timeoutNanos / 1_000_000_000)s"
            }
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros: decode the status word by hand.
        let signalNumber = status & 0x7F
        if signalNumber == 0 {
            let code = (status >> 8) & 0xFF
            return code == 0 ? nil : "\(program) exited with status \(code)"
        }
        return "\(program) killed by signal \(signalNumber)"
    }
}
