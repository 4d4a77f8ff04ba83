/// A transaction: if every compare holds, the `success` operations run, else the `failure`
/// ones, atomically at one revision.
///
/// Create-if-absent: `EtcdTxn(compare: [.init(key: k, target: .createRevision, .equal, 0)], success: [.put(k, v)])`.
/// Compare-and-delete: compare `.modRevision == seen`, success `[.delete(k)]`.
/// Leader election: create-if-absent of the leader key with a lease, failure `[.range(k)]` to
/// read the holder.
public struct EtcdTxn: Sendable, Equatable {
    public var compare: [EtcdCompare]
    public var success: [EtcdOp]
    public var failure: [EtcdOp]

    public init(compare: [EtcdCompare], success: [EtcdOp], failure: [EtcdOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

/// One condition on one key. A key that does not exist has version, createRevision and
/// modRevision 0 and lease 0.
public struct EtcdCompare: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case version(Int64)
        case createRevision(Int64)
        case modRevision(Int64)
        case value([UInt8])
        case lease(Int64)
    }

    public enum Result: String, Sendable, Equatable {
        case equal = "EQUAL"
        case greater = "GREATER"
        case less = "LESS"
        case notEqual = "NOT_EQUAL"
    }

    public var key: String
    public var target: Target
    public var result: Result

    /// `key`'s `target` compared by `result` with the target's value: `.init(key: k, .version(0), .equal)`.
    public init(key: String, _ target: Target, _ result: Result) {
        self.key = key
        self.target = target
        self.result = result
    }
}

/// One operation of a transaction's branch.
public enum EtcdOp: Sendable, Equatable {
    case range(key: String, prefix: Bool)
    case put(key: String, value: [UInt8], lease: Int64?)
    case delete(key: String, prefix: Bool)

    public static func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) -> EtcdOp {
        .put(key: key, value: value, lease: lease)
    }

    public static func delete(_ key: String) -> EtcdOp { .delete(key: key, prefix: false) }
    public static func range(_ key: String) -> EtcdOp { .range(key: key, prefix: false) }
}

/// The outcome of a transaction: which branch ran, the store's revision after it, and one
/// result per operation of that branch, in order.
public struct EtcdTxnResult: Sendable, Equatable {
    public var succeeded: Bool
    public var revision: Int64
    public var results: [EtcdOpResult]

    public init(succeeded: Bool, revision: Int64, results: [EtcdOpResult]) {
        self.succeeded = succeeded
        self.revision = revision
        self.results = results
    }
}

public enum EtcdOpResult: Sendable, Equatable {
    case range(EtcdRange)
    /// The revision the put was done at.
    case put(revision: Int64)
    case delete(deleted: Int64)
}
