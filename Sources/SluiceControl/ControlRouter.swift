import Foundation

/// Maps control requests to backend calls and JSON answers (SPEC §6). No I/O: the server reads the request,
/// calls `route`, and writes the answer or starts an event stream.
public struct ControlRouter: Sendable {
    /// What to do with a request.
    public enum Outcome: Sendable {
        case respond(HTTPResponse)
        /// Stream `/v1/events`, only events of `group` when set.
        case events(group: String?)
    }

    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    let backend: any ControlBackend

    public init(backend: any ControlBackend) {
        self.backend = backend
    }

    public func route(_ request: HTTPRequest) -> Outcome {
        do throws(ControlError) {
            return try dispatch(request)
        } catch {
            return .respond(Self.errorResponse(error))
        }
    }

    /// Whether `request` is one that may last long: `GET /v1/events` (a stream) or
    /// `DELETE …/targets/{address}?wait=true` (answers when draining ends). The server gives these their
    /// own allowance of connections (`ConnectionLimits.maxStreams`). Malformed requests are not: they are
    /// answered at once.
    public static func isLongLived(_ request: HTTPRequest) -> Bool {
        guard let segments = try? segments(request.path) else { return false }
        if request.method == "GET" { return segments == ["v1", "events"] }
        if request.method == "DELETE" && segments.count == 5 && segments[0] == "v1" && segments[1] == "target-groups"
            && segments[3] == "targets"
        {
            return (try? waitFlag(request.query)) ?? false
        }
        return false
    }

