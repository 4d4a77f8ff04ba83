/// One message of a watch stream, as decoded from one line.
enum EtcdWatchMessage: Sendable, Equatable {
    /// The watch exists; `revision` is the store's revision at creation.
    case created(revision: Int64)
    /// Changes, in revision order.
    case events([EtcdWatchEvent])
    /// Every change up to `revision` has been sent.
    case progress(revision: Int64)
    /// etcd ended the watch: `compactRevision` > 0 when the start revision was compacted.
    case canceled(compactRevision: Int64, reason: String)
    /// The stream's error form (`{"error": {...}}`).
    case error(code: Int, message: String)
}

/// Sans-I/O decoder of the watch stream's body (chunked coding already removed): the gateway
/// writes one JSON object per line (`{"result": {...}}\n`), and chunk boundaries need not match
/// lines, so bytes are buffered up to a newline. Lines are bounded by `maxLineBytes`.
struct EtcdWatchStream {
    /// etcd's default request limit is 1.5 MiB and a watch answer may batch many events of one
    /// revision; beyond this a line is refused rather than buffered without bound.
    static let maxLineBytes = 32 << 20

    private var buffer: [UInt8] = []
    /// Where the search for a newline resumes (bytes before it hold none).
    private var scanned = 0

    init() {}

    /// Consumes `bytes`; returns the messages of the lines they completed.
    mutating func feed(_ bytes: some Collection<UInt8>) throws(EtcdError) -> [EtcdWatchMessage] {
        buffer.append(contentsOf: bytes)
        var out: [EtcdWatchMessage] = []
        var lineStart = 0
        var i = scanned
        while i < buffer.count {
            if buffer[i] == 10 {
                let line = buffer[lineStart..<i]
                if line.contains(where: { $0 != 13 && $0 != 32 }) {
                    out.append(try Self.decode(line))
                }
                lineStart = i + 1
            }
            i += 1
        }
        if lineStart > 0 { buffer.removeFirst(lineStart) }
        scanned = buffer.count
        if buffer.count > Self.maxLineBytes { throw .malformed("watch message over \(Self.maxLineBytes) bytes") }
        return out
    }

    /// Decodes one line of the stream.
    static func decode(_ line: some Collection<UInt8>) throws(EtcdError) -> EtcdWatchMessage {
        let o = try EtcdJSON.object(line, what: "watch message")
        if o["error"] != nil {
            do throws(EtcdError) {
                try EtcdWire.serverError(o, status: 200)
            } catch {
                if case .server(let code, let message) = error { return .error(code: code, message: message) }
                throw error
            }
        }
        let r = try EtcdJSON.object(o, "result")
        let revision = try EtcdWire.revision(r)
        if try EtcdJSON.bool(r, "canceled") {
            return .canceled(compactRevision: try EtcdJSON.int64(r, "compact_revision"),
                             reason: try EtcdJSON.string(r, "cancel_reason"))
        }
        if try EtcdJSON.bool(r, "created") { return .created(revision: revision) }
        let events = try EtcdJSON.objects(r, "events")
        if events.isEmpty { return .progress(revision: revision) }
        var out: [EtcdWatchEvent] = []
        out.reserveCapacity(events.count)
        for e in events {
            let kv = try EtcdWire.keyValue(try EtcdJSON.object(e, "kv"))
            switch try EtcdJSON.string(e, "type") {
            case "", "PUT": out.append(.put(kv))
            case "DELETE": out.append(.delete(key: kv.key, modRevision: kv.modRevision))
            case let other: throw .malformed("watch event of type \"\(other.prefix(16))\"")
            }
        }
        return .events(out)
    }
}
