#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import SluiceControl
import SluiceHTTP
import Testing

@testable import sluicectl

/// Bytes from the daemon are untrusted input: whatever arrives, `sluicectl` fails with a message and
/// exit 1 (a bad answer), never a trap. Each case here once trapped or was accepted wrongly.
@Suite struct HostileAnswerTests {
    static func feedAll(_ text: String) throws(HTTPResponseDecoder.DecodeError) -> [HTTPResponseDecoder.Event] {
        var decoder = HTTPResponseDecoder()
        var events = try decoder.feed(Array(text.utf8))
        if !decoder.isComplete { events += try decoder.finish() }
        return events
    }

    /// `Int("-1", radix: 16)` is -1: the chunk state took a negative length and sliced `buffer[..<-1]`.
    @Test(arguments: ["-1", "-0", "+1", "-7fffffffffffffff", " -1", "0x10", "1 2", "\u{0663}"])
    func chunkSizeMustBeHexDigits(_ size: String) {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nabc\r\n0\r\n\r\n"
        #expect(throws: HTTPResponseDecoder.DecodeError.self, "\(size.debugDescription)") {
            _ = try Self.feedAll(text)
        }
    }

    @Test func largestChunkSizeIsAcceptedAndTruncationReported() {
        // 15 hex digits is the most the decoder takes; the body then ends early: truncated, no trap.
        #expect(throws: HTTPResponseDecoder.DecodeError.truncated) {
            _ = try Self.feedAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nabc")
        }
        #expect(throws: HTTPResponseDecoder.DecodeError.self) {
            _ = try Self.feedAll("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc")
        }
    }

    @Test(arguments: ["+5", "5 5", "99999999999999999999", "", "0x5", "\u{0665}"])
    func contentLengthMustBeDigits(_ length: String) {
        #expect(throws: HTTPResponseDecoder.DecodeError.self, "\(length.debugDescription)") {
            _ = try Self.feedAll("HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\n\r\nhello")
        }
    }

    @Test(arguments: ["+20", "-99", "1e2", "\u{0662}00"])
    func statusMustBeThreeDigits(_ status: String) {
        #expect(throws: HTTPResponseDecoder.DecodeError.self, "\(status.debugDescription)") {
            _ = try Self.feedAll("HTTP/1.1 \(status) OK\r\nContent-Length: 0\r\n\r\n")
        }
    }

    /// `Int(1e19)` trapped in `Render.uptime`.
    @Test func uptimeOfAnyDoubleRenders() {
        #expect(Render.uptime(1e19) == "106751991167300d 15h 30m 7s")  // Int.max seconds
        #expect(Render.uptime(.greatestFiniteMagnitude) == Render.uptime(1e19))
        #expect(Render.uptime(.infinity) == Render.uptime(1e19))
        #expect(Render.uptime(0x1p63) == Render.uptime(1e19))
        #expect(Render.uptime(-5) == "0s")
        #expect(Render.uptime(-.infinity) == "0s")
        #expect(Render.uptime(.nan) == "0s")
        #expect(Render.uptime(0.9) == "0s")
        #expect(Render.uptime(0x1p62) == "53375995583650d 7h 45m 4s")
    }

    @Test func statusAnswerWithHugeUptimeDecodesAndRenders() throws {
        let body = #"{"config_file":"/c","config_hash":"h","connections_active":0,"connections_total":0,"#
            + #""plan_generation":1,"uptime_seconds":1e19,"version":"x","workers":1}"#
        let status = try JSON.decode(StatusInfo.self, from: Array(body.utf8))
        #expect(Render.status(status).contains("uptime:           106751991167300d"))
    }

    @Test func badAnswerExitsOne() {
        let error = ClientError.badResponse(socket: "/s", reason: "bad chunk size")
        #expect(ExitStatus.code(for: error) == ExitStatus.refused)
        #expect(ExitStatus.code(for: CtlFailure.unreachable(error)) == ExitStatus.refused)
        #expect(ExitStatus.code(for: CtlFailure.unreachable(.io(socket: "/s", reason: "r"))) == ExitStatus.unreachable)
    }

    @Test func oversizedStreamLineIsABadAnswer() throws {
        // A stream that never sends a newline must not grow the CLI's memory without bound.
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 256 * 1024)
        var reply = [bytes("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n")]
        for _ in 0...(ControlClient.maxLineBytes / piece.count) { reply.append(piece) }
        let server = try CannedServer(replies: [reply], pause: .zero)
        do {
            _ = try ControlClient(socketPath: server.path).streamLines(path: "/v1/events") { _ in }
            Issue.record("expected a failure")
        } catch {
            guard case .badResponse = error else { Issue.record("got \(error)"); return }
        }
    }
}

/// The built binary against a canned daemon: what an operator sees for a hostile answer.
@Suite(.serialized, .enabled(if: sluicectlBinary != nil, "the sluicectl binary is not built"))
struct HostileAnswerBinaryTests {
    @Test func negativeChunkSizeFailsWithExitOne() throws {
        let server = try CannedServer(replies: [
            [bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n")]
        ])
        let run = try EndToEndTests.run(["status", "--socket", server.path])
        #expect(run.status == 1, "stderr: \(run.stderr)")
        #expect(run.stderr.contains("bad answer from sluiced"))
        #expect(run.stderr.contains("bad chunk size"))
    }

    @Test func hugeUptimeRenders() throws {
        let body = #"{"config_file":"/c","config_hash":"h","connections_active":0,"connections_total":0,"#
            + #""plan_generation":1,"uptime_seconds":1e19,"version":"x","workers":1}"#
        let server = try CannedServer(replies: [
            [bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")]
        ])
        let run = try EndToEndTests.run(["status", "--socket", server.path])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("106751991167300d 15h 30m 7s"))
    }

    @Test func undecodableJSONFailsWithExitOne() throws {
        let body = #"{"config_file":"/c","workers":1e300}"#
        let server = try CannedServer(replies: [
            [bytes("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")]
        ])
        let run = try EndToEndTests.run(["status", "--socket", server.path])
        #expect(run.status == 1, "stderr: \(run.stderr)")
        #expect(run.stderr.contains("cannot read the answer"))
    }
}
