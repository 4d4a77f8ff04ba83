import Foundation

/// The values a fleet keeps in etcd (SPEC §10) and their keys: pure encoding and total
/// decoding (a value from etcd is input: anything malformed is a `problem`, never a trap).
public enum FleetRecords {
    /// `{prefix}/targets/{group}/{address}` = `{"zone", "weight"}` (+ `"draining": true, "since"`).
    public struct TargetRecord: Sendable, Equatable {
        public var zone: String
        public var weight: Int
        public var draining: Bool
        /// RFC 3339, while draining.
        public var since: String?

        public init(zone: String, weight: Int, draining: Bool = false, since: String? = nil) {
            self.zone = zone
            self.weight = weight
            self.draining = draining
            self.since = since
        }
    }

    /// `{prefix}/nodes/{name}` = `{"zone", "version", "plan_generation", "started"}`.
    public struct NodeRecord: Sendable, Equatable {
        public var name: String
        public var zone: String
        public var version: String
        public var planGeneration: UInt64
        public var started: String

        public init(name: String, zone: String, version: String, planGeneration: UInt64, started: String) {
            self.name = name
            self.zone = zone
            self.version = version
            self.planGeneration = planGeneration
            self.started = started
        }
    }

    public static func encode(_ t: TargetRecord) -> [UInt8] {
        var object: [String: Any] = ["zone": t.zone, "weight": t.weight]
        if t.draining {
            object["draining"] = true
            object["since"] = t.since ?? ""
        }
        return json(object)
    }

    public static func encode(_ n: NodeRecord) -> [UInt8] {
        json(["zone": n.zone, "version": n.version, "plan_generation": n.planGeneration, "started": n.started])
    }

    private static func json(_ object: [String: Any]) -> [UInt8] {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { Array($0) } ?? Array("{}".utf8)
    }

    private static func object(_ bytes: [UInt8]) -> [String: Any]? {
        guard bytes.count <= 64 * 1024 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// A registration value, or why it is not one. Zone and weight are checked by the caller
    /// with the API's own rules.
    public static func decodeTarget(_ bytes: [UInt8]) -> Result<TargetRecord, Problem> {
        guard let o = object(bytes) else { return .failure(Problem("not a JSON object")) }
        guard let zone = o["zone"] as? String else { return .failure(Problem("\"zone\" must be a string")) }
        var weight = 1
        if let w = o["weight"] {
            guard let n = w as? NSNumber, let i = Int(exactly: n.doubleValue)
            else { return .failure(Problem("\"weight\" must be an integer")) }
            weight = i
        }
        var draining = false
        if let d = o["draining"] {
            guard let b = d as? Bool else { return .failure(Problem("\"draining\" must be true or false")) }
            draining = b
        }
        let since = o["since"] as? String
        return .success(TargetRecord(zone: zone, weight: weight, draining: draining, since: since))
    }

    public static func decodeNode(name: String, _ bytes: [UInt8]) -> NodeRecord? {
        guard let o = object(bytes) else { return nil }
        let generation = (o["plan_generation"] as? NSNumber).flatMap { UInt64(exactly: $0.doubleValue) } ?? 0
        return NodeRecord(name: name, zone: o["zone"] as? String ?? "", version: o["version"] as? String ?? "",
                          planGeneration: generation, started: o["started"] as? String ?? "")
    }

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// Keys under a prefix.
    public struct Keys: Sendable {
        public let prefix: String
        public init(prefix: String) { self.prefix = prefix }
        public var targets: String { prefix + "/targets/" }
        public var nodes: String { prefix + "/nodes/" }
        public var drained: String { prefix + "/drained/" }
        public func target(group: String, address: String) -> String { targets + group + "/" + address }
        public func node(_ name: String) -> String { nodes + name }
        public func acks(group: String, address: String) -> String { drained + group + "/" + address + "/" }
        public func ack(group: String, address: String, node: String) -> String { acks(group: group, address: address) + node }
        public var leaderScaling: String { prefix + "/leader/scaling" }

        /// (group, address) of a key under `targets`, nil if it has no group or address.
        public func targetName(_ key: String) -> (group: String, address: String)? {
            guard key.hasPrefix(targets) else { return nil }
            let rest = key.dropFirst(targets.count)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            let group = String(rest[..<slash])
            let address = String(rest[rest.index(after: slash)...])
            guard !group.isEmpty, !address.isEmpty else { return nil }
            return (group, address)
        }

        /// The node name of a key under `nodes`.
        public func nodeName(_ key: String) -> String? {
            guard key.hasPrefix(nodes), key.count > nodes.count else { return nil }
            return String(key.dropFirst(nodes.count))
        }
    }

    /// RFC 3339 (UTC, whole seconds) of a wall-clock time.
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    /// Seconds since the epoch of an RFC 3339 time, nil if it is not one.
    public static func seconds(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)?.timeIntervalSince1970
    }
}
