#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import ArgumentParser
import SluiceControl

/// How a `sluicectl` run ends when it does not succeed, and with which exit code (SPEC §7).
enum CtlFailure: Error, Equatable, CustomStringConvertible {
    /// The daemon answered 4xx/5xx: `error: CODE: MESSAGE`, exit 1.
    case refused(status: Int, code: String, message: String)
    /// The daemon answered, and the answer means failure (a reload it rejected), exit 1.
    /// The details have already been printed.
    case failed
    /// The command line is wrong in a way ArgumentParser did not catch, exit 2.
    case usage(String)
    /// The request failed below HTTP: the daemon could not be reached (exit 3), or it answered with
    /// something that is not a usable answer (exit 1, see `ClientError.exitCode`).
    case unreachable(ClientError)

    var exitCode: Int32 {
        switch self {
        case .refused, .failed: ExitStatus.refused
        case .usage: ExitStatus.usage
        case .unreachable(let error): error.exitCode
        }
    }

    var description: String {
        switch self {
        case .refused(_, let code, let message): "error: \(code): \(message)"
        case .failed: ""
        case .usage(let message): "error: \(message)"
        case .unreachable(let error): "error: \(error)"
        }
    }

    /// The refusal described by a non-2xx answer: its JSON error body, or, when the body is not one,
    /// the status and the start of the body text.
    static func refusal(status: Int, body: [UInt8]) -> CtlFailure {
        if let decoded = try? JSON.decode(APIErrorBody.self, from: body) {
            return .refused(status: status, code: decoded.error.code, message: decoded.error.message)
        }
        let text = String(decoding: body.prefix(500), as: UTF8.self).trimmingSpaces
            .replacingNewlines()
        return .refused(
            status: status, code: "http_\(status)", message: text.isEmpty ? "the daemon answered \(status)" : text)
    }
}

/// Exit codes of `sluicectl` (SPEC §7).
enum ExitStatus {
    static let success: Int32 = 0
    /// The daemon refused the request (4xx/5xx), reported failure (`reload` with errors), or answered
    /// with something this CLI cannot read (a malformed HTTP answer or JSON body).
    static let refused: Int32 = 1
    /// Usage errors, including ArgumentParser's own (which would otherwise be EX_USAGE, 64).
    static let usage: Int32 = 2
    /// The daemon could not be reached.
    static let unreachable: Int32 = 3

    /// The exit code for an error thrown out of parsing or `run()`.
    static func code(for error: any Error, command: any ParsableCommand.Type = SluiceCtl.self) -> Int32 {
        switch error {
        case let failure as CtlFailure: return failure.exitCode
        case let clientError as ClientError: return clientError.exitCode
        default:
            let code = command.exitCode(for: error)
            return code == .validationFailure ? usage : code.rawValue
        }
    }
}

/// Writes `text` and a newline to standard error.
func printError(_ text: String) {
    var stream = StandardError()
    print(text, to: &stream)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
        bytes.removeAll()
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
