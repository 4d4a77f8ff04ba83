/// What the daemon provides to the control plane. The server calls these on its own threads (one per
/// connection), concurrently; they may block (`deregister(wait: true)` blocks until the target drained).
public protocol ControlBackend: Sendable {
    /// `GET /v1/status`.
    func status() -> StatusInfo
    /// `GET /v1/nodes`: the fleet's live nodes (this node alone when standalone).
    func nodes() -> [NodeInfo]
    /// `GET /v1/target-groups`: every group with its targets.
    func groups() -> [GroupInfo]
    /// `GET /v1/target-groups/{g}`; nil answers 404.
    func group(_ name: String) -> GroupInfo?
    /// `POST /v1/target-groups/{g}/targets`. Idempotent: `created` is false when the target was already
    /// registered (answered 200 instead of 201). Persist to the state file before returning.
    func register(group: String, _ request: RegisterRequest) throws(ControlError) -> (created: Bool, target: TargetInfo)
    /// `DELETE /v1/target-groups/{g}/targets/{address}`: starts draining. With `wait`, returns only once the
    /// target has drained, or throws (e.g. `.timeout`) after `timeout` nanoseconds (nil: the daemon's default).
    func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlError) -> TargetInfo
    /// `PATCH /v1/target-groups/{g}/targets/{address}`: change weight and/or zone.
    func update(group: String, address: String, _ request: UpdateRequest) throws(ControlError) -> TargetInfo
    /// `POST /v1/reload`: re-read and apply the config file.
    func reload() -> ReloadResult
    /// `GET /metrics`: the Prometheus text exposition (see `MetricsWriter`).
    func metrics() -> String
    /// `GET /v1/events/failed`: the event rules' dead letters (SPEC §13).
    func failedEvents() -> [FailedEvent]
    /// `POST /v1/events/failed/{id}/redeliver`; `.notFound` when no dead letter has that id.
    func redeliverEvent(id: String) throws(ControlError)
    /// `GET /v1/target-groups/{g}/scaling` (SPEC §11): 404 for an unknown group, 409 `NotManaged` for
    /// one without a `scaling` block.
    func scaling(group: String) throws(ControlError) -> ScalingInfo
    /// `PUT /v1/target-groups/{g}/scaling` `{"desired": N}`: 400 `OutOfRange` outside min...max.
    func scale(group: String, desired: Int) throws(ControlError) -> ScalingInfo
    /// `GET /v1/scaling`: every managed group.
    func scalingGroups() -> [ScalingInfo]
}

extension ControlBackend {
    /// `GET /v1/events/failed`: the event rules' dead letters (SPEC §13). None by default.
    public func failedEvents() -> [FailedEvent] { [] }
    /// `POST /v1/events/failed/{id}/redeliver`: appends the dead letter `id` to its rule's outbox again.
    public func redeliverEvent(id: String) throws(ControlError) {
        throw .notFound("no failed event \"\(id)\"")
    }
}

/// Defaults for backends without scaling (test doubles): a group that exists is not managed.
extension ControlBackend {
    public func scaling(group: String) throws(ControlError) -> ScalingInfo {
        guard self.group(group) != nil else { throw .notFound("target group \"\(group)\" does not exist") }
        throw ControlError(status: 409, code: "NotManaged", message: "target group \(group) is not managed")
    }
    public func scale(group: String, desired: Int) throws(ControlError) -> ScalingInfo {
        try scaling(group: group)
    }
    public func scalingGroups() -> [ScalingInfo] { [] }
}
