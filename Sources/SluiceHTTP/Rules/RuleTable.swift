/// The routing rules of one http listener, compiled off-loop into flat arrays (STYLE 9) and
/// matched per request without allocating (SPEC §3).
///
/// Conditions of a rule hold together (AND); the values of one condition are alternatives
/// (OR). Patterns use `*` (any run, also empty) and `?` (one character):
/// - host: case-insensitive; the caller strips the port;
/// - path: case-sensitive, without the query, not percent-decoded;
/// - method: exact;
/// - header: name case-insensitive, value pattern case-insensitive; any occurrence of the
///   header may match, and each header condition must be met;
/// - query: `key=value` pairs split on `&`, both percent-decoded (`+` is a space) and compared
///   case-insensitively; the key literally, the value as a pattern (so `*` matches any value of
///   a present key, even an empty one);
/// - source: the client address is in one of the ranges (an IPv4-mapped IPv6 address also
///   counts as its IPv4 address).
///
/// Immutable after `init`, so one table is shared by every worker.
public final class RuleTable: Sendable {
    /// One rule as the caller gives it. Empty lists are conditions not set.
    public struct Rule {
        public var hosts: [String]
        public var paths: [String]
        public var methods: [String]
        public var headers: [(name: String, values: [String])]
        public var queries: [(key: String, values: [String])]
        public var sources: [(family: UInt8, bytes: [UInt8], prefix: Int)]
        /// The caller's action index, returned by `match` when this rule is the first to match.
        public var action: Int

        public init(
            hosts: [String] = [], paths: [String] = [], methods: [String] = [],
            headers: [(name: String, values: [String])] = [], queries: [(key: String, values: [String])] = [],
            sources: [(family: UInt8, bytes: [UInt8], prefix: Int)] = [], action: Int
        ) {
            self.hosts = hosts
            self.paths = paths
            self.methods = methods
            self.headers = headers
            self.queries = queries
            self.sources = sources
            self.action = action
        }
    }

    /// A run of entries in one of the flat arrays: `[start, end)`.
    struct Span: Sendable {
        var start: Int32
        var end: Int32
        init(_ start: Int, _ end: Int) {
            self.start = Int32(start)
            self.end = Int32(end)
        }
        var isEmpty: Bool { @inline(__always) get { start == end } }
    }

    /// A header or query condition: its name/key (exact, lowercase, in the arena) and its value
    /// patterns.
    struct NamedCondition: Sendable {
        var nameStart: Int32
        var nameCount: Int32
        var values: Span
    }

    struct CompiledRule: Sendable {
        var hosts: Span
        var paths: Span
        var methods: Span
        var headers: Span
        var queries: Span
        var sources: Span
        var action: Int
    }

    private let rules: [CompiledRule]
    private let patterns: [WildcardPattern]
    private let named: [NamedCondition]
    private let ranges: [SourceRange]
    /// Bytes of every pattern and name.
    private let arena: [UInt8]
    private let defaultAction: Int

    /// Compiles `rules`, which are already in priority order (first match wins).
    public init(rules: [Rule], defaultAction: Int) {
        var compiled: [CompiledRule] = []
        var patterns: [WildcardPattern] = []
        var named: [NamedCondition] = []
        var ranges: [SourceRange] = []
        var arena: [UInt8] = []
        compiled.reserveCapacity(rules.count)

        func add(_ values: [String], foldCase: Bool) -> Span {
            let start = patterns.count
            for value in values { patterns.append(WildcardPattern(value, foldCase: foldCase, arena: &arena)) }
            return Span(start, patterns.count)
        }
        func addNamed(_ conditions: [(String, [String])]) -> Span {
            let start = named.count
            for (name, values) in conditions {
                let nameStart = arena.count
                arena.append(contentsOf: name.utf8.map(ASCII.lower))
                let nameCount = arena.count - nameStart
                let span = add(values, foldCase: true)
                named.append(NamedCondition(nameStart: Int32(nameStart), nameCount: Int32(nameCount), values: span))
            }
            return Span(start, named.count)
        }
        for rule in rules {
            let hosts = add(rule.hosts, foldCase: true)
            let paths = add(rule.paths, foldCase: false)
            let methods = add(rule.methods, foldCase: false)
            let headers = addNamed(rule.headers.map { ($0.name, $0.values) })
            let queries = addNamed(rule.queries.map { ($0.key, $0.values) })
            let sourceStart = ranges.count
            for source in rule.sources {
                ranges.append(SourceRange(family: source.family, bytes: source.bytes, prefix: source.prefix))
            }
            compiled.append(CompiledRule(hosts: hosts, paths: paths, methods: methods, headers: headers,
                                         queries: queries, sources: Span(sourceStart, ranges.count),
                                         action: rule.action))
        }
        self.rules = compiled
        self.patterns = patterns
        self.named = named
        self.ranges = ranges
        self.arena = arena
        self.defaultAction = defaultAction
    }

