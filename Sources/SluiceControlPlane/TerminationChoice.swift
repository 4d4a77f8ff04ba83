/// Which target a scale-in terminates (SPEC §11): an unhealthy one first, then one from the
/// zone with the most targets, then the earliest registered. Static targets (the file owns
/// them) and draining ones are never chosen.
public enum TerminationChoice {
    public struct Candidate: Sendable, Equatable {
        public var address: String
        public var zone: String
        public var unhealthy: Bool
        public var isStatic: Bool
        public var draining: Bool
        /// Registration order: lower is earlier.
        public var order: Int

        public init(address: String, zone: String, unhealthy: Bool = false, isStatic: Bool = false,
                    draining: Bool = false, order: Int) {
            self.address = address
            self.zone = zone
            self.unhealthy = unhealthy
            self.isStatic = isStatic
            self.draining = draining
            self.order = order
        }
    }

    /// The index in `targets` of the one to terminate, nil when none may be.
    public static func pick(_ targets: [Candidate]) -> Int? {
        var perZone: [String: Int] = [:]
        for t in targets where !t.draining { perZone[t.zone, default: 0] += 1 }
        var eligible = targets.indices.filter { !targets[$0].isStatic && !targets[$0].draining }
        if eligible.contains(where: { targets[$0].unhealthy }) {
            eligible = eligible.filter { targets[$0].unhealthy }
        }
        return eligible.min { a, b in
            let ta = targets[a], tb = targets[b]
            let ca = perZone[ta.zone] ?? 0, cb = perZone[tb.zone] ?? 0
            if ca != cb { return ca > cb }
            if ta.zone != tb.zone { return ta.zone < tb.zone }
            return ta.order < tb.order
        }
    }
}
