internal import CSluice
import SluiceCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One worker's counters: a flat block of 64-bit slots the worker bumps with relaxed atomic
/// adds (lock-free, no sharing between workers) and the metrics scrape sums. Slots are
/// addressed by stable listener and group ids that survive reloads (`StatsIds`).
public final class StatsBlock: @unchecked Sendable {
    // @unchecked: every slot is only touched through relaxed atomic builtins.
    public static let maxListeners = 32
    public static let maxGroups = 128
    /// `sluice_requests_total` counts each status in this range exactly; any other status a
    /// target sends (600...999, which RFC 9110 does not define) is counted as `code="other"`.
    public static let statusCodes = 100...599
    /// Per listener × group column: one slot per code in `statusCodes`, then "other".
    static let codeSlots = statusCodes.count + 1
    /// Group columns: 0 is "no group" (Sluice answered before forwarding), then group id + 1.
    static let groupColumns = maxGroups + 1
    /// Sluice's own error answers counted by kind.
    public static let errorStatuses = [400, 408, 413, 414, 431, 501, 502, 503, 504]
    /// Latency buckets (seconds) of `sluice_request_duration_seconds`.
    public static let buckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    // Per-listener layout.
    static let connTotal = 0
    static let bytesIn = 1
    static let bytesOut = 2
    static let desync = 3  // 4 slots
    static let errors = 7  // errorStatuses.count slots
    static let histogram = 16  // buckets.count + 1 (+Inf) slots
    static let durationSumMicros = 29
    static let durationCount = 30
    static let connClosed = 31
    /// `sluice_tls_handshakes_total{result}`: `tlsResults` slots.
    static let tlsHandshakes = 32
    /// HTTP/2 connections ended by an abuse bound or protocol error, by reason: `h2CloseSlots`.
    static let h2Closes = 48
    /// HTTP/2 streams opened by clients.
    static let h2Streams = 63
    /// UDP: datagrams from clients and to clients, datagrams dropped because the flow table was
    /// full, and datagrams dropped for want of a usable target or by a failed send.
    static let udpDatagramsIn = 64
    static let udpDatagramsOut = 65
    static let udpFlowsFull = 66
    static let udpDropped = 67
    /// PROXY protocol headers read (`accept_proxy_protocol`), and connections closed for a
    /// missing, malformed or oversized header, or one not complete in time.
    static let proxyAccepted = 72
    static let proxyInvalid = 73
    static let proxyTimeout = 74
    /// Requests (L7) or connections (L4) that waited in a surge queue until its timeout.
    static let surgeTimeout = 75
    static let perListener = 80

    /// Results of TLS handshakes, in slot order: completed (full), completed (resumed), then
    /// the failure causes (`TLSFailure` raw values).
    public static let tlsResults: [String] = ["success", "resumed"] + TLSFailure.allCases.map(\.rawValue)
    /// Slots reserved for HTTP/2 close reasons.
    public static let h2CloseSlots = 15

    static let requestsBase = maxListeners * perListener
    /// About 2 M slots (16 MiB of address space per worker); `calloc` of this size maps
    /// zero pages lazily, so only the pages of status codes that occur take memory.
    static let groupBase = requestsBase + maxListeners * groupColumns * codeSlots
    static let slotCount = groupBase + maxGroups * perGroup

    private let slots: UnsafeMutablePointer<UInt64>

    init() {
        guard let raw = calloc(StatsBlock.slotCount, MemoryLayout<UInt64>.stride) else {
            fatalError("StatsBlock: cannot allocate \(StatsBlock.slotCount) counters")
        }
        slots = raw.bindMemory(to: UInt64.self, capacity: StatsBlock.slotCount)
    }

    deinit { free(slots) }

    @inline(__always)
    func add(_ slot: Int, _ v: UInt64 = 1) { csluice_counter_add(slots + slot, v) }

    @inline(__always)
    func load(_ slot: Int) -> UInt64 { csluice_counter_load(slots + slot) }

    @inline(__always)
    static func listenerSlot(_ listener: Int, _ field: Int) -> Int { listener * perListener + field }

    /// The `sluice_requests_total` slot; `group` is a group id or -1 for none. Every index is
    /// bounded: listener and group checked by the callers, the code clamped to "other".
    @inline(__always)
    static func requestSlot(listener: Int, group: Int, status: Int) -> Int {
        let code = statusCodes.contains(status) ? status - statusCodes.lowerBound : statusCodes.count
        return requestsBase + (listener * groupColumns + group + 1) * codeSlots + code
    }

    /// Records one finished request: `group` is the group id it was forwarded to, or -1;
    /// `status` 0 means nothing was answered (the client left), which is not a request
    /// answered.
    @inline(__always)
    func request(listener: Int, group: Int, status: Int, nanos: UInt64) {
        guard listener >= 0, listener < StatsBlock.maxListeners else { return }
        if status != 0 {
            let g = group >= 0 && group < StatsBlock.maxGroups ? group : -1
            add(StatsBlock.requestSlot(listener: listener, group: g, status: status))
        }
        let seconds = Double(nanos) / 1e9
        var b = 0
        while b < StatsBlock.buckets.count && seconds > StatsBlock.buckets[b] { b += 1 }
        add(StatsBlock.listenerSlot(listener, StatsBlock.histogram + b))
        add(StatsBlock.listenerSlot(listener, StatsBlock.durationSumMicros), nanos / 1000)
        add(StatsBlock.listenerSlot(listener, StatsBlock.durationCount))
    }

