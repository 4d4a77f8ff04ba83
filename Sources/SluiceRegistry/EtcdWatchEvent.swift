/// What a watch hands its callback, in order, on the watch's own thread.
public enum EtcdWatchEvent: Sendable, Equatable {
    /// A key was created or changed.
    case put(EtcdKeyValue)
    /// A key was deleted at `modRevision`.
    case delete(key: String, modRevision: Int64)
    /// Every change up to `revision` has been delivered (etcd's progress notification, also
    /// sent when the watch is created or re-created).
    case progress(revision: Int64)
    /// The stream was lost; the watch reconnects by itself (with back-off) and resumes from the
    /// last revision it delivered + 1, so no change is lost or repeated.
    case disconnected(reason: String)
    /// The revision to resume from has been compacted away: changes were lost. The watch has
    /// ended; the caller re-reads everything (`range`) and starts a new watch from the range's
    /// `revision + 1`.
    case compacted(compactRevision: Int64)
}
