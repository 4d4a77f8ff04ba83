/// Why a session ends the connection. Raw values are metric labels
/// (`sluice_http2_connection_closed_total{reason=...}`).
public enum H2CloseReason: String, Sendable, CaseIterable {
    /// More RST_STREAM frames per second than the bound (the 2023 "rapid reset", CVE-2023-44487).
    case rapidReset = "rapid_reset"
    /// More non-ACK SETTINGS frames per second than the bound.
    case settingsFlood = "settings_flood"
    /// Too many frames without progress: empty DATA without END_STREAM, empty HEADERS/CONTINUATION.
    case emptyFrames = "empty_frames"
    /// More non-ACK PING frames per second than the bound.
    case pingFlood = "ping_flood"
    /// More PRIORITY frames per second than the bound.
    case priorityFlood = "priority_flood"
    /// More WINDOW_UPDATE frames per second than the bound.
    case windowUpdateFlood = "window_update_flood"
    /// A header block split over more CONTINUATION frames than the bound (CVE-2024-27316 class).
    case continuationFlood = "continuation_flood"
    /// One header block (HEADERS + CONTINUATIONs, encoded) larger than twice the header list limit.
    case headerListTooLarge = "header_list_too_large"
    /// A bad connection preface.
    case badPreface = "bad_preface"
    /// The peer broke the protocol (nghttp2 found a connection error).
    case protocolError = "protocol_error"
    /// An internal failure of the HTTP/2 library (out of memory, callback failure).
    case internalError = "internal_error"
}

/// Rate bounds of one connection; counts are per one-second window.
struct H2AbuseBounds: Sendable {
    var maxResetsPerSecond: Int
    var maxSettingsPerSecond: Int
    var maxEmptyFramesPerSecond: Int
    var maxPingsPerSecond: Int
    var maxPriorityPerSecond: Int
    var maxWindowUpdatesPerSecond: Int
    var maxContinuations: Int
    var maxHeaderBlockBytes: Int
}

/// Reads the frame headers of the inbound byte stream ahead of nghttp2 and counts what the abuse
/// bounds watch (RST_STREAM, SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty frames, CONTINUATION
/// runs). Counting on the wire rather than in nghttp2 callbacks lets the session stop feeding
/// nghttp2 at the first frame beyond a bound, so nothing after it is processed.
/// Allocation-free; resumes across any split of the input.
struct H2FrameGuard: Sendable {
    private var prefaceLeft: Int
    private var header: UInt128 = 0
    private var headerFill = 0
    private var payloadLeft = 0
    private var inHeaderBlock = false
    private var blockBytes = 0
    private var continuations = 0

    private var windowStart: UInt64 = 0
    private var resets = 0
    private var settings = 0
    private var empty = 0
    private var pings = 0
    private var priorities = 0
    private var windowUpdates = 0

    let bounds: H2AbuseBounds

    init(bounds: H2AbuseBounds, skipPreface: Bool) {
        self.bounds = bounds
        prefaceLeft = skipPreface ? 24 : 0
    }

    /// Scans `p`. Returns the number of bytes that may be given to nghttp2 (all of them unless a
    /// bound trips: then the bytes before the frame that tripped it) and the reason, if any.
    mutating func scan(_ p: UnsafeRawBufferPointer, now: UInt64) -> (safe: Int, trip: H2CloseReason?) {
        if now &- windowStart >= 1_000_000_000 || now < windowStart {
            windowStart = now
            resets = 0
            settings = 0
            empty = 0
            pings = 0
            priorities = 0
            windowUpdates = 0
        }
        let n = p.count
        var i = 0
        if prefaceLeft > 0 {
            let skip = min(prefaceLeft, n)
            prefaceLeft &-= skip
            i = skip
        }
        while i < n {
            if payloadLeft > 0 {
                let take = min(payloadLeft, n &- i)
                payloadLeft &-= take
                i &+= take
                continue
            }
            // Start (or continue) a 9-byte frame header.
            let frameStart = max(0, i &- headerFill)
            while headerFill < 9 && i < n {
                header = header << 8 | UInt128(p[i])
                headerFill &+= 1
                i &+= 1
            }
            if headerFill < 9 { break }
            let h = header
            header = 0
            headerFill = 0
            let length = Int(truncatingIfNeeded: (h >> 48) & 0xFF_FFFF)
            let type = UInt8(truncatingIfNeeded: h >> 40)
            let flags = UInt8(truncatingIfNeeded: h >> 32)
            payloadLeft = length
            if let reason = count(type: type, flags: flags, length: length) {
                return (frameStart, reason)
            }
        }
        return (n, nil)
    }

    /// Counts a stream the peer got reset without sending RST_STREAM itself (a malformed request
    /// nghttp2 refused: the "MadeYouReset" variant of rapid reset). True when over the bound.
    mutating func noteProvokedReset(now: UInt64) -> Bool {
        if now &- windowStart >= 1_000_000_000 || now < windowStart { return false }
        resets &+= 1
        return resets > bounds.maxResetsPerSecond
    }

    private static let endStream: UInt8 = 0x1
    private static let ack: UInt8 = 0x1
    private static let endHeaders: UInt8 = 0x4

    private mutating func count(type: UInt8, flags: UInt8, length: Int) -> H2CloseReason? {
        switch type {
        case 0x0:  // DATA
            if length == 0 && flags & Self.endStream == 0 {
                empty &+= 1
                if empty > bounds.maxEmptyFramesPerSecond { return .emptyFrames }
            }
        case 0x1:  // HEADERS
            if length == 0 && flags & Self.endStream == 0 {
                empty &+= 1
                if empty > bounds.maxEmptyFramesPerSecond { return .emptyFrames }
            }
            blockBytes = length
            continuations = 0
            inHeaderBlock = flags & Self.endHeaders == 0
            if blockBytes > bounds.maxHeaderBlockBytes { return .headerListTooLarge }
        case 0x2:  // PRIORITY
            priorities &+= 1
            if priorities > bounds.maxPriorityPerSecond { return .priorityFlood }
        case 0x3:  // RST_STREAM
            resets &+= 1
            if resets > bounds.maxResetsPerSecond { return .rapidReset }
        case 0x4:  // SETTINGS
            if flags & Self.ack == 0 {
                settings &+= 1
                if settings > bounds.maxSettingsPerSecond { return .settingsFlood }
            }
        case 0x5:  // PUSH_PROMISE: refused by nghttp2 for a server; a client never enables push
            blockBytes = length
            continuations = 0
            inHeaderBlock = flags & Self.endHeaders == 0
        case 0x6:  // PING
            if flags & Self.ack == 0 {
                pings &+= 1
                if pings > bounds.maxPingsPerSecond { return .pingFlood }
            }
        case 0x8:  // WINDOW_UPDATE
            windowUpdates &+= 1
            if windowUpdates > bounds.maxWindowUpdatesPerSecond { return .windowUpdateFlood }
        case 0x9:  // CONTINUATION
            continuations &+= 1
            blockBytes &+= length
            if length == 0 && flags & Self.endHeaders == 0 {
                empty &+= 1
                if empty > bounds.maxEmptyFramesPerSecond { return .emptyFrames }
            }
            if continuations > bounds.maxContinuations { return .continuationFlood }
            if blockBytes > bounds.maxHeaderBlockBytes { return .headerListTooLarge }
            if flags & Self.endHeaders != 0 { inHeaderBlock = false }
        default:
            break
        }
        return nil
    }
}