    /// The path's segments, percent-decoded.
    static func segments(_ path: String) throws(ControlError) -> [String] {
        var segments: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = PercentDecoding.decode(String(raw)) else {
                throw .badRequest("malformed percent-encoding in path")
            }
            segments.append(decoded)
        }
        return segments
    }

    /// `?wait=` of a deregistration.
    static func waitFlag(_ query: [String: String]) throws(ControlError) -> Bool {
        switch query["wait"]?.lowercased() {
        case nil, "false", "0", "no": return false
        case "", "true", "1", "yes": return true
        case let other?: throw .badRequest("wait must be true or false, not \"\(other.prefix(64))\"")
        }
    }

    private func dispatch(_ request: HTTPRequest) throws(ControlError) -> Outcome {
        let segments = try Self.segments(request.path)
        let method = request.method
        func allow(_ methods: String...) throws(ControlError) {
            guard methods.contains(method) else {
                throw ControlError.methodNotAllowed("\(method) is not allowed on \(request.path); use \(methods.joined(separator: ", "))")
            }
        }

        switch segments.count {
        case 1 where segments[0] == "metrics":
            try allow("GET")
            return .respond(HTTPResponse(status: 200, contentType: Self.metricsContentType, body: Array(backend.metrics().utf8)))
        case 2 where segments[0] == "v1":
            switch segments[1] {
            case "status":
                try allow("GET")
                return .respond(try Self.json(200, backend.status()))
            case "target-groups":
                try allow("GET")
                return .respond(try Self.json(200, backend.groups()))
            case "nodes":
                try allow("GET")
                return .respond(try Self.json(200, NodesInfo(nodes: backend.nodes())))
            case "events":
                try allow("GET")
                return .events(group: request.query["group"])
            case "scaling":
                try allow("GET")
                return .respond(try Self.json(200, ScalingGroupsInfo(groups: backend.scalingGroups())))
            case "reload":
                try allow("POST")
                let result = backend.reload()
                return .respond(try Self.reloadResponse(result))
            default:
                break
            }
        case 3 where segments[0] == "v1" && segments[1] == "events" && segments[2] == "failed":
            try allow("GET")
            return .respond(try Self.json(200, FailedEvents(failed: backend.failedEvents())))
        case 5 where segments[0] == "v1" && segments[1] == "events" && segments[2] == "failed" && segments[4] == "redeliver":
            try allow("POST")
            try backend.redeliverEvent(id: segments[3])
            return .respond(try Self.json(202, ["redelivered": segments[3]]))
        case 3 where segments[0] == "v1" && segments[1] == "target-groups":
            try allow("GET")
            guard let group = backend.group(segments[2]) else {
                throw .notFound("target group \"\(segments[2])\" does not exist")
            }
            return .respond(try Self.json(200, group))
        case 4 where segments[0] == "v1" && segments[1] == "target-groups" && segments[3] == "scaling":
            try allow("GET", "PUT")
            if method == "PUT" {
                let body = try Self.decode(ScaleRequest.self, request.body)
                return .respond(try Self.json(200, backend.scale(group: segments[2], desired: body.desired)))
            }
            return .respond(try Self.json(200, backend.scaling(group: segments[2])))
        case 4 where segments[0] == "v1" && segments[1] == "target-groups" && segments[3] == "targets":
            try allow("POST")
            let body = try Self.decode(RegisterRequest.self, request.body)
            guard !body.address.isEmpty else { throw .badRequest("\"address\" must not be empty") }
            if let weight = body.weight, weight < 0 { throw .badRequest("\"weight\" must be 0 or more") }
            let (created, target) = try backend.register(group: segments[2], body)
            return .respond(try Self.json(created ? 201 : 200, target))
        case 5 where segments[0] == "v1" && segments[1] == "target-groups" && segments[3] == "targets":
            try allow("DELETE", "PATCH")
            let group = segments[2]
            let address = segments[4]
            if method == "PATCH" {
                let body = try Self.decode(UpdateRequest.self, request.body)
                if body.weight == nil && body.zone == nil { throw .badRequest("nothing to change: give \"weight\" or \"zone\"") }
                if let weight = body.weight, weight < 0 { throw .badRequest("\"weight\" must be 0 or more") }
                return .respond(try Self.json(200, backend.update(group: group, address: address, body)))
            }
            let query = request.query
            let wait = try Self.waitFlag(query)
            var timeout: UInt64?
            if let text = query["timeout"] {
                guard let nanos = DurationText.parseNanoseconds(text) else {
                    throw .badRequest("timeout \"\(text)\" is not a duration (e.g. 30s, 5m, 1h30m)")
                }
                timeout = nanos
            }
            return .respond(try Self.json(200, backend.deregister(group: group, address: address, wait: wait, timeout: timeout)))
        default:
            break
        }
        throw .notFound("no route for \(request.path)")
    }

    // MARK: JSON

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func json(_ status: Int, _ value: some Encodable) throws(ControlError) -> HTTPResponse {
        do {
            var body = try encoder().encode(value)
            body.append(UInt8(ascii: "\n"))
            return HTTPResponse(status: status, body: Array(body))
        } catch {
            throw .internal("encoding the answer failed: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws(ControlError) -> T {
        guard !body.isEmpty else { throw .badRequest("a JSON body is required") }
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let DecodingError.keyNotFound(key, _) {
            throw .badRequest("invalid JSON body: \"\(key.stringValue)\" is required")
        } catch let DecodingError.typeMismatch(_, context) {
            throw .badRequest("invalid JSON body: wrong type at \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\"")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .badRequest("invalid JSON body: \(context.debugDescription)")
        } catch {
            throw .badRequest("invalid JSON body")
        }
    }

    /// `{"error":{"code":…,"message":…}}` with the error's status.
    public static func errorResponse(_ error: ControlError) -> HTTPResponse {
        let body = (try? encoder().encode(error.body)).map { Array($0) + [UInt8(ascii: "\n")] }
            ?? Array("{\"error\":{\"code\":\"internal\",\"message\":\"encoding failed\"}}\n".utf8)
        return HTTPResponse(status: error.status, body: body)
    }

    /// A failed reload answers 409 with a body that is both a `ReloadResult` and an `APIErrorBody`, so
    /// clients that decode either on a 4xx get what they expect.
    static func reloadResponse(_ result: ReloadResult) throws(ControlError) -> HTTPResponse {
        if result.ok { return try json(200, result) }
        struct Failed: Encodable {
            let result: ReloadResult
            let error: APIErrorBody.Detail
            func encode(to encoder: any Encoder) throws {
                try result.encode(to: encoder)
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(error, forKey: .error)
            }
            enum Key: String, CodingKey { case error }
        }
        let message = result.errors.isEmpty ? "reload failed" : result.errors.joined(separator: "; ")
        return try json(409, Failed(result: result, error: .init(code: "reload_failed", message: message)))
    }

    /// One NDJSON line of the event stream.
    static func eventLine(_ event: ControlEvent) -> [UInt8] {
        guard let data = try? encoder().encode(event) else { return [] }
        return Array(data) + [UInt8(ascii: "\n")]
    }
}

/// Durations in query strings.
enum DurationText {
    /// Parses `1h30m`, `5m`, `30s`, `250ms`, `1.5s` or a bare number of seconds into nanoseconds.
    static func parseNanoseconds(_ text: String) -> UInt64? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return nil }
        // Every `UInt64(_:)` below is of a value proven in 0..<1.8e19 (< UInt64.max ≈ 1.845e19); NaN fails
        // both comparisons, and the unit loop cannot make NaN (only non-negative sums and products).
        if let seconds = Double(text) { return seconds >= 0 && seconds < 1.8e10 ? UInt64(seconds * 1e9) : nil }
        var total: Double = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            case "d": scale = 86400e9
            default: return nil
            }
            total += value * scale
        }
        return total >= 0 && total < 1.8e19 ? UInt64(total) : nil
    }
}
