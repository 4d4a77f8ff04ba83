/// One key of etcd's store as a range or a watch event gives it (`mvccpb.KeyValue`).
public struct EtcdKeyValue: Sendable, Equatable {
    /// The key. etcd keys are bytes; Sluice's keys are UTF-8 paths, so the key is decoded as
    /// UTF-8 (invalid sequences become U+FFFD rather than failing the whole answer).
    public var key: String
    public var value: [UInt8]
    /// Revision of the key's creation (since its last deletion).
    public var createRevision: Int64
    /// Revision of the key's last change.
    public var modRevision: Int64
    /// Number of changes since creation (1 after the first put).
    public var version: Int64
    /// The lease the key is bound to, 0 when none.
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0,
                lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

/// The answer to a range read: the keys found and the store's revision when they were read
/// (a watch from `revision + 1` continues exactly where this read ends).
public struct EtcdRange: Sendable, Equatable {
    public var kvs: [EtcdKeyValue]
    public var revision: Int64

    public init(kvs: [EtcdKeyValue], revision: Int64) {
        self.kvs = kvs
        self.revision = revision
    }
}
