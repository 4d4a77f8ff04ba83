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
}
