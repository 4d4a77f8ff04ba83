@testable import SluiceHTTP2

/// A client and a server session wired back to back in memory.
final class H2Pair {
    let client: H2ClientSession
    let server: H2ServerSession
    var serverEvents: [H2ServerEvent] = []
    var clientEvents: [H2ClientEvent] = []
    var serverResult = H2Receive.ok
    var clientResult = H2Receive.ok
    var now: UInt64 = 1_000_000_000
    private var buf = [UInt8](repeating: 0, count: 64 * 1024)

    init(server: H2ServerSettings = H2ServerSettings(), client: H2ClientSettings = H2ClientSettings()) {
        self.client = H2ClientSession(settings: client)
        self.server = H2ServerSession(settings: server)
    }

    /// Moves bytes both ways until neither side has output; collects events.
    func shuttle(maxRounds: Int = 1000) {
        for _ in 0..<maxRounds {
            var moved = false
            let c2s = buf.withUnsafeMutableBytes { client.produceOutput(into: $0.baseAddress!, capacity: $0.count) }
            drainClient()
            if c2s > 0 {
                moved = true
                serverResult = buf.withUnsafeBytes { server.receive(UnsafeRawBufferPointer(rebasing: $0[0..<c2s]), now: now) }
                drainServer()
            }
            let s2c = buf.withUnsafeMutableBytes { server.produceOutput(into: $0.baseAddress!, capacity: $0.count) }
            drainServer()
            if s2c > 0 {
                moved = true
                clientResult = buf.withUnsafeBytes { client.receive(UnsafeRawBufferPointer(rebasing: $0[0..<s2c]), now: now) }
                drainClient()
            }
            if !moved { return }
        }
    }

    func drainServer() {
        while let e = server.nextEvent() { serverEvents.append(e) }
    }

    func drainClient() {
        while let e = client.nextEvent() { clientEvents.append(e) }
    }
}

/// Everything a server produced, as bytes.
func drainOutput(_ s: H2ServerSession) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = buf.withUnsafeMutableBytes { s.produceOutput(into: $0.baseAddress!, capacity: $0.count) }
        if n == 0 { break }
        out += buf[0..<n]
    }
    return out
}

extension H2ServerEvent {
    var requestStream: Int32? {
        if case .request(let s, _, _) = self { return s }
        return nil
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Raw HTTP/2 frames for hostile-input tests.
enum Frame {
    static func make(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n),
                type, flags,
                UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16),
                UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)] + payload
    }

    /// Preface and an empty SETTINGS.
    static var start: [UInt8] { HTTP2.clientPreface + make(type: 4, flags: 0, stream: 0, payload: []) }

    /// GET / with :authority a (HPACK static-table indices and one literal).
    static let getBlock: [UInt8] = [0x82, 0x86, 0x84, 0x41, 0x01, 0x61]

    static func headers(_ stream: UInt32, endStream: Bool = true, endHeaders: Bool = true, block: [UInt8] = getBlock) -> [UInt8] {
        make(type: 1, flags: (endStream ? 0x1 : 0) | (endHeaders ? 0x4 : 0), stream: stream, payload: block)
    }

    static func rst(_ stream: UInt32, code: UInt32 = 8) -> [UInt8] {
        make(type: 3, flags: 0, stream: stream, payload: [0, 0, 0, UInt8(truncatingIfNeeded: code)])
    }

    static func hpackInt(_ v: Int, prefixBits: Int, first: UInt8 = 0) -> [UInt8] {
        let maxPrefix = (1 << prefixBits) - 1
        if v < maxPrefix { return [first | UInt8(v)] }
        var out: [UInt8] = [first | UInt8(maxPrefix)]
        var rest = v - maxPrefix
        while rest >= 128 {
            out.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        out.append(UInt8(rest))
        return out
    }

    /// A literal header field without indexing, new name.
    static func literal(_ name: String, _ value: String) -> [UInt8] {
        [0x00] + hpackInt(name.utf8.count, prefixBits: 7) + Array(name.utf8)
            + hpackInt(value.utf8.count, prefixBits: 7) + Array(value.utf8)
    }
}

/// Feeds `input` to `server` in `chunk`-sized reads; returns the events and the first close.
func feed(_ server: H2ServerSession, _ input: [UInt8], chunk: Int = 16384, now: UInt64 = 5_000_000_000)
    -> (events: [H2ServerEvent], close: H2CloseReason?, calls: Int, output: [UInt8])
{
    var events: [H2ServerEvent] = []
    var output: [UInt8] = []
    var off = 0
    var calls = 0
    while off < input.count {
        let end = min(input.count, off + chunk)
        calls += 1
        let r = input.withUnsafeBytes { server.receive(UnsafeRawBufferPointer(rebasing: $0[off..<end]), now: now) }
        while let e = server.nextEvent() { events.append(e) }
        output += drainOutput(server)
        if case .close(let why) = r { return (events, why, calls, output) }
        off = end
    }
    return (events, nil, calls, output)
}

/// Whether `output` holds a GOAWAY frame with `code` (walks the frames after the server SETTINGS).
func hasGoaway(_ output: [UInt8], code: UInt32) -> Bool {
    var i = 0
    while i + 9 <= output.count {
        let len = Int(output[i]) << 16 | Int(output[i + 1]) << 8 | Int(output[i + 2])
        if output[i + 3] == 7 && i + 9 + 8 <= output.count {
            let c = UInt32(output[i + 13]) << 24 | UInt32(output[i + 14]) << 16 | UInt32(output[i + 15]) << 8 | UInt32(output[i + 16])
            if c == code { return true }
        }
        i += 9 + len
    }
    return false
}
