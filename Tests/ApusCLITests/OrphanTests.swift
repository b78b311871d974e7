import Foundation
import Glibc
import Testing

/// What a node starts (here `sleep 301`, in its process group) never outlives the node or the run.
/// Every process of a run carries the run's tag in its environment, so `expectClean` finds a
/// sleeper left behind.
@Suite(.serialized) struct OrphanTests {
    let node = RunHarness.testNode

    func sleeperDataflow(_ arguments: String) -> String {
        """
        nodes:
          - id: parent
            path: \(node)
            args: --spawn-sleeper \(arguments)
            inputs: { tick: apus/timer/millis/50 }
        """
    }

    @Test func aSubprocessDiesWithTheNodeThatStartedIt() throws {
        let harness = try RunHarness(dataflow: sleeperDataflow("--then-exit"))
        let result = try harness.run()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "parent").first?.hasPrefix("sleeper ") == true)
        harness.expectClean()
    }

    @Test func aSubprocessDiesWhenTheRunStopsCleanly() throws {
        let harness = try RunHarness(dataflow: sleeperDataflow(""))
        let result = try harness.run(["--stop-after", "1s"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "parent").contains("stop"))
        harness.expectClean()
    }

    @Test func aSubprocessDiesWhenApusRunIsKilled() throws {
        let harness = try RunHarness(dataflow: sleeperDataflow(""))
        try harness.start()
        try harness.waitForOutput("[parent] sleeper ")
        usleep(200_000)
        harness.signal(SIGKILL)
        _ = try harness.wait()
        harness.expectClean()
    }
}
