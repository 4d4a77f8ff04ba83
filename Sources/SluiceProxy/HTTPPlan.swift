import SluiceConfig
import SluiceCore
import SluiceHTTP

/// A listener action compiled for the data path.
enum CompiledAction: Sendable {
    case forward([WeightedGroup])
    /// A fixed response, prebuilt, one variant per `ConnectionHeader` (by raw value).
    case respond([[UInt8]])
    case redirect(RedirectTemplate)
}

/// Reason phrases for the statuses Sluice writes itself.
enum HTTPStatusText {
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 410: return "Gone"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error"
        }
    }

    /// A fixed response's bytes with the given connection header.
    static func fixedResponse(_ r: FixedResponse, connection: ConnectionHeader) -> [UInt8] {
        var head = "HTTP/1.1 \(r.status) \(reason(r.status))\r\ncontent-type: \(r.contentType)\r\ncontent-length: \(r.body.count)\r\n"
        switch connection {
        case .none: break
        case .close: head += "connection: close\r\n"
        case .keepAlive: head += "connection: keep-alive\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + r.body
    }
}

extension Plan {
    /// Compiles one listener action.
    static func compile(_ a: ListenerAction) -> CompiledAction {
        switch a {
        case .forward(let groups): return .forward(groups)
        case .respond(let r):
            return .respond([ConnectionHeader.none, .close, .keepAlive].map { HTTPStatusText.fixedResponse(r, connection: $0) })
        case .redirect(let r):
            return .redirect(RedirectTemplate(status: r.status, scheme: r.scheme, host: r.host, port: r.port, path: r.path,
                                              query: r.query))
        }
    }

    /// The rule table of an http listener: rules in priority order, actions indexed
    /// `0..<rules.count`, the default action last.
    static func compileRules(_ l: ListenerConfig) -> (RuleTable?, [CompiledAction], Int) {
        var actions = l.rules.map { compile($0.action) }
        actions.append(compile(l.defaultAction))
        let defaultIndex = actions.count - 1
        guard !l.rules.isEmpty else { return (nil, actions, defaultIndex) }
        let rules = l.rules.enumerated().map { i, r in
            RuleTable.Rule(hosts: r.conditions.host, paths: r.conditions.path, methods: r.conditions.method,
                           headers: r.conditions.header.map { (name: $0.name, values: $0.values) },
                           queries: r.conditions.query.map { (key: $0.key, values: $0.values) },
                           sources: r.conditions.source.map { (family: $0.family == .inet ? UInt8(4) : UInt8(6),
                                                               bytes: $0.address, prefix: $0.prefixLength) },
                           action: i)
        }
        return (RuleTable(rules: rules, defaultAction: defaultIndex), actions, defaultIndex)
    }
}
