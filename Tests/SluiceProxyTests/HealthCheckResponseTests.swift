import Testing

@testable import SluiceControlPlane

@Suite struct HealthCheckResponseTests {
    /// Feeds `text` in pieces of `step` bytes; returns the first verdict other than `.needMore`.
    func judge(_ text: String, step: Int = .max) -> HealthCheckResponse.Verdict {
        var response = HealthCheckResponse()
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + step)
            let v = bytes[i..<end].withUnsafeBytes { response.append($0) }
            if v != .needMore { return v }
            i = end
        }
        return .needMore
    }

    @Test func statusOfAWholeHead() {
        #expect(judge("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == .status(200))
        #expect(judge("HTTP/1.0 503 Busy\r\n\r\n", step: 1) == .status(503))
        #expect(judge("HTTP/1.1 204\r\n\r\n") == .status(204))
    }

    @Test func theStatusLineAloneIsNotEnough() {
        #expect(judge("HTTP/1.1 200 OK\r\nServer: x\r\n") == .needMore)
    }

    @Test func interimHeadsAreSkipped() {
        #expect(judge("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /\r\n\r\n", step: 3) == .status(302))
    }

    @Test(arguments: [
        "SSH-2.0-OpenSSH_9.2\r\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20x OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ])
    func garbledAnswers(_ text: String) {
        #expect(judge(text) == .garbled)
    }

    @Test func oversizedHeadIsGarbled() {
        let text = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: HealthCheckResponse.limits.maxHeadBytes)
        #expect(judge(text, step: 1000) == .garbled)
        let interims = String(repeating: "HTTP/1.1 103 Early Hints\r\n\r\n", count: HealthCheckResponse.maxBytes / 20)
        #expect(judge(interims, step: 4096) == .garbled)
    }

    @Test func resetStartsAFreshAnswer() {
        var response = HealthCheckResponse()
        _ = Array("junk\r\n\r\n".utf8).withUnsafeBytes { response.append($0) }
        response.reset()
        #expect(Array("HTTP/1.1 200 OK\r\n\r\n".utf8).withUnsafeBytes { response.append($0) } == .status(200))
    }
}
