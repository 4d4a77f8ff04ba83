/// gRPC pieces of `protocol_version: grpc` (SPEC §3): the status of a Trailers-Only error made by
/// Sluice, and the `grpc.health.v1.Health/Check` codec for health checks.
public enum GRPC {
    /// The health-check method path.
    public static let healthCheckPath = "/grpc.health.v1.Health/Check"

    /// `HealthCheckResponse.ServingStatus`.
    public enum ServingStatus: Int, Sendable {
        case unknown = 0, serving = 1, notServing = 2, serviceUnknown = 3
    }

    /// The gRPC status for an HTTP status Sluice answers with (gRPC's "HTTP to gRPC Status Code
    /// Mapping", except 504 → DEADLINE_EXCEEDED per SPEC §3).
    public static func status(forHTTPStatus http: Int) -> Int {
        switch http {
        case 200: return 0
        case 400: return 13  // INTERNAL
        case 401: return 16  // UNAUTHENTICATED
        case 403: return 7  // PERMISSION_DENIED
        case 404: return 12  // UNIMPLEMENTED
        case 429, 502, 503: return 14  // UNAVAILABLE
        case 504: return 4  // DEADLINE_EXCEEDED
        default: return 2  // UNKNOWN
        }
    }

    /// The gRPC status and message of a Trailers-Only response standing for `status`.
    public static func trailersOnlyError(status http: Int) -> (grpcStatus: Int, message: String) {
        let g = status(forHTTPStatus: http)
        let text: String
        switch http {
        case 400: text = "bad request"
        case 401: text = "unauthenticated"
        case 403: text = "forbidden"
        case 404: text = "not found"
        case 408: text = "request timeout"
        case 413: text = "request body too large"
        case 429: text = "too many requests"
        case 431: text = "request headers too large"
        case 502: text = "bad gateway"
        case 503: text = "service unavailable"
        case 504: text = "gateway timeout"
        default: text = "error \(http)"
        }
        return (g, "sluice: \(text)")
    }

    /// The fields of a Trailers-Only response (sent with `:status 200` and END_STREAM).
    public static func trailersOnlyHeaders(status http: Int) -> H2Headers {
        let e = trailersOnlyError(status: http)
        return H2Headers([("content-type", "application/grpc"), ("grpc-status", String(e.grpcStatus)),
                          ("grpc-message", e.message)])
    }

    /// A length-prefixed gRPC message holding `HealthCheckRequest{service}`.
    public static func healthCheckRequest(service: String) -> [UInt8] {
        var msg: [UInt8] = []
        let s = Array(service.utf8)
        if !s.isEmpty {
            msg.append(0x0A)  // field 1, wire type 2
            appendVarint(UInt64(truncatingIfNeeded: s.count), to: &msg)
            msg += s
        }
        let n = UInt32(truncatingIfNeeded: msg.count)
        return [0, UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16),
                UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + msg
    }

    /// The status of a length-prefixed `HealthCheckResponse`; nil for a compressed, truncated
    /// or malformed message. An unknown enum value reads as `.unknown` (proto3 open enums).
    public static func parseHealthCheckResponse<C: Collection>(_ bytes: C) -> ServingStatus? where C.Element == UInt8 {
        let b = Array(bytes)
        guard b.count >= 5, b[0] == 0 else { return nil }
        let len = Int(truncatingIfNeeded: UInt32(truncatingIfNeeded: b[1]) << 24 | UInt32(truncatingIfNeeded: b[2]) << 16
            | UInt32(truncatingIfNeeded: b[3]) << 8 | UInt32(truncatingIfNeeded: b[4]))
        guard len <= b.count &- 5 else { return nil }
        var i = 5
        let end = 5 &+ len
        var status: UInt64 = 0
        while i < end {
            guard let key = readVarint(b, &i, end) else { return nil }
            let field = key >> 3
            switch key & 7 {
            case 0:
                guard let v = readVarint(b, &i, end) else { return nil }
                if field == 1 { status = v }
            case 1:
                guard end &- i >= 8 else { return nil }
                i &+= 8
            case 2:
                guard let l = readVarint(b, &i, end), l <= UInt64(truncatingIfNeeded: end &- i) else { return nil }
                i &+= Int(truncatingIfNeeded: l)
            case 5:
                guard end &- i >= 4 else { return nil }
                i &+= 4
            default:
                return nil
            }
            if field == 0 { return nil }
        }
        guard status <= 3 else { return .unknown }
        return ServingStatus(rawValue: Int(truncatingIfNeeded: status))
    }

    static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: v))
    }

    static func readVarint(_ b: [UInt8], _ i: inout Int, _ end: Int) -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while i < end {
            let byte = b[i]
            i &+= 1
            if shift >= 64 { return nil }
            v |= UInt64(truncatingIfNeeded: byte & 0x7F) << shift
            if byte & 0x80 == 0 { return v }
            shift &+= 7
        }
        return nil
    }
}
