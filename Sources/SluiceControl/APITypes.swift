/// JSON types of the control socket API (SPEC §6).
///
/// Swift names are camelCase; the wire keys are snake_case through explicit `CodingKeys`, so a plain
/// `JSONEncoder`/`JSONDecoder` (no key strategy) reads and writes them. Optional fields are omitted when nil,
/// except `TargetInfo.reason`, which is always present (`null` when there is none).
/// These types are shared with `sluicectl`: change them only by adding optional fields.

/// `GET /v1/status`.
public struct StatusInfo: Codable, Sendable, Equatable {
    public var version: String
    public var uptimeSeconds: Double
    public var zone: String?
    public var workers: Int
    public var configFile: String
    /// Hex digest of the config file's bytes as loaded.
    public var configHash: String
    public var connectionsActive: UInt64
    public var connectionsTotal: UInt64
    /// Generation of the compiled plan in force (bumped by every successful reload).
    public var planGeneration: UInt64

    public init(
        version: String, uptimeSeconds: Double, zone: String?, workers: Int, configFile: String, configHash: String,
        connectionsActive: UInt64, connectionsTotal: UInt64, planGeneration: UInt64
    ) {
        self.version = version
        self.uptimeSeconds = uptimeSeconds
        self.zone = zone
        self.workers = workers
        self.configFile = configFile
        self.configHash = configHash
        self.connectionsActive = connectionsActive
        self.connectionsTotal = connectionsTotal
        self.planGeneration = planGeneration
    }

    enum CodingKeys: String, CodingKey {
        case version
        case uptimeSeconds = "uptime_seconds"
        case zone, workers
        case configFile = "config_file"
        case configHash = "config_hash"
        case connectionsActive = "connections_active"
        case connectionsTotal = "connections_total"
        case planGeneration = "plan_generation"
    }
}

/// One node of the fleet (`GET /v1/nodes`, SPEC §10): what `{prefix}/nodes/{name}` holds, with
/// the name. A standalone node (no `registry`) is a fleet of one.
public struct NodeInfo: Codable, Sendable, Equatable {
    public var name: String
    public var zone: String
    public var version: String
    public var planGeneration: UInt64
    /// When the node started, RFC 3339.
    public var started: String

    public init(name: String, zone: String, version: String, planGeneration: UInt64, started: String) {
        self.name = name
        self.zone = zone
        self.version = version
        self.planGeneration = planGeneration
        self.started = started
    }

    enum CodingKeys: String, CodingKey {
        case name, zone, version
        case planGeneration = "plan_generation"
        case started
    }
}

/// `GET /v1/nodes`.
public struct NodesInfo: Codable, Sendable, Equatable {
    public var nodes: [NodeInfo]
    public init(nodes: [NodeInfo]) { self.nodes = nodes }
}

/// One target of a group as the API shows it.
public struct TargetInfo: Codable, Sendable, Equatable {
    /// `host:port`, IPv6 in brackets (`[::1]:80`).
    public var address: String
    public var zone: String?
    public var weight: Int
    /// Health state: `"healthy"`, `"unhealthy"`, `"draining"`, `"unknown"` (daemon's vocabulary).
    public var state: String
    /// Reason code for the state, e.g. `"connect_refused"`, `"deregistered"`.
    public var reason: String?
    public var inFlight: Int
    /// True when the target is named in the config file (the API may drain it but not own it).
    public var isStatic: Bool
    /// RFC 3339 time of the API registration; nil for static targets.
    public var registeredAt: String?

    public init(
        address: String, zone: String? = nil, weight: Int = 1, state: String, reason: String? = nil,
        inFlight: Int = 0, isStatic: Bool = false, registeredAt: String? = nil
    ) {
        self.address = address
        self.zone = zone
        self.weight = weight
        self.state = state
        self.reason = reason
        self.inFlight = inFlight
        self.isStatic = isStatic
        self.registeredAt = registeredAt
    }

    enum CodingKeys: String, CodingKey {
        case address, zone, weight, state, reason
        case inFlight = "in_flight"
        case isStatic = "static"
        case registeredAt = "registered_at"
    }

    /// Like the synthesized encoding, except that `reason` is always written, as `null` when there is
    /// none (SPEC §6: the key is always present). Decoding is synthesized and takes absent or `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(address, forKey: .address)
        try container.encodeIfPresent(zone, forKey: .zone)
        try container.encode(weight, forKey: .weight)
        try container.encode(state, forKey: .state)
        if let reason {
            try container.encode(reason, forKey: .reason)
        } else {
            try container.encodeNil(forKey: .reason)
        }
        try container.encode(inFlight, forKey: .inFlight)
        try container.encode(isStatic, forKey: .isStatic)
        try container.encodeIfPresent(registeredAt, forKey: .registeredAt)
    }
}

