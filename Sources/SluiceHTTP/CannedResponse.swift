/// Sluice's own short responses (SPEC §3 "Errors made by Sluice"): status line, `content-type:
/// text/plain`, `content-length`, the connection header, and a one-line body.
/// Built once (static lets); `bytes` returns a shared array, so answering allocates nothing.
public enum CannedResponse {
    /// The statuses Sluice answers by itself.
    public static let statuses = [400, 403, 404, 408, 413, 414, 431, 500, 501, 502, 503, 504]

    private static func build(_ status: Int, connection: ConnectionHeader) -> [UInt8] {
        let reason: String
        switch status {
        case 400: reason = "Bad Request"
        case 403: reason = "Forbidden"
        case 404: reason = "Not Found"
        case 408: reason = "Request Timeout"
        case 413: reason = "Content Too Large"
        case 414: reason = "URI Too Long"
        case 431: reason = "Request Header Fields Too Large"
        case 500: reason = "Internal Server Error"
        case 501: reason = "Not Implemented"
        case 502: reason = "Bad Gateway"
        case 503: reason = "Service Unavailable"
        case 504: reason = "Gateway Timeout"
        default: reason = "Error"
        }
        let body = reason.lowercased() + "\n"
        var head = "HTTP/1.1 \(status) \(reason)\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\n"
        switch connection {
        case .none: break
        case .close: head += "connection: close\r\n"
        case .keepAlive: head += "connection: keep-alive\r\n"
        }
        head += "\r\n"
        return Array((head + body).utf8)
    }

    /// By `ConnectionHeader.rawValue`, then by index in `statuses`.
    private static let variants: [[[UInt8]]] = [ConnectionHeader.none, .close, .keepAlive].map { c in
        statuses.map { build($0, connection: c) }
    }
    private static let fallback: [[UInt8]] = [ConnectionHeader.none, .close, .keepAlive].map { build(500, connection: $0) }

    /// The response for `status` (one of `statuses`; any other status gets the 500 response).
    public static func bytes(status: Int, connection: ConnectionHeader) -> [UInt8] {
        guard let i = statuses.firstIndex(of: status) else { return fallback[Int(connection.rawValue)] }
        return variants[Int(connection.rawValue)][i]
    }

    /// 503 for a request that waited in a surge queue until its timeout (SPEC §12): it says
    /// `Retry-After: 1` and closes the connection.
    public static let retryLater: [UInt8] = Array(
        ("HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\n"
            + "Retry-After: 1\r\nconnection: close\r\n\r\nservice unavailable\n").utf8)

    /// The response for `status`, with `connection: close` when `close`.
    public static func bytes(status: Int, close: Bool) -> [UInt8] {
        bytes(status: status, connection: close ? .close : .none)
    }
}
