/// A FIFO of bytes for one stream's outbound DATA: appended by `sendData`, drained by nghttp2's
/// data provider. Storage is kept across uses (compacted, not freed).
struct H2ByteQueue: Sendable {
    private var bytes: [UInt8] = []
    private var head = 0

    var count: Int { bytes.count &- head }
    var capacity: Int { bytes.capacity }
    var isEmpty: Bool { head == bytes.count }

    mutating func append(_ p: UnsafeRawBufferPointer) {
        if head > 0 && head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 16384 && head &* 2 >= bytes.count {
            bytes.removeFirst(head)
            head = 0
        }
        bytes.append(contentsOf: p)
    }

    /// Copies up to `max` bytes to `dst`; returns how many.
    mutating func pop(into dst: UnsafeMutableRawPointer, max: Int) -> Int {
        let n = min(max, count)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { src in
            if let base = src.baseAddress { dst.copyMemory(from: base + head, byteCount: n) }
        }
        head &+= n
        if head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        }
        return n
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        head = 0
    }
}
