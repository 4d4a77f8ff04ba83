#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Files a config names (certificates, keys, CA bundles): where a relative path points, and
/// whether the file can be read. The loader checks only that much; OpenSSL reads the contents.
enum ConfigFiles {
    /// The absolute directory of the config file `file`, against which relative paths in it
    /// resolve: its directory part, made absolute with the current directory when relative.
    static func directory(of file: String) -> String {
        var directory = ""
        if let slash = file.lastIndex(of: "/") {
            directory = String(file[..<slash])
            if directory.isEmpty { return "/" }
            if directory.hasPrefix("/") { return directory }
        }
        guard let current = currentDirectory() else { return directory.isEmpty ? "." : directory }
        return directory.isEmpty ? current : join(current, directory)
    }

    /// `path` itself when absolute, else `path` under `directory` (without leading `./`).
    static func resolve(_ path: String, in directory: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        var relative = Substring(path)
        while relative.hasPrefix("./") { relative = relative.dropFirst(2).drop { $0 == "/" } }
        return join(directory, String(relative))
    }

    /// Why `path` cannot be read as a regular file (the OS's words, as `No such file or
    /// directory`), or `nil` when it can. Never opens anything but a regular file, so naming a
    /// device or FIFO has no side effect and cannot block.
    static func problemReading(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return osError(errno) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return osError(EISDIR)
        default: return "not a regular file"
        }
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { return osError(errno) }
        close(fd)
        return nil
    }

    private static func join(_ directory: String, _ path: String) -> String {
        directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }

    private static func currentDirectory() -> String? {
        guard let buffer = getcwd(nil, 0) else { return nil }
        defer { free(buffer) }
        return String(cString: buffer)
    }

    private static func osError(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
