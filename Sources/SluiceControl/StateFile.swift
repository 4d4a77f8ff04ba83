#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One target registered through the API, as persisted.
public struct Registration: Codable, Sendable, Equatable {
    public var group: String
    public var address: String
    public var zone: String?
    public var weight: Int
    /// RFC 3339.
    public var registeredAt: String

    public init(group: String, address: String, zone: String? = nil, weight: Int = 1, registeredAt: String) {
        self.group = group
        self.address = address
        self.zone = zone
        self.weight = weight
        self.registeredAt = registeredAt
    }

    enum CodingKeys: String, CodingKey {
        case group, address, zone, weight
        case registeredAt = "registered_at"
    }
}

/// A state file that could not be read or written; `description` names the path and the problem.
public struct StateFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "state file \(path): \(reason)" }
}

/// The registrations file (`{"version": 1, "registrations": [...]}`): written atomically and durably
/// before an API registration is acknowledged, read at start.
public enum StateFile {
    public static let currentVersion = 1

    private struct Document: Codable {
        var version: Int
        var registrations: [Registration]
    }

    /// The state document as JSON (one registration per line), in the layout `load` reads.
    static func encode(_ registrations: [Registration]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + registrations.count * 128)
        func raw(_ s: StaticString) { s.withUTF8Buffer { out.append(contentsOf: $0) } }
        func string(_ s: String) {
            out.append(UInt8(ascii: "\""))
            // Most strings need no escaping: scan the UTF-8 buffer and copy it in one go.
            var text = s
            let plain = text.withUTF8 { bytes -> Bool in
                for b in bytes where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return false }
                out.append(contentsOf: bytes)
                return true
            }
            if plain {
                out.append(UInt8(ascii: "\""))
                return
            }
            for b in s.utf8 {
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                    out.append(UInt8(ascii: "\\"))
                    out.append(b)
                case 0..<0x20:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                            hex[Int(b >> 4)], hex[Int(b & 0xF)]])
                default:
                    out.append(b)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        raw("{\n  \"registrations\" : [\n")
        for (i, r) in registrations.enumerated() {
            raw("    {\"address\": ")
            string(r.address)
            raw(", \"group\": ")
            string(r.group)
            raw(", \"registered_at\": ")
            string(r.registeredAt)
            raw(", \"weight\": ")
            out.append(contentsOf: String(r.weight).utf8)
            if let z = r.zone {
                raw(", \"zone\": ")
                string(z)
            }
            raw(i + 1 < registrations.count ? "},\n" : "}\n")
        }
        raw("  ],\n  \"version\" : ")
        out.append(contentsOf: String(currentVersion).utf8)
        raw("\n}")
        return out
    }

    private struct VersionOnly: Decodable {
        var version: Int
    }

    /// The registrations in `path`; a missing file is an empty list.
    public static func load(path: String) throws(StateFileError) -> [Registration] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return [] }
            throw failure(path, "cannot open")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw failure(path, "cannot read") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        let data = Data(bytes)
        let decoder = JSONDecoder()
        let version: Int
        do {
            version = try decoder.decode(VersionOnly.self, from: data).version
        } catch {
            throw StateFileError(path: path, reason: "not a state file (corrupt JSON or no \"version\"): \(describe(error))")
        }
        guard version == currentVersion else {
            throw StateFileError(path: path, reason: "unsupported version \(version) (this build reads version \(currentVersion))")
        }
        do {
            return try decoder.decode(Document.self, from: data).registrations
        } catch {
            throw StateFileError(path: path, reason: "corrupt registrations: \(describe(error))")
        }
    }

    /// Replaces `path` with `registrations`: writes `path.tmp` in the same directory, fsyncs it, renames it
    /// over `path`, and fsyncs the directory, so a crash leaves either the old or the new file. Creates the
    /// directory when missing.
    public static func save(_ registrations: [Registration], path: String) throws(StateFileError) {
        // Written by hand: JSONEncoder dominated the cost of registering targets one by one.
        var bytes = encode(registrations)
        bytes.append(UInt8(ascii: "\n"))

        let directory = (path as NSString).deletingLastPathComponent
        let dirPath = directory.isEmpty ? "." : directory
        do {
            try FileManager.default.createDirectory(atPath: dirPath, withIntermediateDirectories: true)
        } catch {
            throw StateFileError(path: path, reason: "cannot create directory \(dirPath): \(error.localizedDescription)")
        }

        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure(path, "cannot create \(tmp)") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let error = failure(path, "cannot write \(tmp)")
                close(fd)
                unlink(tmp)
                throw error
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            let error = failure(path, "cannot fsync \(tmp)")
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let error = failure(path, "cannot rename \(tmp) over it")
            unlink(tmp)
            throw error
        }
        let dirFD = open(dirPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw failure(path, "cannot open directory \(dirPath) to fsync") }
        defer { close(dirFD) }
        guard fsync(dirFD) == 0 else { throw failure(path, "cannot fsync directory \(dirPath)") }
    }

    private static func failure(_ path: String, _ what: String) -> StateFileError {
        StateFileError(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return context.underlyingError.map { "\($0.localizedDescription)" } ?? context.debugDescription
        case DecodingError.keyNotFound(let key, let context):
            return "missing \"\(key.stringValue)\"" + at(context)
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return context.debugDescription + at(context)
        default:
            return "\(error)"
        }
    }

    private static func at(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "" : " at \(path)"
    }
}
