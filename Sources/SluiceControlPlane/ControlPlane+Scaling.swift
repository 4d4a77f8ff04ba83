import SluiceCore

/// What the Scaler (SPEC §11) reads of the model, and its way to tell events.
extension ControlPlane {
    /// One target of a group as scaling sees it.
    public struct ScalingTarget: Sendable, Equatable {
        public var address: String
        public var zone: String
        /// As the API shows it (`unhealthy` includes passive ejection).
        public var state: String
        public var isStatic: Bool
        public var draining: Bool
        public var registeredAt: String?
        /// Requests (http) or connections (tcp) ever sent to it, and those in flight now.
        public var sent: UInt64
        public var inFlight: Int

        public init(address: String, zone: String, state: String, isStatic: Bool = false, draining: Bool = false,
                    registeredAt: String? = nil, sent: UInt64 = 0, inFlight: Int = 0) {
            self.address = address
            self.zone = zone
            self.state = state
            self.isStatic = isStatic
            self.draining = draining
            self.registeredAt = registeredAt
            self.sent = sent
            self.inFlight = inFlight
        }
    }

    /// The group's targets in registration order (static ones first, as the file lists
    /// them), nil for a group that does not exist.
    public func scalingTargets(group: String) -> [ScalingTarget]? {
        let now = clockNow()
        return state.withLock { s in
            guard let g = s.groups.first(where: { $0.config.name == group }) else { return nil }
            return g.targets.map { t in
                let v = ControlPlane.view(t, now: now)
                return ScalingTarget(address: t.address, zone: t.zone, state: v.state, isStatic: t.isStatic,
                                     draining: t.drainDeadline != nil, registeredAt: t.registeredAt,
                                     sent: t.runtime.sent.load(ordering: .relaxed),
                                     inFlight: t.runtime.inFlight.load(ordering: .relaxed))
            }
        }
    }

    /// Tells `event` as the control plane's own events are told (the event bus, the log).
    public func tell(_ event: Event) { emit(event) }
}
