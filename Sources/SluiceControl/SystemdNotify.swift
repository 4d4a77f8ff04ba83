#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SluiceCore

/// `sd_notify(3)` without libsystemd: one datagram to `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
/// namespace). States: `READY=1`, `RELOADING=1`, `STOPPING=1`, `STATUS=…`, `WATCHDOG=1`.
public enum SystemdNotify {
    /// Sends `state` to `$NOTIFY_SOCKET`; false when the variable is unset or the send failed.
    @discardableResult
    public static func send(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        return send(state, socketPath: String(cString: raw))
    }

    /// Sends `state` to the datagram socket at `socketPath` (`@name`: abstract).
    @discardableResult
    public static func send(_ state: String, socketPath: String) -> Bool {
        guard !socketPath.isEmpty else { return false }
        guard let address = UnixSocketAddress(path: socketPath), let fd = try? Socket.unix(datagram: true) else {
            return false
        }
        defer { Posix.close(fd) }
        let bytes = Array(state.utf8)
        let sent = bytes.withUnsafeBytes { raw -> Int in
            guard case .processed(let n)? = try? Socket.send(fd, raw, to: address) else { return -1 }
            return n
        }
        return sent == bytes.count
    }

    /// The watchdog interval in microseconds from `WATCHDOG_USEC`, when set for this process
    /// (`WATCHDOG_PID` absent or equal to our pid). Send `WATCHDOG=1` at about half of it.
    public static var watchdogInterval: UInt64? {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        return watchdogInterval(usec: env("WATCHDOG_USEC"), pid: env("WATCHDOG_PID"), ourPID: getpid())
    }

    /// Pure form of `watchdogInterval`.
    public static func watchdogInterval(usec: String?, pid: String?, ourPID: Int32) -> UInt64? {
        guard let usec, let value = UInt64(usec), value > 0 else { return nil }
        if let pid, !pid.isEmpty {
            guard let owner = pid_t(pid), owner == ourPID else { return nil }
        }
        return value
    }
}
