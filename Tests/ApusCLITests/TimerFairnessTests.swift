import Foundation
import Glibc
import Testing

/// A timer that is always due must not starve a node's other inputs or its control messages.
@Suite(.serialized) struct TimerFairnessTests {
    let node = RunHarness.testNode

    /// The node's work per tick (30 ms) is longer than its timer's period (20 ms): after each tick
    /// the inbox comes first, so the data input is read, its drops (if any) are counted, and the
    /// STOP sent once the source has ended is served, with no SIGTERM.
    @Test func aTimerFasterThanTheNodesWorkStarvesNothing() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 36 --on-tick
                    inputs: { tick: apus/timer/millis/50 }
                    outputs: [out]
                  - id: slow
                    path: \(node)
                    args: --print-inputs --busy-ms 30
                    inputs:
                      tick: apus/timer/millis/20
                      data: source/out
                """)
        let result = try harness.run(["--stop-after", "15s", "--grace", "5s"], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("grace period"), "\(result.stderr)")
        let slow = result.lines(of: "slow")
        #expect(slow.contains("closed data"), "\(slow.suffix(5))")
        #expect(slow.contains("stop"), "\(slow.suffix(5))")
        let received = slow.filter { $0.hasPrefix("got data ") }.count
        let dropped =
            result.stderr.split(separator: "\n").first { $0.contains("node 'slow' input 'data': ") }
            .flatMap { Int($0.split(separator: ": ").last?.split(separator: " ").first ?? "") } ?? 0
        #expect(received > 0 && received + dropped == 36, "received \(received), dropped \(dropped): \(result.stderr)")
        harness.expectClean()
    }
}
