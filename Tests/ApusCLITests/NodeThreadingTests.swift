import Foundation
import Glibc
import Testing

/// A node used from several threads at once, as apus.h allows, in a real dataflow.
@Suite(.serialized) struct NodeThreadingTests {
    let node = RunHarness.testNode

    /// One thread waits in `next()` with no timeout while another sends without pause. The sending
    /// thread reads the control socket on its way; the STOP it finds there must still wake the
    /// waiting thread, so the node ends within the grace period instead of being killed after it.
    @Test func stopReachesAThreadWaitingWithoutTimeoutWhileAnotherSends() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: busy
                    path: \(node)
                    args: --send-from-thread
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    inputs: { in: busy/out }
                """)
        let result = try harness.run(["--stop-after", "1s", "--grace", "5s"], timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("grace period"), "\(result.stderr)")
        let busy = result.lines(of: "busy")
        #expect(busy.contains("stop"), "\(busy)")
        #expect(busy.contains { $0.hasPrefix("sending thread sent ") }, "\(busy)")
        harness.expectClean()
    }
}
