internal import COpenSSL
import Synchronization

/// The session-ticket keys: one set for the whole process, shared by every listener context and
/// every worker, so a ticket issued on one worker (or by the context before a reload) resumes on
/// any other. Tickets are stateless (the server keeps no session cache).
///
/// The current key encrypts new tickets; the `previousKept` keys before it still decrypt (and
/// such a ticket is renewed under the current key). Rotation is lazy: the first ticket operation
/// after `rotationInterval` makes a fresh key. Keys come from `RAND_bytes`: a 16-byte name, a
/// 32-byte AES-256-CBC key and a 32-byte HMAC-SHA256 key.
///
/// Thread rule: every method may be called from any thread (the state is behind a `Mutex`).
public final class TLSTicketKeys: Sendable {
    /// The keys every `TLSServerSettings` uses unless told otherwise.
    public static let shared = TLSTicketKeys()

    /// 12 hours, in nanoseconds of the monotonic clock.
    public static let defaultRotationInterval: UInt64 = 12 * 3600 * 1_000_000_000
    public static let defaultPreviousKept = 2

    static let nameLength = 16
    static let secretLength = 32
    static let ivLength = 16

    struct Key: Sendable {
        var name: [UInt8]
        var aes: [UInt8]
        var hmac: [UInt8]
    }

    struct State {
        var current: Key?
        var previous: [Key] = []
        var madeAt: UInt64 = 0
    }

    let rotationInterval: UInt64
    let previousKept: Int
    let state = Mutex(State())

    public init(rotationInterval: UInt64 = TLSTicketKeys.defaultRotationInterval,
                previousKept: Int = TLSTicketKeys.defaultPreviousKept) {
        self.rotationInterval = rotationInterval
        self.previousKept = max(0, previousKept)
    }

    /// Makes a fresh current key now; the old current key joins the previous ones.
    public func rotate() {
        let now = Posix.monotonicNanos()
        state.withLock { rotate(&$0, now: now) }
    }

    /// How many keys can decrypt a ticket right now (current plus previous).
    public var keyCount: Int {
        state.withLock { ($0.current == nil ? 0 : 1) + $0.previous.count }
    }

    /// The key to encrypt a new ticket with, rotating first when due; nil when no key could be made.
    func encryptionKey(now: UInt64) -> Key? {
        state.withLock { s in
            if s.current == nil || now &- s.madeAt >= rotationInterval { rotate(&s, now: now) }
            return s.current
        }
    }

    /// The key whose name is the ticket's, and whether it is the current one (else the ticket
    /// should be renewed).
    func decryptionKey(name: UnsafePointer<UInt8>, now: UInt64) -> (key: Key, isCurrent: Bool)? {
        let wanted = UnsafeBufferPointer(start: name, count: Self.nameLength)
        return state.withLock { s in
            if s.current != nil && now &- s.madeAt >= rotationInterval { rotate(&s, now: now) }
            if let c = s.current, c.name.elementsEqual(wanted) { return (c, true) }
            for k in s.previous where k.name.elementsEqual(wanted) { return (k, false) }
            return nil
        }
    }

    private func rotate(_ s: inout State, now: UInt64) {
        guard let fresh = Self.makeKey() else { return }  // RAND failed: keep the old key
        if let old = s.current { s.previous.insert(old, at: 0) }
        if s.previous.count > previousKept { s.previous.removeLast(s.previous.count - previousKept) }
        s.current = fresh
        s.madeAt = now
    }

    private static func makeKey() -> Key? {
        var name = [UInt8](repeating: 0, count: nameLength)
        var aes = [UInt8](repeating: 0, count: secretLength)
        var hmac = [UInt8](repeating: 0, count: secretLength)
        guard RAND_bytes(&name, Int32(clamping: name.count)) == 1, RAND_bytes(&aes, Int32(clamping: aes.count)) == 1,
              RAND_bytes(&hmac, Int32(clamping: hmac.count)) == 1 else { return nil }
        return Key(name: name, aes: aes, hmac: hmac)
    }
}

extension TLSTicketKeys {
    // OSSL_MAC_PARAM_KEY, OSSL_MAC_PARAM_DIGEST and the digest name. StaticString storage is
    // static, so the pointers OSSL_PARAM keeps stay valid (a String's temporary pointer would not).
    private static let macKeyParam: StaticString = "key"
    private static let macDigestParam: StaticString = "digest"
    private static let macDigest: StaticString = "SHA256"

    private static func cString(_ s: StaticString) -> UnsafeMutablePointer<CChar> {
        // OpenSSL only reads these; the mutable pointer type is what OSSL_PARAM_construct_* takes.
        UnsafeMutableRawPointer(mutating: UnsafeRawPointer(s.utf8Start)).assumingMemoryBound(to: CChar.self)
    }

    /// Keys the HMAC-SHA256 of a ticket (EVP_MAC, as `SSL_CTX_set_tlsext_ticket_key_evp_cb(3)` shows).
    private static func setMAC(_ mac: OpaquePointer, key: [UInt8]) -> Bool {
        key.withUnsafeBytes { raw in
            var params = [
                OSSL_PARAM_construct_octet_string(cString(macKeyParam), UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                                  raw.count),
                OSSL_PARAM_construct_utf8_string(cString(macDigestParam), cString(macDigest), 0),
                OSSL_PARAM_construct_end(),
            ]
            return EVP_MAC_CTX_set_params(mac, &params) == 1
        }
    }

    /// The body of the ticket key callback. Encrypting: fill in the key name and a random IV,
    /// set up AES-256-CBC and the HMAC; 1 = go on, 0 = issue no ticket, -1 = error. Decrypting:
    /// 0 = unknown key (full handshake), 1 = current key, 2 = an older key (renew the ticket).
    func ticketCallback(name: UnsafeMutablePointer<UInt8>, iv: UnsafeMutablePointer<UInt8>,
                        cipher: OpaquePointer, mac: OpaquePointer, encrypt: Bool) -> Int32 {
        let now = Posix.monotonicNanos()
        if encrypt {
            guard let key = encryptionKey(now: now) else { return 0 }
            guard RAND_bytes(iv, Int32(clamping: Self.ivLength)) == 1 else { return -1 }
            key.name.withUnsafeBufferPointer { src in
                guard let base = src.baseAddress else { return }
                name.update(from: base, count: min(src.count, Self.nameLength))
            }
            guard EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nil, key.aes, iv) == 1,
                  Self.setMAC(mac, key: key.hmac) else { return -1 }
            return 1
        }
        guard let (key, isCurrent) = decryptionKey(name: name, now: now) else { return 0 }
        guard Self.setMAC(mac, key: key.hmac),
              EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nil, key.aes, iv) == 1 else { return -1 }
        return isCurrent ? 1 : 2
    }
}
