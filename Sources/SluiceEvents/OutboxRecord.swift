/// One record of a rule's outbox file (`{statedir}/events/{rule}.outbox`), and the file's framing.
///
/// A record on disk: `0xE5` (magic), kind (1 byte), payload length (4 bytes, big-endian), CRC-32 of
/// kind + length + payload (4 bytes, big-endian), payload. The payload is a list of fields, each a
/// 4-byte big-endian length and its bytes. A crash mid-append leaves a short or mismatching last
/// record: `parse` stops there and reports how far the file is sound, so the loader truncates the tail.
public enum OutboxRecord: Equatable, Sendable {
    /// An event to deliver: its id and its JSON exactly as sent.
    case event(id: String, json: [UInt8])
    /// The first pending event with `id` was delivered.
    case delivered(id: String)
    /// The first pending event with `id` failed `attempts` times and went to the dead letters.
    case dead(id: String, attempts: Int, failedAt: String, error: String)
    /// The dead letter with `id` was taken out (redelivered: its event was appended again just before).
    case revived(id: String)

    static let magic: UInt8 = 0xE5
    static let headerBytes = 10
    /// Largest payload accepted (events are a few hundred bytes).
    public static let maxPayload = 1 << 20

    private var kindByte: UInt8 {
        switch self {
        case .event: 1
        case .delivered: 2
        case .dead: 3
        case .revived: 4
        }
    }

    private var fields: [[UInt8]] {
        switch self {
        case .event(let id, let json): [Array(id.utf8), json]
        case .delivered(let id), .revived(let id): [Array(id.utf8)]
        case .dead(let id, let attempts, let failedAt, let error):
            [Array(id.utf8), Array(String(attempts).utf8), Array(failedAt.utf8), Array(error.utf8)]
        }
    }

    /// The record's bytes on disk.
    public func encoded() -> [UInt8] {
        var payload: [UInt8] = []
        for f in fields {
            payload += Self.bigEndian(UInt32(truncatingIfNeeded: f.count))
            payload += f
        }
        var head: [UInt8] = [kindByte]
        head += Self.bigEndian(UInt32(truncatingIfNeeded: payload.count))
        let crc = CRC32.update(CRC32.checksum(head), payload)
        return [Self.magic] + head + Self.bigEndian(crc) + payload
    }

    /// The records of `bytes` up to the first that is torn, corrupt or unknown, and the length of
    /// that sound prefix. Total: any bytes give an answer, never a trap.
    public static func parse(_ bytes: [UInt8]) -> (records: [OutboxRecord], soundLength: Int) {
        var records: [OutboxRecord] = []
        var at = 0
        while bytes.count - at >= headerBytes {
            guard bytes[at] == magic else { break }
            let kind = bytes[at + 1]
            let length = Int(readUInt32(bytes, at + 2))
            let crc = readUInt32(bytes, at + 6)
            guard length <= maxPayload, length <= bytes.count - at - headerBytes else { break }
            let payload = bytes[(at + headerBytes)..<(at + headerBytes + length)]
            guard CRC32.update(CRC32.checksum(bytes[(at + 1)..<(at + 6)]), payload) == crc,
                  let record = record(kind: kind, payload: payload)
            else { break }
            records.append(record)
            at += headerBytes + length
        }
        return (records, at)
    }

    private static func record(kind: UInt8, payload: ArraySlice<UInt8>) -> OutboxRecord? {
        guard let fields = fields(payload) else { return nil }
        func text(_ i: Int) -> String? {
            guard i < fields.count else { return nil }
            return String(validating: fields[i], as: UTF8.self)
        }
        switch (kind, fields.count) {
        case (1, 2):
            guard let id = text(0), !id.isEmpty else { return nil }
            return .event(id: id, json: Array(fields[1]))
        case (2, 1):
            guard let id = text(0) else { return nil }
            return .delivered(id: id)
        case (3, 4):
            guard let id = text(0), let a = text(1), let attempts = Int(a), attempts >= 0,
                  let failedAt = text(2), let error = text(3) else { return nil }
            return .dead(id: id, attempts: attempts, failedAt: failedAt, error: error)
        case (4, 1):
            guard let id = text(0) else { return nil }
            return .revived(id: id)
        default:
            return nil
        }
    }

    /// Splits a payload into its length-prefixed fields; nil when they do not add up exactly.
    private static func fields(_ payload: ArraySlice<UInt8>) -> [ArraySlice<UInt8>]? {
        var out: [ArraySlice<UInt8>] = []
        var at = payload.startIndex
        while at < payload.endIndex {
            guard payload.endIndex - at >= 4, out.count < 8 else { return nil }
            let n = Int(readUInt32(payload, at))
            guard n <= payload.endIndex - at - 4 else { return nil }
            out.append(payload[(at + 4)..<(at + 4 + n)])
            at += 4 + n
        }
        return out
    }

    private static func readUInt32<C: RandomAccessCollection<UInt8>>(_ b: C, _ at: C.Index) -> UInt32 where C.Index == Int {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    private static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8),
         UInt8(truncatingIfNeeded: v)]
    }
}
