#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who may talk to the control socket (SPEC §6): root, our own user, or a member of the socket's group
/// (or of the configured `allowedGroup`). The file mode (0660) is the first gate; this is the second.
public enum PeerCredentials {
    /// Pure decision. `peerGroups` holds the peer's primary group and, when known, its supplementary groups.
    public static func isAllowed(
        peerUID: uid_t, peerGroups: [gid_t], ourEUID: uid_t, socketGroup: gid_t?, allowedGroup: gid_t?
    ) -> Bool {
        if peerUID == 0 || peerUID == ourEUID { return true }
        if let socketGroup, peerGroups.contains(socketGroup) { return true }
        if let allowedGroup, peerGroups.contains(allowedGroup) { return true }
        return false
    }

    /// Supplementary groups of `pid` from `/proc/<pid>/status` (`Groups:` line); empty when unreadable.
    /// Reading by pid can race with the peer exiting; an unreadable entry only narrows access.
    public static func supplementaryGroups(pid: pid_t) -> [gid_t] {
        guard pid > 0, let file = fopen("/proc/\(pid)/status", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("Groups:") {
                return text.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
                    .compactMap { gid_t($0) }
            }
        }
        return []
    }
}
