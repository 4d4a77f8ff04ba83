internal import COpenSSL

/// Reading OpenSSL's per-thread error queue: text for setup errors and logs, and the
/// classification of a failed handshake into a `TLSFailure`.
enum TLSErrorQueue {
    /// The reason text of the oldest queued error (e.g. "no start line"); empties the queue.
    static func takeReason() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "unknown error" }
        if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
        return text(code)
    }

    /// OpenSSL's full line for an error code, e.g. `error:0A00010B:SSL routines::wrong version number`.
    static func text(_ code: UInt) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the oldest queued error says a private key does not belong to its certificate.
    static func firstIsKeyMismatch() -> Bool {
        let code = ERR_peek_error()
        guard ERR_GET_LIB(code) == ERR_LIB_X509 else { return false }
        let reason = ERR_GET_REASON(code)
        return reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH
    }

    /// The failure an SSL-library reason code stands for, nil when it is not one we name.
    static func failure(forReason code: UInt) -> TLSFailure? {
        guard ERR_GET_LIB(code) == ERR_LIB_SSL else { return nil }
        switch ERR_GET_REASON(code) {
        case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, SSL_R_NO_PROTOCOLS_AVAILABLE,
             SSL_R_VERSION_TOO_LOW, SSL_R_VERSION_TOO_HIGH:
            return .protocolVersion
        case SSL_R_NO_SHARED_CIPHER, SSL_R_NO_SHARED_GROUPS, SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS,
             SSL_R_NO_CIPHERS_AVAILABLE:
            return .noSharedCipher
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
            return .noClientCertificate
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return .verifyFailed
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
             SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED, SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED,
             SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, SSL_R_TLSV1_ALERT_UNKNOWN_CA,
             SSL_R_TLSV1_ALERT_ACCESS_DENIED:
            return .badCertificate
        case SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST, SSL_R_WRONG_VERSION_NUMBER:
            // WRONG_VERSION_NUMBER on the first record is OpenSSL's "doesn't look like TLS".
            return .notTLS
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return .peerClosed
        default:
            return nil
        }
    }
}
