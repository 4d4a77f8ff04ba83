/// An in-memory, bounded, two-way byte pipe between an HTTP/1.1 session of the data plane
/// (the *local* side, which reads and writes it through `Transport.stream`) and a multiplexed
/// connection that owns the *remote* side (an HTTP/2 stream translating to and from
/// HTTP/1.1). It lets one HTTP/2 stream be served by the unchanged HTTP/1.1 exchange path.
///
/// Loop-bound: one worker thread uses both sides. Buffers are allocated once per object and
/// the objects are pooled by their owner, so a stream allocates nothing in the steady state.
/// Every transfer is bounded by `capacity` (backpressure both ways): a full pipe makes the
/// local write answer `.wouldBlock`, an empty one the local read.
public final class StreamPipe {
    /// Bytes each direction holds at most.
    public let capacity: Int
    private let inbound: UnsafeMutableRawPointer
    private let outbound: UnsafeMutableRawPointer
    private var inStart = 0
    private var inEnd = 0
    private var outStart = 0
    private var outEnd = 0

    /// The remote side will send nothing more (local reads then see `.closed`).
    public private(set) var inboundEnded = false
    /// The local side shut its writing side (`shutdownWrite`).
    public private(set) var outboundEnded = false
    /// The remote side is gone: local writes fail.
    public private(set) var remoteGone = false
    /// Bytes the local side read since the remote last asked (`takeConsumed`): HTTP/2 flow
    /// control gives them back to the peer only once they really moved on.
    private var consumed = 0
    /// Remote bytes that did not fit in `inbound` yet (`pushAll`), `[overflowStart...]`
    /// unread; they move in as the local side reads. Bounded by the sender's flow-control
    /// window (bytes are credited back only as the local side reads), not by this pipe.
    private var overflow: [UInt8] = []
    private var overflowStart = 0

    /// Who owns the remote side (a connection slot) and which of its streams this is; set by
    /// the owner, read back when the pipe is reported dirty.
    public var owner: Int32 = -1
    public var stream: Int32 = 0
    /// The owner's generation at attach time, so a report about an old use is ignored.
    public var generation: UInt32 = 0
    /// Free for the owner: marks answers Sluice made itself (gRPC Trailers-Only errors).
    public var ownAnswer = false
    /// Which kind of owner holds the remote side: `clientSide` (an HTTP/2 client connection,
    /// the local side is a stream session) or `targetSide` (an HTTP/2 target connection, the
    /// local side is an exchange's target connection). Fixed for the pipe's life.
    public var side: UInt8 = StreamPipe.clientSide
    public static let clientSide: UInt8 = 0
    public static let targetSide: UInt8 = 1
    /// Set when the local side moved bytes or ended; the owner's `StreamPipeQueue` lists it.
    public private(set) var isQueued = false
    private let queue: StreamPipeQueue