/// One target group with its targets.
public struct GroupInfo: Codable, Sendable, Equatable {
    public var name: String
    /// `"http"`, `"tcp"`, … (JSON key `protocol`).
    public var proto: String
    public var algorithm: String
    /// `cross_zone` as configured: `"true"`, `"false"` or `"prefer_local"`.
    public var crossZone: String
    /// True while the group is failing open (every target unhealthy, traffic sent to all).
    public var failOpen: Bool
    public var targets: [TargetInfo]

    public init(name: String, proto: String, algorithm: String, crossZone: String, failOpen: Bool, targets: [TargetInfo]) {
        self.name = name
        self.proto = proto
        self.algorithm = algorithm
        self.crossZone = crossZone
        self.failOpen = failOpen
        self.targets = targets
    }

    enum CodingKeys: String, CodingKey {
        case name
        case proto = "protocol"
        case algorithm
        case crossZone = "cross_zone"
        case failOpen = "fail_open"
        case targets
    }
}

/// Body of `POST /v1/target-groups/{g}/targets`.
public struct RegisterRequest: Codable, Sendable, Equatable {
    public var address: String
    public var zone: String?
    public var weight: Int?

    public init(address: String, zone: String? = nil, weight: Int? = nil) {
        self.address = address
        self.zone = zone
        self.weight = weight
    }
}

/// Body of `PATCH /v1/target-groups/{g}/targets/{address}`.
public struct UpdateRequest: Codable, Sendable, Equatable {
    public var weight: Int?
    public var zone: String?

    public init(weight: Int? = nil, zone: String? = nil) {
        self.weight = weight
        self.zone = zone
    }
}

/// Answer of `POST /v1/reload` (status 200 when `ok`, 409 otherwise; the body is this type either way).
public struct ReloadResult: Codable, Sendable, Equatable {
    public var ok: Bool
    /// Plan generation in force after the attempt.
    public var generation: UInt64
    public var errors: [String]

    public init(ok: Bool, generation: UInt64, errors: [String] = []) {
        self.ok = ok
        self.generation = generation
        self.errors = errors
    }
}

/// One line of `GET /v1/events`.
public struct ControlEvent: Codable, Sendable, Equatable {
    /// Event kinds (the `type` field, SPEC §13).
    public enum Kind: String, Codable, Sendable {
        case targetState = "target_state"
        case registration
        case deregistration
        case drained
        case reload
        case failOpen = "fail_open"
        case failOpenEnded = "fail_open_ended"
        case scalingActivity = "scaling_activity"
        case registryConnected = "registry_connected"
        case registryLost = "registry_lost"
    }

    /// Unique per event and stable once assigned (`EventBus.publish` assigns it): rules' webhooks send it
    /// as `X-Sluice-Event-Id`, for deduplication. Nil only in events decoded from an older daemon.
    public var id: String?
    /// RFC 3339 with fractional seconds, UTC (`2025-01-02T03:04:05.678Z`).
    public var time: String
    /// Raw `type` string; see `Kind`. Kept as a string so a newer daemon's kinds still decode.
    public var type: String
    public var group: String?
    public var target: String?
    public var state: String?
    public var reason: String?
    public var message: String?
    /// `scaling_activity` (SPEC §11): the activity's id, what caused it, its result (`in_progress`,
    /// `successful`, `failed`) and the group's `desired` count after it.
    public var activity: String?
    public var cause: String?
    public var result: String?
    public var desired: Int?

    public init(
        id: String? = nil, time: String = ControlEvent.now(), type: String, group: String? = nil, target: String? = nil,
        state: String? = nil, reason: String? = nil, message: String? = nil, activity: String? = nil,
        cause: String? = nil, result: String? = nil, desired: Int? = nil
    ) {
        self.id = id
        self.time = time
        self.type = type
        self.group = group
        self.target = target
        self.state = state
        self.reason = reason
        self.message = message
        self.activity = activity
        self.cause = cause
        self.result = result
        self.desired = desired
    }

    public init(
        time: String = ControlEvent.now(), kind: Kind, group: String? = nil, target: String? = nil,
        state: String? = nil, reason: String? = nil, message: String? = nil
    ) {
        self.init(
            time: time, type: kind.rawValue, group: group, target: target, state: state, reason: reason,
            message: message)
    }

    /// `type` as a known kind, nil for kinds this build does not know.
    public var kind: Kind? { Kind(rawValue: type) }

    /// The current time as RFC 3339 UTC with milliseconds.
    public static func now() -> String { RFC3339.format(secondsSinceEpoch: wallClockSeconds()) }
}

/// Error body: `{"error": {"code": "...", "message": "..."}}`.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var error: Detail

    public init(code: String, message: String) {
        self.error = Detail(code: code, message: message)
    }
}

