import Testing
@testable import SluiceHTTP2

@Suite struct GRPCTests {
    @Test(arguments: [(400, 13), (401, 16), (403, 7), (404, 12), (429, 14), (502, 14), (503, 14), (504, 4),
                      (500, 2), (408, 2), (413, 2), (431, 2), (200, 0)])
    func httpToGRPCStatus(http: Int, grpc: Int) {
        #expect(GRPC.status(forHTTPStatus: http) == grpc)
        #expect(GRPC.trailersOnlyError(status: http).grpcStatus == grpc)
    }

    @Test func trailersOnlyHeaders() {
        let h = GRPC.trailersOnlyHeaders(status: 503)
        #expect(h.first("content-type") == "application/grpc")
        #expect(h.first("grpc-status") == "14")
        #expect(h.first("grpc-message")?.isEmpty == false)
    }

    @Test func healthRequestEncoding() {
        #expect(GRPC.healthCheckRequest(service: "") == [0, 0, 0, 0, 0])
        let r = GRPC.healthCheckRequest(service: "svc")
        #expect(r == [0, 0, 0, 0, 5, 0x0A, 3, 0x73, 0x76, 0x63])
        let long = GRPC.healthCheckRequest(service: String(repeating: "s", count: 200))
        #expect(Array(long[0..<8]) == [0, 0, 0, 0, 203, 0x0A, 0xC8, 0x01])
    }

    @Test func healthResponseDecoding() {
        #expect(GRPC.parseHealthCheckResponse([0, 0, 0, 0, 2, 0x08, 1]) == .serving)
        #expect(GRPC.parseHealthCheckResponse([0, 0, 0, 0, 2, 0x08, 2]) == .notServing)
        #expect(GRPC.parseHealthCheckResponse([0, 0, 0, 0, 0]) == .unknown)
        // Unknown fields are skipped (varint, length-delimited, fixed64, fixed32).
        let withExtras: [UInt8] = [0, 0, 0, 0, 20, 0x10, 0x96, 0x01, 0x1A, 2, 0x61, 0x62, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 1]
        #expect(GRPC.parseHealthCheckResponse(withExtras.prefix(5) + [0x10, 0x96, 0x01, 0x1A, 2, 0x61, 0x62, 0x08, 1]) == nil) // length mismatch is fine: len 20 > 9
        var fixed = withExtras
        fixed[4] = UInt8(fixed.count - 5)
        #expect(GRPC.parseHealthCheckResponse(fixed) == .serving)
        #expect(GRPC.parseHealthCheckResponse([0, 0, 0, 0, 2, 0x08, 9]) == .unknown)
    }

    @Test(arguments: [
        [UInt8](), [0], [0, 0, 0, 0], [1, 0, 0, 0, 2, 0x08, 1], [0, 0, 0, 0, 3, 0x08, 1], [0, 0, 0, 0, 1, 0x08],
        [0, 0, 0, 0, 2, 0x08, 0x80], [0, 0, 0, 0, 2, 0x0F, 1], [0, 0, 0, 0, 3, 0x0A, 9, 1], [0, 255, 255, 255, 255, 8, 1],
        [0, 0, 0, 0, 11] + [UInt8](repeating: 0xFF, count: 11), [0, 0, 0, 0, 2, 0x00, 1],
    ])
    func garbageIsNil(input: [UInt8]) {
        #expect(GRPC.parseHealthCheckResponse(input) == nil)
    }

    @Test func randomNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0...40, using: &rng)
            var b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if b.count >= 5 && Bool.random(using: &rng) {
                b[0] = 0
                b[1] = 0; b[2] = 0; b[3] = 0
                b[4] = UInt8(b.count - 5)
            }
            _ = GRPC.parseHealthCheckResponse(b)
        }
    }
}
