import Foundation
import Synchronization
import SluiceRegistry

/// Collects a watch's events from its thread for the test to inspect.
final class EventLog: Sendable {
    private let events = Mutex<[EtcdWatchEvent]>([])

    var all: [EtcdWatchEvent] { events.withLock { $0 } }

    func append(_ e: EtcdWatchEvent) { events.withLock { $0.append(e) } }

    /// The put and delete events only, as "put key=value" / "delete key".
    var changes: [String] {
        all.compactMap { e in
            switch e {
            case .put(let kv): "put \(kv.key)=\(String(decoding: kv.value, as: UTF8.self))"
            case .delete(let key, _): "delete \(key)"
            default: nil
            }
        }
    }

    /// Polls `condition` over the events until it holds or `seconds` pass.
    @discardableResult
    func wait(seconds: Double = 10, _ condition: ([EtcdWatchEvent]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(all) { return true }
            usleep(5_000)
        }
        return condition(all)
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
