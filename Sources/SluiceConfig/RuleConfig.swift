/// `listeners[i].rules[j]` of an http listener: when all its conditions hold, its action runs.
public struct RuleConfig: Sendable, Equatable {
    /// 1...50000, unique within the listener; lower runs first.
    public var priority: Int
    public var conditions: RuleConditions
    public var action: ListenerAction

    public static let priorities = 1...50_000

    public init(priority: Int, conditions: RuleConditions, action: ListenerAction) {
        self.priority = priority
        self.conditions = conditions
        self.action = action
    }
}

/// `when:` of a rule (SPEC §3). Every non-empty list is a condition; all conditions must hold
/// (AND) and one value of a condition suffices (OR). At least one condition is set.
///
/// Patterns may use `*` (any run of characters, also none) and `?` (exactly one character).
public struct RuleConditions: Sendable, Equatable {
    /// Host patterns, lowercased (matched case-insensitively, without the port).
    public var host: [String]
    /// Path patterns, as written (matched case-sensitively, without the query).
    public var path: [String]
    /// Methods, as written (matched exactly).
    public var method: [String]
    /// Header conditions in file order; all must hold.
    public var header: [HeaderCondition]
    /// Query conditions in file order; all must hold.
    public var query: [QueryCondition]
    /// Client address ranges.
    public var source: [CIDR]

    public init(host: [String] = [], path: [String] = [], method: [String] = [], header: [HeaderCondition] = [],
                query: [QueryCondition] = [], source: [CIDR] = []) {
        self.host = host
        self.path = path
        self.method = method
        self.header = header
        self.query = query
        self.source = source
    }

    /// Whether no condition is set (which validation refuses for a rule).
    public var isEmpty: Bool {
        host.isEmpty && path.isEmpty && method.isEmpty && header.isEmpty && query.isEmpty && source.isEmpty
    }
}

/// `header: { NAME: [VALUE, ...] }`: some occurrence of header `name` matches one of `values`
/// (patterns, case-insensitive).
public struct HeaderCondition: Sendable, Equatable {
    /// Header name in lowercase.
    public var name: String
    public var values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

/// `query: { KEY: [VALUE, ...] }`: some `key=value` pair of the query string, percent-decoded
/// (`+` as a space), has this key and a value matching one of `values`. Keys compare without
/// wildcards; values are patterns, so `"*"` matches any value of a present key. Both compare
/// case-insensitively, as in AWS ALB.
public struct QueryCondition: Sendable, Equatable {
    public var key: String
    public var values: [String]

    public init(key: String, values: [String]) {
        self.key = key
        self.values = values
    }
}

/// An address range such as `10.0.0.0/8` or `::1/128`. Bits past the prefix are zero (the
/// loader clears them: `10.1.2.3/8` reads as `10.0.0.0/8`).
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public var family: SocketAddressSpec.Family
    /// Network-order address bytes: 4 for `.inet`, 16 for `.inet6`.
    public var address: [UInt8]
    /// 0...32 for `.inet`, 0...128 for `.inet6`.
    public var prefixLength: Int

    public init(family: SocketAddressSpec.Family, address: [UInt8], prefixLength: Int) {
        precondition(address.count == (family == .inet ? 4 : 16), "CIDR address has the wrong length")
        precondition(prefixLength >= 0 && prefixLength <= address.count * 8, "CIDR prefix out of range")
        self.family = family
        self.address = address
        self.prefixLength = prefixLength
    }

    /// `10.0.0.0/8` or `2001:db8::/32`.
    public var description: String {
        if family == .inet {
            return address.map(String.init).joined(separator: ".") + "/\(prefixLength)"
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(address[index]) << 8 | UInt16(address[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(prefixLength)"
    }
}

/// `redirect:` (SPEC §3). Each part is a template that may use `#{protocol}`, `#{host}`,
/// `#{port}`, `#{path}` (without its leading `/`) and `#{query}`; `nil` keeps the request's
/// value. The loader stores a part written as its own identity (`host: "#{host}"`,
/// `path: "/#{path}"`, ...) as `nil`, and refuses a redirect where every part is `nil`.
public struct RedirectAction: Sendable, Equatable {
    /// 301 or 302.
    public var status: Int
    /// The `protocol` key: `http`, `https` (lowercased) or `nil` (keep).
    public var scheme: String?
    public var host: String?
    /// A port number in decimal, or a template such as `#{port}`.
    public var port: String?
    /// Starts with `/`.
    public var path: String?
    /// Without a leading `?`; empty drops the query.
    public var query: String?

    public static let statuses = [301, 302]

    public init(status: Int, scheme: String? = nil, host: String? = nil, port: String? = nil, path: String? = nil,
                query: String? = nil) {
        self.status = status
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.query = query
    }
}

/// `respond:` (SPEC §3): a fixed answer.
public struct FixedResponse: Sendable, Equatable {
    /// 200...299 or 400...599.
    public var status: Int
    public var contentType: String
    /// At most `maxBodyBytes` bytes.
    public var body: [UInt8]

    public static let defaultContentType = "text/plain"
    public static let maxBodyBytes = 1024

    public init(status: Int, contentType: String = FixedResponse.defaultContentType, body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}
