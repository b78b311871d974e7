import Foundation
import Glibc
import Testing

/// Stopping a run from outside: SIGINT (twice) and SIGKILL of `apus run`.
@Suite(.serialized) struct StopSignalTests {
    let node = RunHarness.testNode

    @Test func sigintStopsTheDataflowGracefully() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 100000 --on-tick
                    inputs: { tick: apus/timer/millis/10 }
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --print-inputs
                    inputs: { in: source/out }
                """)
        try harness.start()
        try harness.waitForOutput("got in 3")
        harness.signal(SIGINT)
        let result = try harness.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("stopping (signal 2)"))
        #expect(result.lines(of: "source").contains("stop"))
        #expect(result.lines(of: "sink").last?.hasPrefix("events done") == true)
        harness.expectClean()
    }

    /// A source that sends on every tick for minutes, and a consumer that ignores STOP.
    var stubbornConsumerOfATicker: String {
        """
        nodes:
          - id: stubborn
            path: \(node)
            args: --ignore-stop --print-inputs
            inputs: { in: source/out }
          - id: source
            path: \(node)
            args: --send 100000 --on-tick
            inputs: { tick: apus/timer/millis/10 }
            outputs: [out]
        """
    }

    @Test func secondSigintKillsAtOnce() throws {
        let harness = try RunHarness(dataflow: stubbornConsumerOfATicker)
        try harness.start(["--grace", "60s"])
        try harness.waitForOutput("got in 3")
        harness.signal(SIGINT)
        try harness.waitForOutput("[stubborn] ignoring the end of the event stream")
        harness.signal(SIGINT)
        let started = Date()
        let result = try harness.wait()
        #expect(Date().timeIntervalSince(started) < 10, "the second Ctrl-C did not skip the 60 s grace period")
        #expect(result.status == 1)
        #expect(result.stderr.contains("apus: killing every node"))
        #expect(result.stderr.contains("node 'stubborn' was still running at the second interrupt; killed by signal 9 (SIGKILL)"))
        harness.expectClean()
    }

    @Test func sigkillOfApusRunLeavesNoOrphan() throws {
        let harness = try RunHarness(dataflow: stubbornConsumerOfATicker)
        try harness.start()
        try harness.waitForOutput("got in 3")
        #expect(harness.survivors().count == 4, "apus run, its guardian and two nodes")
        harness.signal(SIGKILL)
        _ = try harness.wait()
        harness.expectClean()
    }
}
