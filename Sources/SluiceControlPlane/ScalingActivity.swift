/// One scaling activity (SPEC §11): a launch, a termination, a replacement or a change of
/// `desired`, with what caused it and how it ended.
public struct ScalingActivity: Sendable, Equatable {
    public enum Result: String, Sendable, Equatable {
        case inProgress = "in_progress"
        case successful
        case failed
    }

    public enum Kind: String, Sendable, Equatable {
        case launch
        case terminate
        case setDesired = "set_desired"
    }

    public var id: String
    public var group: String
    public var kind: Kind
    public var cause: String
    public var description: String
    public var result: Result
    /// RFC 3339, UTC.
    public var startTime: String
    public var endTime: String?
    public var target: String?
    public var message: String?

    public init(id: String, group: String, kind: Kind, cause: String, description: String, result: Result = .inProgress,
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

    /// Activities kept per group (the oldest go first).
    public static let kept = 50
}

/// A managed group as the API shows it.
public struct ScalingView: Sendable, Equatable {
    public var group: String
    public var desired: Int
    public var actual: Int
    public var min: Int
    public var max: Int
    /// Oldest first.
    public var activities: [ScalingActivity]
}
