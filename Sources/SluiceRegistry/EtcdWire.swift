/// The JSON gateway's messages, sans-I/O: request bodies for each call and total decoders of
/// the answers (`EtcdJSON` does the field checks). Paths are etcd 3.4's `/v3/...`.
enum EtcdWire {
    static let rangePath = "/v3/kv/range"
    static let putPath = "/v3/kv/put"
    static let deletePath = "/v3/kv/deleterange"
    static let txnPath = "/v3/kv/txn"
    static let compactPath = "/v3/kv/compaction"
    static let watchPath = "/v3/watch"
    static let grantPath = "/v3/lease/grant"
    static let keepAlivePath = "/v3/lease/keepalive"
    static let revokePath = "/v3/lease/revoke"

    // MARK: Requests

    /// The end of the range covering every key that starts with `prefix`: the prefix with its
    /// last byte below 0xff incremented (and what follows dropped); `[0]` (every key) when there
    /// is none, as etcd's clientv3 `GetPrefixRangeEnd` does.
    static func prefixEnd(_ prefix: [UInt8]) -> [UInt8] {
        var end = prefix
        while let last = end.last {
            if last < 0xff {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]
    }

    static func keyFields(_ key: String, prefix: Bool) -> EtcdJSON.Object {
        var o: EtcdJSON.Object = ["key": EtcdJSON.base64(key)]
        if prefix { o["range_end"] = EtcdJSON.base64(prefixEnd(Array(key.utf8))) }
        return o
    }

    static func range(key: String, prefix: Bool) -> [UInt8] { EtcdJSON.encode(keyFields(key, prefix: prefix)) }

    static func putFields(key: String, value: [UInt8], lease: Int64?) -> EtcdJSON.Object {
        var o: EtcdJSON.Object = ["key": EtcdJSON.base64(key), "value": EtcdJSON.base64(value)]
        if let lease { o["lease"] = String(lease) }
        return o
    }

    static func put(key: String, value: [UInt8], lease: Int64?) -> [UInt8] {
        EtcdJSON.encode(putFields(key: key, value: value, lease: lease))
    }

    static func delete(key: String, prefix: Bool) -> [UInt8] { EtcdJSON.encode(keyFields(key, prefix: prefix)) }

    static func txn(_ t: EtcdTxn) -> [UInt8] {
        func op(_ op: EtcdOp) -> EtcdJSON.Object {
            switch op {
            case .range(let key, let prefix): ["request_range": keyFields(key, prefix: prefix)]
            case .put(let key, let value, let lease): ["request_put": putFields(key: key, value: value, lease: lease)]
            case .delete(let key, let prefix): ["request_delete_range": keyFields(key, prefix: prefix)]
            }
        }
        let compares: [EtcdJSON.Object] = t.compare.map { c in
            var o: EtcdJSON.Object = ["key": EtcdJSON.base64(c.key), "result": c.result.rawValue]
            switch c.target {
            case .version(let n): o["target"] = "VERSION"; o["version"] = String(n)
            case .createRevision(let n): o["target"] = "CREATE"; o["create_revision"] = String(n)
            case .modRevision(let n): o["target"] = "MOD"; o["mod_revision"] = String(n)
            case .value(let v): o["target"] = "VALUE"; o["value"] = EtcdJSON.base64(v)
            case .lease(let n): o["target"] = "LEASE"; o["lease"] = String(n)
            }
            return o
        }
        return EtcdJSON.encode(["compare": compares, "success": t.success.map(op), "failure": t.failure.map(op)])
    }

    static func compact(revision: Int64) -> [UInt8] { EtcdJSON.encode(["revision": String(revision), "physical": true]) }
    static func grant(ttl: Int64) -> [UInt8] { EtcdJSON.encode(["TTL": String(ttl)]) }
    static func lease(_ id: Int64) -> [UInt8] { EtcdJSON.encode(["ID": String(id)]) }

    /// Creates a watch on every key under `prefix` from `startRevision` (0: from now), with
    /// progress notifications.
    static func watch(prefix: String, startRevision: Int64) -> [UInt8] {
        var create = keyFields(prefix, prefix: true)
        if startRevision > 0 { create["start_revision"] = String(startRevision) }
        create["progress_notify"] = true
        return EtcdJSON.encode(["create_request": create])
    }

    // MARK: Answers

    /// The object of a unary answer, or etcd's error: a non-200 status with
    /// `{"error", "message", "code"}`, or a 200 whose object holds `error`.
    static func answer(status: Int, body: [UInt8]) throws(EtcdError) -> EtcdJSON.Object {
        let o: EtcdJSON.Object
        do {
            o = try EtcdJSON.object(body, what: "HTTP \(status)")
        } catch {
            if status != 200 { throw .malformed("HTTP \(status): \"\(EtcdJSON.preview(body))\"") }
            throw error
        }
        if status != 200 || o["error"] != nil { try serverError(o, status: status) }
        return o
    }

    /// Throws etcd's error from `o`: the unary form `{"error": "text", "message", "code"}` or
    /// the stream form `{"error": {"grpc_code", "message", ...}}`.
    static func serverError(_ o: EtcdJSON.Object, status: Int) throws(EtcdError) -> Never {
        if o["error"] is EtcdJSON.Object {
            let e = try EtcdJSON.object(o, "error")
            throw .server(code: try EtcdJSON.int(e, "grpc_code"), message: try EtcdJSON.string(e, "message"))
        }
        var message = try EtcdJSON.string(o, "message")
        if message.isEmpty { message = try EtcdJSON.string(o, "error") }
        if message.isEmpty { message = "HTTP \(status)" }
        throw .server(code: try EtcdJSON.int(o, "code"), message: message)
    }

    static func revision(_ o: EtcdJSON.Object) throws(EtcdError) -> Int64 {
        try EtcdJSON.int64(try EtcdJSON.object(o, "header"), "revision")
    }

    static func keyValue(_ o: EtcdJSON.Object) throws(EtcdError) -> EtcdKeyValue {
        EtcdKeyValue(
            key: String(decoding: try EtcdJSON.bytes(o, "key"), as: UTF8.self),
            value: try EtcdJSON.bytes(o, "value"),
            createRevision: try EtcdJSON.int64(o, "create_revision"),
            modRevision: try EtcdJSON.int64(o, "mod_revision"),
            version: try EtcdJSON.int64(o, "version"),
            lease: try EtcdJSON.int64(o, "lease"))
    }

    static func range(_ o: EtcdJSON.Object) throws(EtcdError) -> EtcdRange {
        var kvs: [EtcdKeyValue] = []
        for kv in try EtcdJSON.objects(o, "kvs") { kvs.append(try keyValue(kv)) }
        return EtcdRange(kvs: kvs, revision: try revision(o))
    }

    static func deleted(_ o: EtcdJSON.Object) throws(EtcdError) -> (deleted: Int64, revision: Int64) {
        (try EtcdJSON.int64(o, "deleted"), try revision(o))
    }

    static func txn(_ o: EtcdJSON.Object) throws(EtcdError) -> EtcdTxnResult {
        var results: [EtcdOpResult] = []
        for r in try EtcdJSON.objects(o, "responses") {
            if r["response_range"] != nil {
                results.append(.range(try range(try EtcdJSON.object(r, "response_range"))))
            } else if r["response_put"] != nil {
                results.append(.put(revision: try revision(try EtcdJSON.object(r, "response_put"))))
            } else if r["response_delete_range"] != nil {
                results.append(.delete(deleted: try EtcdJSON.int64(try EtcdJSON.object(r, "response_delete_range"), "deleted")))
            } else {
                throw .malformed("txn response of unknown kind")
            }
        }
        return EtcdTxnResult(succeeded: try EtcdJSON.bool(o, "succeeded"), revision: try revision(o), results: results)
    }

    /// A granted lease: its id (never 0) and TTL.
    static func grant(_ o: EtcdJSON.Object) throws(EtcdError) -> (id: Int64, ttl: Int64) {
        let message = try EtcdJSON.string(o, "error")
        if !message.isEmpty { throw .server(code: 0, message: message) }
        let id = try EtcdJSON.int64(o, "ID")
        guard id != 0 else { throw .malformed("lease grant without an ID") }
        return (id, try EtcdJSON.int64(o, "TTL"))
    }

    /// The keep-alive stream's first message (`{"result": {"ID", "TTL"}}` or `{"error": ...}`):
    /// the TTL left, 0 when the lease has expired (etcd then omits TTL or sends it ≤ 0).
    static func keepAlive(status: Int, body: [UInt8]) throws(EtcdError) -> Int64 {
        let line = body.split(separator: 10, omittingEmptySubsequences: true).first ?? []
        let o = try answer(status: status, body: Array(line))
        let ttl = try EtcdJSON.int64(try EtcdJSON.object(o, "result"), "TTL")
        return max(ttl, 0)
    }
}
