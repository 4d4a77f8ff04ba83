internal import Yams

/// The keys of http listeners besides `rules` (SPEC §3: limits, timeouts, desync, headers; `access_log`,
/// a key of every listener, is read with the common keys and copied in).
extension ConfigBuilder {
    /// The settings with defaults filled in; `nil` after any error.
    mutating func httpSettings(_ listener: YAMLMapping) -> HTTPListenerSettings? {
        let before = reader.errors.count
        var settings = HTTPListenerSettings()
        if let value = listener["header_timeout"], let nanos = positiveDuration(value) {
            settings.headerTimeout = nanos
        }
        if let value = listener["response_timeout"], let nanos = positiveDuration(value) {
            settings.responseTimeout = nanos
        }
        if let value = listener["desync_mitigation"], let mode = choice(value, DesyncMitigationMode.self) {
            settings.desyncMitigation = mode
        }
        if let value = listener["xff"], let mode = choice(value, XFFMode.self) {
            settings.xff = mode
        }
        if let value = listener["max_request_body"],
            let bytes = byteSize(value, in: 0...UInt64.max, expected: "a size in bytes like 1048576 or 10M (0 = unlimited)")
        {
            settings.maxRequestBody = bytes
        }
        if let value = listener["max_header_bytes"],
            let bytes = byteSize(value, in: HTTPListenerSettings.maxHeaderBytesRange, expected: "a size")
        {
            settings.maxHeaderBytes = bytes
        }
        if let value = listener["max_headers"] {
            let range = HTTPListenerSettings.maxHeadersRange
            let expected = "a number of headers from \(range.lowerBound) to \(range.upperBound)"
            settings.maxHeaders = reader.int(value, in: range, expected: expected) ?? settings.maxHeaders
        }
        if let value = listener["max_concurrent_streams"] {
            let range = HTTPListenerSettings.maxConcurrentStreamsRange
            let expected = "a number of HTTP/2 streams from \(range.lowerBound) to \(range.upperBound)"
            settings.maxConcurrentStreams = reader.int(value, in: range, expected: expected) ?? settings.maxConcurrentStreams
        }
        if let value = listener["max_request_line"],
            let bytes = byteSize(value, in: HTTPListenerSettings.maxRequestLineRange, expected: "a size")
        {
            settings.maxRequestLine = bytes
            if bytes > settings.maxHeaderBytes {
                reader.error(
                    "max_request_line (\(bytes)) may not exceed max_header_bytes (\(settings.maxHeaderBytes)), "
                        + "which counts the request line too", at: value)
            }
        }
        if let value = listener["retry_idempotent"], let flag = reader.bool(value) {
            settings.retryIdempotent = flag
        }
        return reader.errors.count == before ? settings : nil
    }

    /// One of an enum's raw values.
    mutating func choice<T: RawRepresentable & CaseIterable>(_ value: YAMLValue, _: T.Type) -> T?
    where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        guard let text = reader.string(value, expected: orList(names)) else { return nil }
        guard let result = T(rawValue: text) else {
            reader.error("expected \(orList(names)), got \(reader.quoted(text))", at: value)
            return nil
        }
        return result
    }

    /// `access_log: off | stdout | /absolute/path`.
    mutating func accessLog(_ value: YAMLValue) -> AccessLogDestination? {
        let expected = "off, stdout or an absolute file path"
        guard let text = reader.string(value, expected: expected) else { return nil }
        switch text {
        case "off": return .off
        case "stdout": return .stdout
        default:
            guard text.hasPrefix("/"), !text.contains("\0"), !text.hasSuffix("/") else {
                reader.error("expected \(expected), got \(reader.quoted(text))", at: value)
                return nil
            }
            return .file(text)
        }
    }

    /// A size: a YAML integer of bytes or a number with a unit (`ByteSizeParser`), in `range`.
    private mutating func byteSize<T: FixedWidthInteger>(
        _ value: YAMLValue, in range: ClosedRange<T>, expected: String
    ) -> T? {
        let full = "\(expected) from \(range.lowerBound) to \(range.upperBound) bytes (units K, M, G allowed)"
        let shown = range.upperBound == T.max ? "\(expected)" : full
        var bytes: UInt64?
        switch reader.kind(value.node) {
        case .int(let number): bytes = number >= 0 ? UInt64(number) : nil
        case .string: bytes = value.node.scalar.flatMap { ByteSizeParser.parse($0.string) }
        default: bytes = nil
        }
        guard let bytes, let result = T(exactly: bytes), range.contains(result) else {
            reader.error("expected \(shown), got \(reader.describe(value.node))", at: value)
            return nil
        }
        return result
    }
}
