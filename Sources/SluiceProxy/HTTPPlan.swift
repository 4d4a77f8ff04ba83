import SluiceConfig
import SluiceCore
import SluiceHTTP

/// A listener action compiled for the data path.
enum CompiledAction: Sendable {
    case forward([WeightedGroup])
    /// A fixed response, prebuilt: [keep-alive variant, close variant].
    case respond([[UInt8]])
    case redirect(RedirectTemplate)
}

/// A redirect with its parts as templates over `#{protocol}`, `#{host}`, `#{port}`, `#{path}`
/// (without its leading `/`) and `#{query}`; parts left out keep the request's value.
struct RedirectTemplate: Sendable {
    var status: Int
    var scheme: String
    var host: String
    var port: String
    var path: String
    var query: String

    init(_ r: RedirectAction) {
        status = r.status
        scheme = r.scheme ?? "#{protocol}"
        host = r.host ?? "#{host}"
        port = r.port ?? "#{port}"
        path = r.path ?? "/#{path}"
        query = r.query ?? "#{query}"
    }

    /// The response for one request (built per redirect: a cold path).
    func response(for source: UnsafeRawBufferPointer, head: HTTPRequestHead, listenerPort: UInt16, close: Bool) -> [UInt8] {
        func text(_ r: ByteRange) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: source[Int(r.start)..<r.end]), as: UTF8.self)
        }
        var hostValue = head.host.map(text) ?? ""
        if let colon = hostValue.lastIndex(of: ":"), !hostValue.hasSuffix("]") { hostValue = String(hostValue[..<colon]) }
        var pathValue = text(head.path)
        if pathValue.hasPrefix("/") { pathValue.removeFirst() }
        let values = ["#{protocol}": "http", "#{host}": hostValue, "#{port}": String(listenerPort),
                      "#{path}": pathValue, "#{query}": text(head.query)]
        func fill(_ t: String) -> String {
            var s = t
            for (k, v) in values { s = s.replacingOccurrences(of: k, with: v) }
            return s
        }
        let scheme = fill(scheme)
        let port = fill(port)
        let defaultPort = scheme == "https" ? "443" : "80"
        var location = scheme + "://" + fill(host)
        if port != defaultPort && !port.isEmpty { location += ":" + port }
        let p = fill(path)
        location += p.hasPrefix("/") ? p : "/" + p
        let q = fill(query)
        if !q.isEmpty { location += "?" + q }
        var head = "HTTP/1.1 \(status) \(HTTPStatusText.reason(status))\r\nlocation: \(location)\r\ncontent-length: 0\r\n"
        if close { head += "connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    fileprivate func range(of target: String) -> Range<Substring.Index>? {
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
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

    /// A fixed response's bytes; `close` adds `connection: close`.
    static func fixedResponse(_ r: FixedResponse, close: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(r.status) \(reason(r.status))\r\ncontent-type: \(r.contentType)\r\ncontent-length: \(r.body.count)\r\n"
        if close { head += "connection: close\r\n" }
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
            return .respond([HTTPStatusText.fixedResponse(r, close: false), HTTPStatusText.fixedResponse(r, close: true)])
        case .redirect(let r): return .redirect(RedirectTemplate(r))
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