    /// Number of rules.
    public var count: Int { rules.count }

    /// The action index of the first rule whose conditions all hold, else the default action.
    /// Allocates nothing; query strings are decoded on the fly.
    public func match(_ request: RequestFacts) -> Int {
        var family = request.sourceFamily
        var address = request.sourceAddress
        // ::ffff:a.b.c.d (a dual-stack socket's IPv4 client) also matches IPv4 ranges.
        if family == 6, address.0 == 0, address.1 >> 32 == 0xFFFF {
            family = 4
            address = (address.1 << 32, 0)
        }
        return arena.withUnsafeBufferPointer { arena in
            for rule in rules where matches(rule, request, family, address, arena) {
                return rule.action
            }
            return defaultAction
        }
    }

    @inline(__always)
    private func matches(
        _ rule: CompiledRule, _ request: RequestFacts, _ family: UInt8, _ address: (UInt64, UInt64),
        _ arena: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        // Cheapest conditions first.
        if !rule.methods.isEmpty, !any(rule.methods, request.method, foldCase: false, arena) { return false }
        if !rule.sources.isEmpty, !inRange(rule.sources, family, address) { return false }
        if !rule.hosts.isEmpty, !any(rule.hosts, request.host, foldCase: true, arena) { return false }
        if !rule.paths.isEmpty, !any(rule.paths, request.path, foldCase: false, arena) { return false }
        if !rule.headers.isEmpty {
            for c in Int(rule.headers.start)..<Int(rule.headers.end) where !header(named[c], request, arena) {
                return false
            }
        }
        if !rule.queries.isEmpty {
            for c in Int(rule.queries.start)..<Int(rule.queries.end) where !query(named[c], request.query, arena) {
                return false
            }
        }
        return true
    }

    @inline(__always)
    private func any(
        _ span: Span, _ input: UnsafeRawBufferPointer, foldCase: Bool, _ arena: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        for p in Int(span.start)..<Int(span.end) where patterns[p].matches(input, foldCase: foldCase, arena: arena) {
            return true
        }
        return false
    }

    @inline(__always)
    private func inRange(_ span: Span, _ family: UInt8, _ address: (UInt64, UInt64)) -> Bool {
        for r in Int(span.start)..<Int(span.end) where ranges[r].contains(family: family, address) {
            return true
        }
        return false
    }

    /// Some occurrence of the header has a value matching one of the patterns.
    private func header(
        _ condition: NamedCondition, _ request: RequestFacts, _ arena: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        let name = UnsafeBufferPointer(
            rebasing: arena[Int(condition.nameStart)..<Int(condition.nameStart) + Int(condition.nameCount)])
        for field in request.headers
        where field.name.count == name.count && ASCII.equal(field.name, 0, name, foldCase: true) {
            let value = Self.trimmed(field.value)
            if any(condition.values, value, foldCase: true, arena) { return true }
        }
        return false
    }

    /// Some `key=value` pair of `query` has the key and a value matching one of the patterns.
    private func query(
        _ condition: NamedCondition, _ query: UnsafeRawBufferPointer, _ arena: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        let key = UnsafeBufferPointer(
            rebasing: arena[Int(condition.nameStart)..<Int(condition.nameStart) + Int(condition.nameCount)])
        var start = 0
        while start <= query.count {
            var end = start
            while end < query.count, query[end] != UInt8(ascii: "&") { end += 1 }
            if end > start {
                var equals = start
                while equals < end, query[equals] != UInt8(ascii: "=") { equals += 1 }
                let pairKey = UnsafeRawBufferPointer(rebasing: query[start..<equals])
                if ASCII.decodedEqual(pairKey, key) {
                    let value = UnsafeRawBufferPointer(rebasing: query[min(equals + 1, end)..<end])
                    for p in Int(condition.values.start)..<Int(condition.values.end)
                    where patterns[p].matchesDecoded(value, arena: arena) {
                        return true
                    }
                }
            }
            start = end + 1
        }
        return false
    }

    /// `value` without leading and trailing spaces and tabs.
    @inline(__always)
    private static func trimmed(_ value: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var lower = 0
        var upper = value.count
        while lower < upper, value[lower] == 0x20 || value[lower] == 0x09 { lower += 1 }
        while upper > lower, value[upper - 1] == 0x20 || value[upper - 1] == 0x09 { upper -= 1 }
        return UnsafeRawBufferPointer(rebasing: value[lower..<upper])
    }
}
