import Foundation
import Glibc
import Testing

/// `input_timeout`: an input that gets nothing for that long is closed, as in dora.
@Suite(.serialized) struct InputTimeoutTests {
    let node = RunHarness.testNode

    @Test func anInputThatGoesQuietIsClosedAfterItsTimeoutAndTheNodeStops() throws {
        // The producer sends three messages at once, then only ticks for ten seconds.
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 3 --fail-after 100 --code 0
                    inputs: { tick: apus/timer/millis/100 }
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --print-inputs
                    inputs:
                      in:
                        source: source/out
                        input_timeout: 0.5
                """)
        let started = Date()
        try harness.start()
        try harness.waitForOutput("[sink] events done", timeout: 8)
        #expect(Date().timeIntervalSince(started) < 8)
        harness.signal(SIGINT)
        let result = try harness.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "sink") == ["got in 0", "got in 1", "got in 2", "closed in", "stop", "events done inputs 3 sent 0"])
        harness.expectClean()
    }
}
