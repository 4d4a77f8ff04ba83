/// `events:` — event rules and their delivery (SPEC §13). Absent: no rules, nothing is delivered.
public struct EventsConfig: Sendable, Equatable {
    public var rules: [EventRuleConfig]
    public var retry: EventRetryConfig

    public init(rules: [EventRuleConfig] = [], retry: EventRetryConfig = EventRetryConfig()) {
        self.rules = rules
        self.retry = retry
    }
}

/// The event fields a rule's `match` may name.
public enum EventField: String, Sendable, Equatable, Hashable, CaseIterable {
    case type, group, target, state, reason, cause, result, activity, message
}

/// The `type` values SPEC §13 defines (the kinds a `match.type` may name).
public enum EventKinds {
    public static let all = [
        "target_state", "registration", "deregistration", "drained", "reload", "fail_open", "fail_open_ended",
        "scaling_activity", "registry_connected", "registry_lost",
    ]
}

/// One `events.rules[]` entry.
public struct EventRuleConfig: Sendable, Equatable {
    /// Unique; becomes the outbox file name and the `rule` metric label.
    public var name: String
    /// Field → accepted values: OR within a field, AND across fields; empty matches every event.
    public var match: [EventField: [String]]
    public var deliver: EventDelivery

    public init(name: String, match: [EventField: [String]] = [:], deliver: EventDelivery) {
        self.name = name
        self.match = match
        self.deliver = deliver
    }

    /// Rule names: `[A-Za-z0-9_.-]{1,64}`, and not `.` or `..` (they name files).
    public static func nameProblem(_ name: String) -> String? {
        let ok = !name.isEmpty && name.utf8.count <= 64 && name != "." && name != ".."
            && name.utf8.allSatisfy { b in
                (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F
                    || b == 0x2E || b == 0x2D
            }
        return ok ? nil : "expected a rule name of 1 to 64 letters, digits, _ . and - (not . or ..)"
    }
}

/// Where a rule's events go.
public enum EventDelivery: Sendable, Equatable {
    /// `POST` to `url` (`http://HOST:PORT/path`); `secret` signs the body (HMAC-SHA256) when set.
    case webhook(WebhookTarget, secret: [UInt8]?)
    /// Runs the program at this absolute path with the event on stdin.
    case exec(String)
}

/// A parsed `http://HOST:PORT/path` or `https://HOST:PORT/path` webhook URL. The host is an IP
/// literal or `localhost` (the delivery thread does not resolve names: a lookup could block it for long).
public struct WebhookTarget: Sendable, Equatable {
    public var url: String
    /// `127.0.0.1`, `::1` (no brackets).
    public var host: String
    public var port: Int
    /// Starts with `/`; includes any query.
    public var path: String
    /// The `Host` header value: the URL's authority as written.
    public var authority: String
    /// `https://`: TLS, the certificate verified against `caFile` (the system's CAs when nil) and
    /// the host as written (`localhost` or the IP address).
    public var tls: Bool
    public var caFile: String?
    /// The name the certificate must carry: the URL's host as written.
    public var serverName: String

    public init(url: String, host: String, port: Int, path: String, authority: String, tls: Bool = false,
                caFile: String? = nil, serverName: String? = nil) {
        self.url = url
        self.host = host
        self.port = port
        self.path = path
        self.authority = authority
        self.tls = tls
        self.caFile = caFile
        self.serverName = serverName ?? host
    }

    /// The target of `url`, or why it is not one.
    public static func parse(_ url: String) -> Result<WebhookTarget, WebhookURLProblem> {
        let tls = url.hasPrefix("https://")
        guard tls || url.hasPrefix("http://") else { return .failure(.syntax) }
        let rest = url.dropFirst(tls ? 8 : 7)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var path = String(rest.dropFirst(authority.count))
        if path.contains("#") { path = String(path.prefix { $0 != "#" }) }
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        guard !authority.isEmpty, !authority.contains("@"),
              !path.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F }),
              let spec = AddressParser.parse(String(authority)), spec.port > 0
        else { return .failure(.syntax) }
        let hostText = authority.hasPrefix("[") ? authority.dropFirst().prefix { $0 != "]" } : authority.prefix { $0 != ":" }
        guard hostText == "localhost" || hostText == Substring(spec.host) else { return .failure(.hostName) }
        return .success(WebhookTarget(url: url, host: hostText == "localhost" ? "127.0.0.1" : spec.host,
                                      port: Int(spec.port), path: path, authority: String(authority), tls: tls,
                                      serverName: String(hostText)))
    }
}

/// Why a webhook URL was refused.
public enum WebhookURLProblem: Error, Sendable, Equatable, CustomStringConvertible {
    case syntax, hostName

    public var description: String {
        switch self {
        case .syntax: "expected a webhook URL like http://127.0.0.1:9099/hooks/sluice or https://…"
        case .hostName: "a webhook's host must be an IP address or localhost (names are not resolved)"
        }
    }
}

/// `events.retry`: attempts in all and the back-off between them (`backoff × 2^(n-1)`, capped).
public struct EventRetryConfig: Sendable, Equatable {
    public var attempts: Int
    /// Nanoseconds.
    public var backoff: UInt64
    /// Nanoseconds.
    public var maxBackoff: UInt64

    public static let defaultAttempts = 10
    public static let defaultBackoff: UInt64 = Nanoseconds.second
    public static let defaultMaxBackoff: UInt64 = 5 * 60 * Nanoseconds.second
    public static let attemptsRange = 1...1000
    public static let backoffRange: ClosedRange<UInt64> = 10 * Nanoseconds.millisecond...3600 * Nanoseconds.second
    public static let maxBackoffLimit: UInt64 = 24 * 3600 * Nanoseconds.second

    public init(attempts: Int = EventRetryConfig.defaultAttempts, backoff: UInt64 = EventRetryConfig.defaultBackoff,
                maxBackoff: UInt64 = EventRetryConfig.defaultMaxBackoff) {
        self.attempts = attempts
        self.backoff = backoff
        self.maxBackoff = maxBackoff
    }

    /// The wait before attempt `attempt + 1` after `attempt` failed ones (1-based): `backoff × 2^(attempt-1)`,
    /// at most `maxBackoff`. Saturates instead of overflowing.
    public func delay(afterFailedAttempt attempt: Int) -> UInt64 {
        let shift = max(0, min(attempt - 1, 62))
        let (scaled, overflow) = backoff.multipliedReportingOverflow(by: UInt64(1) << UInt64(shift))
        return overflow ? maxBackoff : min(scaled, maxBackoff)
    }
}
