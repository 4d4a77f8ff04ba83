#if canImport(Glibc)
import Glibc
#endif

/// A rule's outbox file: read back at start, appended to (with `fsync` when asked), rewritten whole
/// by compaction (temp file, fsync, rename, fsync of the directory). Not thread-safe: its `RuleRunner`
/// holds it under a lock.
final class OutboxFile {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let path: String
    let directory: String
    private var fd: Int32

    /// Opens (creating) `directory/name.outbox` and reads its records. A torn or corrupt tail is cut
    /// off (`droppedBytes` says how much).
    init(directory: String, name: String) throws(Failure) {
        self.directory = directory
        path = directory + "/" + name + ".outbox"
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(Self.osError())") }
        // A file just created must survive a power loss too: its directory entry on disk.
        Self.syncDirectory(directory)
    }

    deinit { close(fd) }

    /// The file's records; truncates anything after the sound prefix. Returns the bytes dropped.
    func load() throws(Failure) -> (records: [OutboxRecord], droppedBytes: Int) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var offset: off_t = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure(description: "cannot read \(path): \(Self.osError())") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
            offset += off_t(n)
        }
        let (records, sound) = OutboxRecord.parse(bytes)
        if sound < bytes.count {
            guard ftruncate(fd, off_t(sound)) == 0 else {
                throw Failure(description: "cannot truncate \(path): \(Self.osError())")
            }
            _ = fsync(fd)
        }
        return (records, bytes.count - sound)
    }

    /// Appends `records` in one write; with `sync`, returns only once they are on disk.
    func append(_ records: [OutboxRecord], sync: Bool) throws(Failure) {
        var bytes: [UInt8] = []
        for r in records { bytes += r.encoded() }
        try writeAll(fd, bytes)
        if sync && fdatasync(fd) != 0 { throw Failure(description: "fsync \(path): \(Self.osError())") }
    }

    /// Replaces the file by one holding exactly `records`.
    func rewrite(_ records: [OutboxRecord]) throws(Failure) {
        let temp = path + ".tmp"
        let t = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard t >= 0 else { throw Failure(description: "cannot create \(temp): \(Self.osError())") }
        var bytes: [UInt8] = []
        for r in records { bytes += r.encoded() }
        do throws(Failure) {
            try writeAll(t, bytes)
            guard fsync(t) == 0 else { throw Failure(description: "fsync \(temp): \(Self.osError())") }
        } catch {
            close(t)
            unlink(temp)
            throw error
        }
        close(t)
        guard rename(temp, path) == 0 else {
            let e = Self.osError()
            unlink(temp)
            throw Failure(description: "cannot rename \(temp): \(e)")
        }
        Self.syncDirectory(directory)
        let reopened = open(path, O_RDWR | O_APPEND | O_CLOEXEC)
        guard reopened >= 0 else { throw Failure(description: "cannot reopen \(path): \(Self.osError())") }
        close(fd)
        fd = reopened
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return write(fd, base + done, raw.count - done)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "cannot write \(path): \(Self.osError())") }
            done += n
        }
    }

    /// Creates `directory` and any missing parents (as `mkdir -p`; the state file's directory may
    /// not exist yet on a first start).
    static func makeDirectory(_ directory: String) throws(Failure) {
        if mkdir(directory, 0o700) == 0 || errno == EEXIST { return }
        guard errno == ENOENT, let slash = directory.lastIndex(of: "/"), slash != directory.startIndex else {
            throw Failure(description: "cannot create \(directory): \(osError())")
        }
        try makeDirectory(String(directory[..<slash]))
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw Failure(description: "cannot create \(directory): \(osError())")
        }
    }

    static func syncDirectory(_ directory: String) {
        let d = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { return }
        _ = fsync(d)
        close(d)
    }

    static func osError() -> String { "\(String(cString: strerror(errno))) (errno \(errno))" }
}
