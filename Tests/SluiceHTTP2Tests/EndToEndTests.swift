import Testing
import SluiceHTTP
@testable import SluiceHTTP2

/// The whole frontend path in memory: an HTTP/2 client, the server session, the h2 → HTTP/1.1
/// request translator (what the HTTP/1 exchange would read), a canned HTTP/1.1 response from a
/// "target", and the HTTP/1.1 → h2 response translator feeding the server session back.
@Suite struct EndToEndTests {
    @Test func grpcStyleCallThroughHTTP1() throws {
        let p = H2Pair()
        let id = try #require(p.client.submitRequest(
            H2RequestHead(method: "POST", authority: "svc.local", path: "/pkg.Echo/Say",
                          headers: [("content-type", "application/grpc"), ("te", "trailers")]),
            endStream: false))
        #expect([UInt8](repeating: 9, count: 12).withUnsafeBytes { p.client.sendData(stream: id, $0, endStream: true) })
        p.shuttle()

        // Frontend: h2 events → HTTP/1.1 bytes.
        var toTarget: [UInt8] = []
        var enc = H2ToHTTP1Request()
        var sid: Int32 = 0
        for e in p.serverEvents {
            switch e {
            case .request(let s, let head, let end):
                sid = s
                guard case .success = enc.encodeHead(head, endStream: end, into: &toTarget) else {
                    Issue.record("encode failed")
                    return
                }
            case .data(let s, let b):
                enc.encodeBody(b, into: &toTarget)
                p.server.consume(stream: s, bytes: b.count)
            case .endStream: enc.encodeEnd(trailers: nil, into: &toTarget)
            default: break
            }
        }
        var parser = HTTPRequestParser()
        #expect(toTarget.withUnsafeBytes { parser.parse($0) } == .complete)
        #expect(parser.head.framing == .chunked)
        let bodyBytes = Array(toTarget[parser.head.headLength...])
        var scanner = ChunkedBodyScanner()
        #expect(bodyBytes.withUnsafeBytes { scanner.scan($0) } == .finished(bodyBytes.count))
        #expect(scanner.dataBytes == 12)

        // Target answers HTTP/1.1 with chunked trailers; translate back to h2.
        let response = bytes("HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + "5\r\n\u{0}\u{0}\u{0}\u{0}\u{0}\r\n0\r\ngrpc-status: 0\r\n\r\n")
        var dec = HTTP1ToH2Response(requestMethod: .post)
        var off = 0
        loop: while true {
            let (s, n) = response.withUnsafeBytes { dec.step(UnsafeRawBufferPointer(rebasing: $0[off...])) }
            switch s {
            case .head: p.server.respond(stream: sid, status: dec.status, headers: dec.headers, endStream: dec.endStream)
            case .body(let r):
                _ = response.withUnsafeBytes { p.server.sendData(stream: sid, UnsafeRawBufferPointer(rebasing: $0[(off + r.lowerBound)..<(off + r.upperBound)]), endStream: false) }
            case .trailers: p.server.sendTrailers(stream: sid, dec.trailers)
            case .end, .needMore, .error:
                off += n
                break loop
            }
            off += n
        }
        #expect(off == response.count)
        p.shuttle()
        var status = 0
        var body = 0
        var grpcStatus: String?
        for e in p.clientEvents {
            switch e {
            case .responseHead(_, let st, _, _): status = st
            case .data(_, let b): body += b.count
            case .trailers(_, let t): grpcStatus = t.first("grpc-status")
            default: break
            }
        }
        #expect(status == 200 && body == 5 && grpcStatus == "0")
        #expect(p.server.openStreams == 0)
    }
}