    public init(capacity: Int = 64 * 1024, queue: StreamPipeQueue) {
        self.capacity = max(capacity, 1024)
        self.queue = queue
        inbound = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
        outbound = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit {
        inbound.deallocate()
        outbound.deallocate()
    }

    /// Readies the pipe for a new use.
    public func reset() {
        inStart = 0
        inEnd = 0
        outStart = 0
        outEnd = 0
        inboundEnded = false
        outboundEnded = false
        remoteGone = false
        consumed = 0
        overflow.removeAll(keepingCapacity: true)
        overflowStart = 0
        ownAnswer = false
        owner = -1
        stream = 0
    }

    // MARK: local side (through `Transport.stream`)

    /// Reads up to `count` bytes the remote side pushed. `.drained(n)` when the pipe is empty
    /// afterwards (wait for the remote's next push), `.closed` once it ended and is empty.
    public func read(into buffer: UnsafeMutableRawPointer, count: Int) -> TransportResult {
        if inStart == inEnd { refill() }
        let available = inEnd - inStart
        if available == 0 {
            if inboundEnded || remoteGone { return .closed }
            return .wouldBlock
        }
        let n = min(available, count)
        buffer.copyMemory(from: inbound + inStart, byteCount: n)
        inStart += n
        consumed += n
        if inStart == inEnd {
            inStart = 0
            inEnd = 0
            refill()
        }
        markQueued()
        return inEnd == inStart ? .drained(n) : .bytes(n)
    }

    /// Moves what waits in `overflow` into the room `inbound` has.
    private func refill() {
        guard overflowStart < overflow.count else { return }
        let n = overflow.withUnsafeBytes { push(UnsafeRawBufferPointer(rebasing: $0[overflowStart...])) }
        overflowStart += n
        if overflowStart == overflow.count {
            overflow.removeAll(keepingCapacity: true)
            overflowStart = 0
        }
    }

    /// Writes up to `count` bytes for the remote side. `.drained(n)` when the pipe filled up.
    public func write(from buffer: UnsafeRawPointer, count: Int) -> TransportResult {
        if remoteGone || outboundEnded { return .failed(Errno(32)) }  // EPIPE
        if outStart > 0 && outEnd == capacity {
            (outbound).copyMemory(from: outbound + outStart, byteCount: outEnd - outStart)
            outEnd -= outStart
            outStart = 0
        }
        let room = capacity - outEnd
        if room == 0 { return .wouldBlock }
        let n = min(room, count)
        (outbound + outEnd).copyMemory(from: buffer, byteCount: n)
        outEnd += n
        markQueued()
        return n < count ? .drained(n) : .bytes(n)
    }

    /// The local side will write nothing more (a half-close).
    public func shutdownWrite() {
        outboundEnded = true
        markQueued()
    }

    private func markQueued() {
        if !isQueued {
            isQueued = true
            queue.pipes.append(self)
        }
    }

    // MARK: remote side

    /// Room for `push`.
    public var inboundSpace: Int { capacity - (inEnd - inStart) }

    /// Appends up to `bytes.count` bytes for the local side to read; returns how many fit.
    public func push(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let base = bytes.baseAddress, bytes.count > 0, !inboundEnded else { return 0 }
        if inStart > 0 {
            inbound.copyMemory(from: inbound + inStart, byteCount: inEnd - inStart)
            inEnd -= inStart
            inStart = 0
        }
        let n = min(capacity - inEnd, bytes.count)
        if n > 0 { (inbound + inEnd).copyMemory(from: base, byteCount: n) }
        inEnd += n
        return n
    }

    /// Appends all of `bytes` for the local side: what does not fit waits in the pipe's
    /// overflow (in order) and moves in as the local side reads.
    public func pushAll(_ bytes: UnsafeRawBufferPointer) {
        guard !inboundEnded else { return }
        var rest = bytes
        if overflowStart == overflow.count {
            let n = push(bytes)
            rest = UnsafeRawBufferPointer(rebasing: bytes[n...])
        }
        if !rest.isEmpty { overflow.append(contentsOf: rest) }
    }

    /// Nothing more will be pushed.
    public func endInbound() { inboundEnded = true }

    /// The remote side is gone (stream reset, connection closed).
    public func remoteClosed() { remoteGone = true }

    /// What the local side wrote and the remote has not taken yet.
    public var outboundBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: outbound + outStart, count: outEnd - outStart)
    }

    /// The remote took `n` bytes of `outboundBytes`.
    public func consumeOutbound(_ n: Int) {
        outStart += min(n, outEnd - outStart)
        if outStart == outEnd {
            outStart = 0
            outEnd = 0
        }
    }

    /// Bytes the local side read since the last call (for flow-control credit).
    public func takeConsumed() -> Int {
        defer { consumed = 0 }
        return consumed
    }

    /// Called by the queue when the owner takes the pipe off it.
    fileprivate func dequeued() { isQueued = false }
}

/// The pipes whose local side moved bytes or ended since the owner last looked: the worker
/// drains it once per loop turn (and after feeding streams) to translate what they wrote.
public final class StreamPipeQueue {
    public fileprivate(set) var pipes: [StreamPipe] = []
    /// The batch being handed out; swapped with `pipes` so draining allocates nothing.
    private var batch: [StreamPipe] = []

    /// Owners (connection slots) whose output waits for the owner's end-of-turn flush, so a
    /// loop turn writes each connection once however many events it served.
    public private(set) var deferredOwners: [Int32] = []
    private var ownerBatch: [Int32] = []

    public init() {
        pipes.reserveCapacity(64)
        batch.reserveCapacity(64)
        deferredOwners.reserveCapacity(64)
        ownerBatch.reserveCapacity(64)
    }

    /// No pipe and no owner waits.
    public var isEmpty: Bool { pipes.isEmpty && deferredOwners.isEmpty }

    /// Lists an owner for the next drain (the caller keeps it from being listed twice).
    public func deferFlush(owner: Int32) {
        deferredOwners.append(owner)
    }

    /// Takes every deferred owner (in order) and empties the list.
    public func drainOwners(_ body: (Int32) -> Void) {
        while !deferredOwners.isEmpty {
            swap(&deferredOwners, &ownerBatch)
            for o in ownerBatch { body(o) }
            ownerBatch.removeAll(keepingCapacity: true)
        }
    }

    /// Takes every queued pipe (in the order they were queued) and empties the queue; pipes
    /// queued while `body` runs are handed out in a further round.
    public func drain(_ body: (StreamPipe) -> Void) {
        while !pipes.isEmpty {
            swap(&pipes, &batch)
            for p in batch {
                p.dequeued()
                body(p)
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}

@available(*, unavailable)
extension StreamPipe: Sendable {}

@available(*, unavailable)
extension StreamPipeQueue: Sendable {}
