import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Writes one line per log event to stderr (journald takes it from there): plain text, or
/// one JSON object per line with `--log-format json`.
struct LineLogHandler: LogHandler {
    enum Format: String, Sendable { case text, json }

    let label: String
    let format: Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let line: String
        switch format {
        case .text:
            let extra = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(event.level) \(event.message)\(extra.isEmpty ? "" : " " + extra)\n"
        case .json:
            var object: [String: String] = ["time": ISO8601DateFormatter().string(from: Date()),
                                            "level": "\(event.level)", "msg": "\(event.message)"]
            for (k, v) in merged { object[k] = "\(v)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self) + "\n"
        }
        LineLogHandler.writeStderr(line)
    }

    /// Writes `line` to stderr with write(2), giving up quietly when stderr fails (disk full,
    /// a closed pipe, journald gone): `FileHandle.write` traps on such an error, and a log
    /// line must never take the daemon down.
    static func writeStderr(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(2, base + offset, raw.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return  // EPIPE, ENOSPC, EAGAIN, EBADF …: drop the line
                }
            }
        }
    }
}
