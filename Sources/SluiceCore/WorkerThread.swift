#if canImport(Glibc)
import Glibc
#endif

/// A joinable pthread running one closure: workers and the control loop each get one.
/// Only `Sendable` values cross into the thread; each thread builds its own loop inside.
public struct WorkerThread: Sendable {
    private let handle: pthread_t

    /// Box carrying the body through pthread's `void *` argument: retained once here,
    /// released once by the thread.
    private final class Box: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    public init(name: String, body: @escaping @Sendable () -> Void) throws(Errno) {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var tid = pthread_t()
        let r = pthread_create(&tid, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            Posix.setThreadName(box.name)
            box.body()
            return nil
        }, box)
        if r != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(r)
        }
        handle = tid
    }

    /// Waits for the thread to return.
    public func join() {
        _ = pthread_join(handle, nil)
    }
}
