internal import CSluice
#if canImport(Glibc)
import Glibc
#endif

/// A worker's batch of datagrams for `recvmmsg`/`sendmmsg`: `capacity` entries, each with a
/// 64 KiB buffer (a datagram of any legal size fits whole), a prefix area sent before the
/// buffer's bytes (a PROXY v2 header), an address and a control area (packet info). Mapped
/// once, in one region, when the worker first needs it; the entries are rewritten in place
/// for every call, so moving datagrams allocates nothing. Pages of the buffers are touched only
/// as far as datagrams reach. Loop-bound: not Sendable.
///
/// An entry is used in one of two ways, each set up by a `prepare…` call:
/// * receive (`prepareReceive` then `receive`): the datagram lands in the buffer; `length`,
///   `source` and `destination` read what the kernel reported;
/// * send (`prepareSend` then `send`): the prefix's first bytes and the buffer's first bytes
///   leave as one datagram, to an address (unconnected socket) or not (connected socket),
///   optionally from a chosen local address.
/// Receiving into an entry and then sending it again is how a datagram crosses the proxy
/// without a copy.
public final class DatagramBatch {
    /// Bytes per entry buffer: more than the largest UDP payload (65,507 over IPv4, 65,527
    /// over IPv6), so a datagram can never be cut.
    public static let bufferSize = 65_536
    /// Bytes of prefix room per entry (a PROXY v2 header for UDP takes at most 52 bytes
    /// without TLVs).
    public static let prefixSpace = 128
    static let controlSpace = 64
    static let nameSpace = MemoryLayout<sockaddr_storage>.stride

    public let capacity: Int
    private let region: UnsafeMutableRawPointer
    private let regionBytes: Int
    private let buffers: UnsafeMutableRawPointer
    private let msgs: UnsafeMutablePointer<csluice_mmsghdr>
    /// Two per entry: [prefix, buffer].
    private let iovs: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    private let prefixes: UnsafeMutableRawPointer

    /// Maps the batch; nil when the kernel refuses the memory.
    public init?(capacity: Int) {
        guard capacity > 0, capacity <= 1024, csluice_PKTINFO_SPACE <= DatagramBatch.controlSpace else { return nil }
        self.capacity = capacity
        let bufferBytes = capacity * DatagramBatch.bufferSize
        let msgBytes = capacity * MemoryLayout<csluice_mmsghdr>.stride
        let iovBytes = 2 * capacity * MemoryLayout<iovec>.stride
        let nameBytes = capacity * DatagramBatch.nameSpace
        let controlBytes = capacity * DatagramBatch.controlSpace
        let prefixBytes = capacity * DatagramBatch.prefixSpace
        regionBytes = bufferBytes + msgBytes + iovBytes + nameBytes + controlBytes + prefixBytes
        guard let p = mmap(nil, regionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else { return nil }
        region = p
        // Every part starts at a multiple of 16 bytes (all sizes above are), so each binding
        // is aligned for its type.
        buffers = p
        var at = p + bufferBytes
        msgs = at.bindMemory(to: csluice_mmsghdr.self, capacity: capacity)
        at += msgBytes
        iovs = at.bindMemory(to: iovec.self, capacity: 2 * capacity)
        at += iovBytes
        names = at.bindMemory(to: sockaddr_storage.self, capacity: capacity)
        at += nameBytes
        controls = at
        at += controlBytes
        prefixes = at
    }

    deinit { munmap(region, regionBytes) }

    /// Readies entries `range` to receive a datagram each into their whole buffer, with the
    /// sender's address and packet info when `addresses` (an unconnected socket).
    @inline(__always)
    public func prepareReceive(_ range: Range<Int>, addresses: Bool) {
        assert(range.lowerBound >= 0 && range.upperBound <= capacity)
        for i in range {
            let payload = iovs + (2 * i + 1)
            payload.pointee.iov_base = buffers + i * DatagramBatch.bufferSize
            payload.pointee.iov_len = DatagramBatch.bufferSize
            let m = msgs + i
            m.pointee.msg_hdr.msg_iov = payload
            m.pointee.msg_hdr.msg_iovlen = 1
            if addresses {
                m.pointee.msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
                m.pointee.msg_hdr.msg_namelen = socklen_t(DatagramBatch.nameSpace)
                m.pointee.msg_hdr.msg_control = controls + i * DatagramBatch.controlSpace
                m.pointee.msg_hdr.msg_controllen = DatagramBatch.controlSpace
            } else {
                m.pointee.msg_hdr.msg_name = nil
                m.pointee.msg_hdr.msg_namelen = 0
                m.pointee.msg_hdr.msg_control = nil
                m.pointee.msg_hdr.msg_controllen = 0
            }
            m.pointee.msg_hdr.msg_flags = 0
            m.pointee.msg_len = 0
        }
    }

    /// `recvmmsg` into entries `range` (readied with `prepareReceive`). `.processed(n)`: the
    /// first `n` entries hold datagrams; fewer than `range.count` means the socket is drained.
    @inline(__always)
    public func receive(_ fd: Int32, _ range: Range<Int>) throws(Errno) -> IOResult<Int> {
        assert(range.lowerBound >= 0 && range.upperBound <= capacity && !range.isEmpty)
        return try Posix.recvmmsg(fd, msgs + range.lowerBound, range.count)
    }

    /// Bytes of the datagram received into entry `i`.
    @inline(__always)
    public func length(_ i: Int) -> Int { Int(msgs[i].msg_len) }

    /// The datagram received into entry `i` was longer than the buffer (never, for UDP).
    @inline(__always)
    public func isTruncated(_ i: Int) -> Bool { msgs[i].msg_hdr.msg_flags & csluice_MSG_TRUNC != 0 }

    /// The received datagram in entry `i`.
    @inline(__always)
    public func payload(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffers + i * DatagramBatch.bufferSize, count: length(i))
    }