/// A refused control request: HTTP status, stable machine code, human message.
public struct ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// Rebuilds the error a server sent (`sluicectl` side).
    public init(status: Int, body: APIErrorBody) {
        self.init(status: status, code: body.error.code, message: body.error.message)
    }

    public var body: APIErrorBody { APIErrorBody(code: code, message: message) }
    public var description: String { "\(status) \(code): \(message)" }

    public static func badRequest(_ message: String) -> ControlError {
        ControlError(status: 400, code: "bad_request", message: message)
    }
    public static func forbidden(_ message: String) -> ControlError {
        ControlError(status: 403, code: "forbidden", message: message)
    }
    public static func notFound(_ message: String) -> ControlError {
        ControlError(status: 404, code: "not_found", message: message)
    }
    public static func methodNotAllowed(_ message: String) -> ControlError {
        ControlError(status: 405, code: "method_not_allowed", message: message)
    }
    public static func conflict(_ message: String) -> ControlError {
        ControlError(status: 409, code: "conflict", message: message)
    }
    public static func payloadTooLarge(_ message: String) -> ControlError {
        ControlError(status: 413, code: "payload_too_large", message: message)
    }
    public static func timeout(_ message: String) -> ControlError {
        ControlError(status: 504, code: "timeout", message: message)
    }
    public static func `internal`(_ message: String) -> ControlError {
        ControlError(status: 500, code: "internal", message: message)
    }
}

/// One dead letter of an event rule (SPEC §13): an event that failed every attempt.
public struct FailedEvent: Codable, Sendable, Equatable {
    /// The event's id (`sluicectl events redeliver ID`).
    public var id: String
    public var rule: String
    public var event: ControlEvent
    public var attempts: Int
    /// The last attempt's error.
    public var error: String
    /// RFC 3339 UTC.
    public var failedAt: String

    public init(id: String, rule: String, event: ControlEvent, attempts: Int, error: String, failedAt: String) {
        self.id = id
        self.rule = rule
        self.event = event
        self.attempts = attempts
        self.error = error
        self.failedAt = failedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, rule, event, attempts, error
        case failedAt = "failed_at"
    }
}

/// `GET /v1/events/failed`.
public struct FailedEvents: Codable, Sendable, Equatable {
    public var failed: [FailedEvent]

    public init(failed: [FailedEvent]) { self.failed = failed }
}

/// One scaling activity of a managed group (SPEC §11).
public struct ScalingActivityInfo: Codable, Sendable, Equatable {
    public var id: String
    public var group: String
    /// `launch`, `terminate` or `set_desired`.
    public var kind: String?
    public var cause: String
    public var description: String
    /// `in_progress`, `successful` or `failed`.
    public var result: String
    public var startTime: String
    public var endTime: String?
    public var target: String?
    public var message: String?

    public init(id: String, group: String, kind: String? = nil, cause: String, description: String, result: String,
                startTime: String, endTime: String? = nil, target: String? = nil, message: String? = nil) {
        self.id = id
        self.group = group
        self.kind = kind
        self.cause = cause
        self.description = description
        self.result = result
        self.startTime = startTime
        self.endTime = endTime
        self.target = target
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case id, group, kind, cause, description, result
        case startTime = "start_time"
        case endTime = "end_time"
        case target, message
    }
}

/// `GET`/`PUT /v1/target-groups/{g}/scaling`: a managed group's counts and its last activities
/// (oldest first).
public struct ScalingInfo: Codable, Sendable, Equatable {
    public var group: String
    public var desired: Int
    public var actual: Int
    public var min: Int
    public var max: Int
    public var activities: [ScalingActivityInfo]

    public init(group: String, desired: Int, actual: Int, min: Int, max: Int, activities: [ScalingActivityInfo] = []) {
        self.group = group
        self.desired = desired
        self.actual = actual
        self.min = min
        self.max = max
        self.activities = activities
    }
}

/// `GET /v1/scaling`: every managed group.
public struct ScalingGroupsInfo: Codable, Sendable, Equatable {
    public var groups: [ScalingInfo]
    public init(groups: [ScalingInfo]) { self.groups = groups }
}

/// Body of `PUT /v1/target-groups/{g}/scaling`.
public struct ScaleRequest: Codable, Sendable, Equatable {
    public var desired: Int
    public init(desired: Int) { self.desired = desired }

    private enum CodingKeys: String, CodingKey { case desired }

    /// Any key of a JSON object.
    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Only `desired` can be set (`min` and `max` come from the config file): another key is
    /// refused rather than ignored.
    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        if let other = any.allKeys.first(where: { $0.stringValue != CodingKeys.desired.stringValue }) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: [other],
                debugDescription: "unknown key \"\(other.stringValue.prefix(64))\": only \"desired\" can be set (min and max come from the config file)"))
        }
        desired = try decoder.container(keyedBy: CodingKeys.self).decode(Int.self, forKey: .desired)
    }
}
