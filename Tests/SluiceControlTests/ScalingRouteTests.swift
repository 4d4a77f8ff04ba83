import Foundation
import Testing
@testable import SluiceControl

/// The scaling routes (SPEC §6, §11) over a backend double.
@Suite struct ScalingRouteTests {
    final class ScalingBackend: ControlBackend {
        let inner = FakeBackend()
        func status() -> StatusInfo { inner.status() }
        func nodes() -> [NodeInfo] { inner.nodes() }
        func groups() -> [GroupInfo] { inner.groups() }
        func group(_ name: String) -> GroupInfo? { inner.group(name) }
        func register(group: String, _ r: RegisterRequest) throws(ControlError) -> (created: Bool, target: TargetInfo) {
            try inner.register(group: group, r)
        }
        func deregister(group: String, address: String, wait: Bool, timeout: UInt64?) throws(ControlError) -> TargetInfo {
            try inner.deregister(group: group, address: address, wait: wait, timeout: timeout)
        }
        func update(group: String, address: String, _ r: UpdateRequest) throws(ControlError) -> TargetInfo {
            try inner.update(group: group, address: address, r)
        }
        func reload() -> ReloadResult { inner.reload() }
        func metrics() -> String { "" }
        func scaling(group: String) throws(ControlError) -> ScalingInfo {
            guard group == "web" else { throw ControlError(status: 404, code: "GroupNotFound", message: "no \(group)") }
            return ScalingInfo(group: "web", desired: 2, actual: 1, min: 1, max: 4, activities: [
                ScalingActivityInfo(id: "a-1", group: "web", kind: "launch", cause: "manual", description: "Launching",
                                    result: "in_progress", startTime: "2026-01-01T00:00:00Z")])
        }
        func scale(group: String, desired: Int) throws(ControlError) -> ScalingInfo {
            guard (1...4).contains(desired) else {
                throw ControlError(status: 400, code: "OutOfRange", message: "min 1, max 4")
            }
            var info = try scaling(group: group)
            info.desired = desired
            return info
        }
        func scalingGroups() -> [ScalingInfo] { [(try? scaling(group: "web"))].compactMap { $0 } }
    }

    func answer(_ backend: any ControlBackend, _ method: String, _ target: String, _ body: String = "") -> (Int, [String: Any]) {
        guard case .respond(let r) = ControlRouter(backend: backend).route(
            HTTPRequest(method: method, target: target, body: Array(body.utf8))) else { return (0, [:]) }
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
    }

    @Test func getPutAndList() {
        let b = ScalingBackend()
        let (status, view) = answer(b, "GET", "/v1/target-groups/web/scaling")
        #expect(status == 200)
        #expect(view["desired"] as? Int == 2 && view["actual"] as? Int == 1 && view["min"] as? Int == 1 && view["max"] as? Int == 4)
        let activity = (view["activities"] as? [[String: Any]])?.first
        #expect(activity?["start_time"] as? String == "2026-01-01T00:00:00Z" && activity?["result"] as? String == "in_progress")
        let (put, changed) = answer(b, "PUT", "/v1/target-groups/web/scaling", #"{"desired": 3}"#)
        #expect(put == 200 && changed["desired"] as? Int == 3)
        let (refused, error) = answer(b, "PUT", "/v1/target-groups/web/scaling", #"{"desired": 9}"#)
        #expect(refused == 400 && (error["error"] as? [String: Any])?["code"] as? String == "OutOfRange")
        #expect(answer(b, "PUT", "/v1/target-groups/web/scaling", #"{"count": 3}"#).0 == 400)
        // Only desired can be set: min and max are the file's, and are refused, not ignored.
        let (extra, why) = answer(b, "PUT", "/v1/target-groups/web/scaling", #"{"desired": 2, "min": 0}"#)
        let message = (why["error"] as? [String: Any])?["message"] as? String ?? ""
        #expect(extra == 400 && message.contains("unknown key \"min\""), "\(message)")
        #expect(answer(b, "POST", "/v1/target-groups/web/scaling", #"{"desired": 3}"#).0 == 405)
        let (listed, all) = answer(b, "GET", "/v1/scaling")
        #expect(listed == 200 && (all["groups"] as? [[String: Any]])?.count == 1)
    }

    @Test func backendsWithoutScalingManageNothing() {
        let b = FakeBackend()
        let (status, body) = answer(b, "GET", "/v1/target-groups/web/scaling")
        #expect(status == 409 && (body["error"] as? [String: Any])?["code"] as? String == "NotManaged")
        #expect(answer(b, "GET", "/v1/target-groups/nope/scaling").0 == 404)
        #expect(answer(b, "PUT", "/v1/target-groups/web/scaling", #"{"desired": 1}"#).0 == 409)
        let (listed, all) = answer(b, "GET", "/v1/scaling")
        #expect(listed == 200 && (all["groups"] as? [Any])?.isEmpty == true)
    }
}