    /// The whole buffer of entry `i` (to fill it for sending).
    @inline(__always)
    public func buffer(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffers + i * DatagramBatch.bufferSize, count: DatagramBatch.bufferSize)
    }

    /// The sender of the datagram received into entry `i` (an address-reporting receive).
    @inline(__always)
    public func source(_ i: Int) -> SocketAddress {
        var a = SocketAddress()
        a.storage = names[i]
        return a
    }

    /// The address the datagram in entry `i` was sent to (port 0), when the socket reports
    /// packet info (bound to a wildcard address); nil otherwise.
    @inline(__always)
    public func destination(_ i: Int) -> SocketAddress? {
        var a = SocketAddress()
        let found = withUnsafePointer(to: (msgs + i).pointee.msg_hdr) { csluice_pktinfo_destination($0, &a.storage) }
        return found == 1 ? a : nil
    }

    /// Room for the prefix of entry `i` (`prefixSpace` bytes).
    @inline(__always)
    public func prefix(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: prefixes + i * DatagramBatch.prefixSpace, count: DatagramBatch.prefixSpace)
    }

    /// Readies entry `i` to send `prefixLength` bytes of its prefix then `length` bytes of its
    /// buffer as one datagram: to `destination` (nil on a connected socket), from `source`'s
    /// address (nil: the kernel chooses; set it when the socket is bound to a wildcard address).
    @inline(__always)
    public func prepareSend(_ i: Int, length: Int, prefixLength: Int, to destination: SocketAddress?,
                            from source: SocketAddress?) {
        assert(i >= 0 && i < capacity)
        let pair = iovs + 2 * i
        pair.pointee.iov_base = prefixes + i * DatagramBatch.prefixSpace
        pair.pointee.iov_len = max(0, min(prefixLength, DatagramBatch.prefixSpace))
        let payload = pair + 1
        payload.pointee.iov_base = buffers + i * DatagramBatch.bufferSize
        payload.pointee.iov_len = max(0, min(length, DatagramBatch.bufferSize))
        let m = msgs + i
        if prefixLength > 0 {
            m.pointee.msg_hdr.msg_iov = pair
            m.pointee.msg_hdr.msg_iovlen = 2
        } else {
            m.pointee.msg_hdr.msg_iov = payload
            m.pointee.msg_hdr.msg_iovlen = 1
        }
        if let destination {
            names[i] = destination.storage
            m.pointee.msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
            m.pointee.msg_hdr.msg_namelen = destination.length
        } else {
            m.pointee.msg_hdr.msg_name = nil
            m.pointee.msg_hdr.msg_namelen = 0
        }
        m.pointee.msg_hdr.msg_controllen = 0
        m.pointee.msg_hdr.msg_control = nil
        if let source {
            let control = controls + i * DatagramBatch.controlSpace
            let n = withUnsafePointer(to: source.storage) {
                csluice_pktinfo_source(control, DatagramBatch.controlSpace, $0)
            }
            if n > 0 {
                m.pointee.msg_hdr.msg_control = control
                m.pointee.msg_hdr.msg_controllen = n
            }
        }
        m.pointee.msg_hdr.msg_flags = 0
        m.pointee.msg_len = 0
    }

    /// `sendmmsg` of entries `range` (readied with `prepareSend`). `.processed(n)`: the first
    /// `n` left; when `n < range.count` the next one failed or would block (send the rest
    /// again to learn which: a failing first entry throws its error).
    @inline(__always)
    public func send(_ fd: Int32, _ range: Range<Int>) throws(Errno) -> IOResult<Int> {
        assert(range.lowerBound >= 0 && range.upperBound <= capacity && !range.isEmpty)
        return try Posix.sendmmsg(fd, msgs + range.lowerBound, range.count)
    }
}

@available(*, unavailable)
extension DatagramBatch: Sendable {}
