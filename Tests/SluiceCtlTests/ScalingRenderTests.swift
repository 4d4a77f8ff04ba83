import SluiceControl
import Testing
@testable import sluicectl

@Suite struct ScalingRenderTests {
    @Test func countsThenActivities() {
        let g = ScalingInfo(group: "app", desired: 3, actual: 2, min: 1, max: 5, activities: [
            ScalingActivityInfo(id: "1", group: "app", kind: "set_desired", cause: "manual", description: "Setting desired from 2 to 3",
                                result: "successful", startTime: "T1", endTime: "T1"),
            ScalingActivityInfo(id: "2", group: "app", kind: "launch", cause: "manual", description: "Launching a target: 2 of 3",
                                result: "in_progress", startTime: "T2"),
        ])
        #expect(SluiceCtl.Scaling.render([g], last: 10) == """
            GROUP  DESIRED  ACTUAL  MIN  MAX
            app          3       2    1    5

            Activities of app:
            STARTED  RESULT       CAUSE   TARGET  MESSAGE
            T1       successful   manual  -       Setting desired from 2 to 3
            T2       in_progress  manual  -       Launching a target: 2 of 3

            """)
        #expect(SluiceCtl.Scaling.render([g], last: 1).contains("T2") && !SluiceCtl.Scaling.render([g], last: 1).contains("T1 "))
        #expect(SluiceCtl.Scaling.render([], last: 10) == "GROUP  DESIRED  ACTUAL  MIN  MAX\n")
    }
}
