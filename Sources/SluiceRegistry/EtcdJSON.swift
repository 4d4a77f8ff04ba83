import Foundation

/// Total reading of etcd's JSON (grpc-gateway's encoding of the protobuf messages): every field
/// is optional (proto3 omits defaults), int64 fields are JSON strings (numbers are accepted too
/// when exact), bytes are base64. A field of the wrong type or an unreadable value is
/// `.malformed`, never a trap.
enum EtcdJSON {
    typealias Object = [String: Any]

    /// The top-level JSON object of `bytes`.
    static func object(_ bytes: some Collection<UInt8>, what: String) throws(EtcdError) -> Object {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw .malformed("\(what): not JSON: \"\(preview(bytes))\"")
        }
        guard let o = parsed as? Object else { throw .malformed("\(what): not a JSON object") }
        return o
    }

    /// A nested object; absent is empty.
    static func object(_ o: Object, _ key: String) throws(EtcdError) -> Object {
        guard let v = o[key], !(v is NSNull) else { return [:] }
        guard let d = v as? Object else { throw .malformed("field \(key) is not an object") }
        return d
    }

    /// An array of objects; absent is empty.
    static func objects(_ o: Object, _ key: String) throws(EtcdError) -> [Object] {
        guard let v = o[key], !(v is NSNull) else { return [] }
        guard let a = v as? [Any] else { throw .malformed("field \(key) is not an array") }
        var out: [Object] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let d = e as? Object else { throw .malformed("field \(key) holds a non-object") }
            out.append(d)
        }
        return out
    }

    /// An int64 field: a decimal string (gateway style) or an exact JSON integer; absent is 0.
    static func int64(_ o: Object, _ key: String) throws(EtcdError) -> Int64 {
        guard let v = o[key], !(v is NSNull) else { return 0 }
        if let s = v as? String {
            guard let n = Int64(s) else { throw .malformed("field \(key) is not an int64: \"\(s.prefix(32))\"") }
            return n
        }
        // A JSON number: its exact decimal text or refused (no rounding through Double, no trap).
        if let n = v as? NSNumber, let i = Int64(n.stringValue) { return i }
        throw .malformed("field \(key) is not an int64")
    }

    /// A small integer field (gRPC codes); absent is 0.
    static func int(_ o: Object, _ key: String) throws(EtcdError) -> Int {
        let n = try int64(o, key)
        guard let i = Int(exactly: n) else { throw .malformed("field \(key) out of range") }
        return i
    }

    /// A bool field; absent is false.
    static func bool(_ o: Object, _ key: String) throws(EtcdError) -> Bool {
        guard let v = o[key], !(v is NSNull) else { return false }
        guard let b = v as? Bool else { throw .malformed("field \(key) is not a bool") }
        return b
    }

    /// A string field; absent is empty.
    static func string(_ o: Object, _ key: String) throws(EtcdError) -> String {
        guard let v = o[key], !(v is NSNull) else { return "" }
        guard let s = v as? String else { throw .malformed("field \(key) is not a string") }
        return s
    }

    /// A bytes field (base64); absent is empty.
    static func bytes(_ o: Object, _ key: String) throws(EtcdError) -> [UInt8] {
        let s = try string(o, key)
        if s.isEmpty { return [] }
        guard let d = Data(base64Encoded: s) else { throw .malformed("field \(key) is not base64") }
        return [UInt8](d)
    }

    /// The first line of `bytes`, at most 64 bytes, for error messages.
    static func preview(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes.prefix(64).prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
    }

    /// `value` as JSON text (objects and arrays of strings, numbers, bools).
    static func encode(_ value: Object) -> [UInt8] {
        // Only strings, bools, arrays and objects built by EtcdWire go in: serialisation cannot fail.
        guard let d = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return Array("{}".utf8) }
        return [UInt8](d)
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
}
