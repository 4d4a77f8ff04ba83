import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `{statedir}/scaling.json`: each managed group's `desired`, so it survives restarts
/// (`{"version": 1, "groups": {"app": {"desired": 4}}}`). Written atomically (temp file,
/// fsync, rename, fsync of the directory).
public enum ScalingStore {
    /// `scaling.json` next to the state file `statePath`.
    public static func path(besideStateFile statePath: String) -> String {
        guard let slash = statePath.lastIndex(of: "/") else { return "scaling.json" }
        return String(statePath[...slash]) + "scaling.json"
    }

    /// The saved counts; empty when there is no file. A file that cannot be read as one is
    /// an error (the caller decides whether to start without it).
    public static func load(path: String) throws(ScalingStoreError) -> [String: Int] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScalingStoreError(message: "\(path): cannot be read")
        }
        guard data.count <= 16 * 1_024 * 1_024,
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let groups = object["groups"] as? [String: Any] else {
            throw ScalingStoreError(message: "\(path): not a scaling state document")
        }
        var result: [String: Int] = [:]
        for (name, value) in groups {
            guard let entry = value as? [String: Any], let n = entry["desired"] as? Int, n >= 0 else { continue }
            result[name] = n
        }
        return result
    }

    public static func save(_ desired: [String: Int], path: String) throws(ScalingStoreError) {
        var text = "{\"version\": 1, \"groups\": {"
        text += desired.sorted { $0.key < $1.key }.map { "\n  \(jsonString($0.key)): {\"desired\": \($0.value)}" }
            .joined(separator: ",")
        text += "\n}}\n"
        let temp = path + ".tmp"
        // The state directory may not exist yet on a first start (the state file makes it on the
        // first registration; `desired` can come first).
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ScalingStoreError(message: "\(temp): \(String(cString: strerror(errno)))") }
        var ok = true
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress?.advanced(by: offset), $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { ok = false; break }
            offset += n
        }
        if ok && fsync(fd) != 0 { ok = false }
        let reason = String(cString: strerror(errno))
        close(fd)
        guard ok else {
            unlink(temp)
            throw ScalingStoreError(message: "\(temp): \(reason)")
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw ScalingStoreError(message: "\(path): \(reason)")
        }
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) }.flatMap { $0.isEmpty ? "/" : $0 } ?? "."
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

public struct ScalingStoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