    @inline(__always)
    func ownError(listener: Int, status: Int) {
        guard listener >= 0, listener < StatsBlock.maxListeners,
              let i = StatsBlock.errorStatuses.firstIndex(of: status) else { return }
        add(StatsBlock.listenerSlot(listener, StatsBlock.errors + i))
    }
}

extension StatsBlock {
    /// Counts one TLS handshake outcome (`result` indexes `tlsResults`).
    @inline(__always)
    func tlsHandshake(listener l: Int, result: Int) {
        guard l >= 0, l < StatsBlock.maxListeners, result >= 0, result < 16 else { return }
        add(StatsBlock.listenerSlot(l, StatsBlock.tlsHandshakes + result))
    }
    public func tlsHandshakes(listener l: Int, result: Int) -> UInt64 {
        guard result >= 0, result < 16 else { return 0 }
        return load(StatsBlock.listenerSlot(l, StatsBlock.tlsHandshakes + result))
    }
    /// Counts an HTTP/2 connection closed for reason number `reason` (< `h2CloseSlots`).
    @inline(__always)
    func h2Close(listener l: Int, reason: Int) {
        guard l >= 0, l < StatsBlock.maxListeners, reason >= 0, reason < StatsBlock.h2CloseSlots else { return }
        add(StatsBlock.listenerSlot(l, StatsBlock.h2Closes + reason))
    }
    public func h2Closes(listener l: Int, reason: Int) -> UInt64 {
        guard reason >= 0, reason < StatsBlock.h2CloseSlots else { return 0 }
        return load(StatsBlock.listenerSlot(l, StatsBlock.h2Closes + reason))
    }
    public func h2Streams(listener l: Int) -> UInt64 { load(StatsBlock.listenerSlot(l, StatsBlock.h2Streams)) }

    public func connectionsTotal(listener l: Int) -> UInt64 { load(StatsBlock.listenerSlot(l, StatsBlock.connTotal)) }
    public func connectionsClosed(listener l: Int) -> UInt64 { load(StatsBlock.listenerSlot(l, StatsBlock.connClosed)) }
    public func bytes(listener l: Int) -> (incoming: UInt64, outgoing: UInt64) {
        (load(StatsBlock.listenerSlot(l, StatsBlock.bytesIn)), load(StatsBlock.listenerSlot(l, StatsBlock.bytesOut)))
    }
    public func desync(listener l: Int, klass: Int) -> UInt64 { load(StatsBlock.listenerSlot(l, StatsBlock.desync + klass)) }
    public func ownErrors(listener l: Int, index: Int) -> UInt64 { load(StatsBlock.listenerSlot(l, StatsBlock.errors + index)) }
    /// Requests answered with `code` (one of `statusCodes`, or 0 for "other") on listener
    /// `l`, forwarded to group `g` (nil: answered by Sluice before forwarding).
    public func requests(listener l: Int, group g: Int?, code: Int) -> UInt64 {
        guard l >= 0, l < StatsBlock.maxListeners else { return 0 }
        let column = g.map { $0 >= 0 && $0 < StatsBlock.maxGroups ? $0 : -1 } ?? -1
        return load(StatsBlock.requestSlot(listener: l, group: column, status: code))
    }
    /// Histogram bucket counts (not cumulative; the last is +Inf), sum in µs, count.
    public func durations(listener l: Int) -> (buckets: [UInt64], sumMicros: UInt64, count: UInt64) {
        ((0...StatsBlock.buckets.count).map { load(StatsBlock.listenerSlot(l, StatsBlock.histogram + $0)) },
         load(StatsBlock.listenerSlot(l, StatsBlock.durationSumMicros)), load(StatsBlock.listenerSlot(l, StatsBlock.durationCount)))
    }
}

/// Stable small ids for listener and group names: a name keeps its id for the life of the
/// process, so counters stay continuous across reloads.
public final class StatsIds: Sendable {
    private let state = Mutex<(listeners: [String: Int], groups: [String: Int])>(([:], [:]))

    public init() {}

    public func listener(_ name: String) -> Int {
        state.withLock { s in
            if let id = s.listeners[name] { return id }
            let id = s.listeners.count < StatsBlock.maxListeners ? s.listeners.count : -1
            if id >= 0 { s.listeners[name] = id }
            return id
        }
    }

    public func group(_ name: String) -> Int {
        state.withLock { s in
            if let id = s.groups[name] { return id }
            let id = s.groups.count < StatsBlock.maxGroups ? s.groups.count : -1
            if id >= 0 { s.groups[name] = id }
            return id
        }
    }

    public var listeners: [String: Int] { state.withLock { $0.listeners } }
    public var groups: [String: Int] { state.withLock { $0.groups } }
}
