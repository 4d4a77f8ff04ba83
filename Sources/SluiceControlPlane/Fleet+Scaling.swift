import Foundation
import SluiceRegistry

/// Managed groups' `desired` counts in etcd (SPEC §11): `{prefix}/scaling/{group}` holds
/// `{"desired": N}`, written by the scaling leader, read by a node that becomes leader, so a
/// new leader continues where the old one stopped.
extension Fleet {
    var scalingPrefix: String { keys.prefix + "/scaling/" }

    /// Stores every group's count (the leader, after each change).
    public func storeDesired(_ desired: [String: Int]) throws(EtcdError) {
        for (group, n) in desired.sorted(by: { $0.key < $1.key }) {
            try client.put(key: scalingPrefix + group, value: Array("{\"desired\": \(n)}".utf8))
        }
    }

    /// The stored counts by group; nil when etcd cannot be read. Malformed values are skipped.
    public func storedDesired() -> [String: Int]? {
        guard let range = try? client.range(key: scalingPrefix, prefix: true) else { return nil }
        var result: [String: Int] = [:]
        for kv in range.kvs where kv.key.hasPrefix(scalingPrefix) && kv.value.count <= 4_096 {
            let group = String(kv.key.dropFirst(scalingPrefix.count))
            guard !group.isEmpty, let object = try? JSONSerialization.jsonObject(with: Data(kv.value)) as? [String: Any],
                  let n = object["desired"] as? Int, n >= 0 else { continue }
            result[group] = n
        }
        return result
    }

    var scalingRequestPrefix: String { keys.prefix + "/scaling-requests/" }

    /// Leaves a manual count for the scaling leader (this node does not lead).
    public func requestDesired(_ request: DesiredRequest) throws(EtcdError) {
        let object: [String: Any] = ["desired": request.desired, "node": settings.nodeName]
        let value = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { Array($0) }
            ?? Array("{\"desired\": \(request.desired)}".utf8)
        _ = try client.put(key: scalingRequestPrefix + request.group, value: value)
    }

    /// The counts other nodes asked for, each taken out of etcd by a compare-and-delete at the
    /// revision read (a newer request for the same group stays for the next round). Malformed
    /// values are deleted and skipped; nothing when etcd cannot be read.
    public func takeDesiredRequests() -> [DesiredRequest] {
        guard let range = try? client.range(key: scalingRequestPrefix, prefix: true) else { return [] }
        var requests: [DesiredRequest] = []
        for kv in range.kvs where kv.key.hasPrefix(scalingRequestPrefix) {
            let taken = try? client.txn(EtcdTxn(compare: [EtcdCompare(key: kv.key, .modRevision(kv.modRevision), .equal)],
                                                success: [.delete(kv.key)]))
            guard taken?.succeeded == true, kv.value.count <= 4_096 else { continue }
            let group = String(kv.key.dropFirst(scalingRequestPrefix.count))
            guard !group.isEmpty, let object = try? JSONSerialization.jsonObject(with: Data(kv.value)) as? [String: Any],
                  let n = object["desired"] as? Int else { continue }
            requests.append(DesiredRequest(group: group, desired: n, node: (object["node"] as? String).map { String($0.prefix(200)) } ?? "?"))
        }
        return requests
    }
}
