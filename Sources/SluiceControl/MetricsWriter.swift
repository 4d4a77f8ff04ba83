/// Builds a Prometheus text exposition (format 0.0.4). `# HELP` and `# TYPE` are written once per metric
/// name, on its first sample; write all samples of one metric together, as the format requires.
public struct MetricsWriter: Sendable {
    public private(set) var text = ""
    private var described: Set<String> = []

    public init() {}

    public mutating func counter(_ name: String, help: String, labels: [(String, String)] = [], value: UInt64) {
        describe(name, help: help, type: "counter")
        sample(name, labels, String(value))
    }

    public mutating func gauge(_ name: String, help: String, labels: [(String, String)] = [], value: Double) {
        describe(name, help: help, type: "gauge")
        sample(name, labels, Self.format(value))
    }

    public mutating func gauge(_ name: String, help: String, labels: [(String, String)] = [], value: Int) {
        describe(name, help: help, type: "gauge")
        sample(name, labels, String(value))
    }

    /// `buckets` hold cumulative counts per upper bound, ascending; a `+Inf` bucket equal to `count` is
    /// added unless the last bucket is already `+Inf`.
    public mutating func histogram(
        _ name: String, help: String, labels: [(String, String)] = [], buckets: [(le: Double, count: UInt64)],
        sum: Double, count: UInt64
    ) {
        describe(name, help: help, type: "histogram")
        for bucket in buckets {
            sample(name + "_bucket", labels + [("le", Self.format(bucket.le))], String(bucket.count))
        }
        if buckets.last?.le != .infinity {
            sample(name + "_bucket", labels + [("le", "+Inf")], String(count))
        }
        sample(name + "_sum", labels, Self.format(sum))
        sample(name + "_count", labels, String(count))
    }

    private mutating func describe(_ name: String, help: String, type: String) {
        guard described.insert(name).inserted else { return }
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type)\n"
    }

    private mutating func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            text += labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",")
            text += "}"
        }
        text += " " + value + "\n"
    }

    /// Label values: backslash, double quote and newline escaped.
    public static func escapeLabel(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for ch in value {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    /// HELP text: backslash and newline escaped.
    public static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// `+Inf`, `-Inf`, `NaN`, integers without `.0`, other values in Swift's shortest round-trip form.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
