import Foundation
import Glibc
import Testing

/// Faults a running dataflow must survive. Each test checks the same four things: nothing that
/// was promised is lost (a `backpressure` edge loses nothing, a restart of its consumer included), every loss is counted (sent = received + reported losses, but for what
/// a killed relay held in hand), no process is left, and nothing is left in /dev/shm.
@Suite(.serialized) struct FaultMatrixTests {
    let node = RunHarness.testNode
    static let sent = 2000

    enum Kind: String, CaseIterable {
        /// `operator`: the relay is a runtime node hosting one C operator that forwards.
        case c, python, swift, `operator`
    }

    /// A relay of each kind: forwards what arrives on `in` to `out`.
    func relay(_ kind: Kind, in harness: RunHarness) throws -> String {
        switch kind {
        case .swift:
            return "path: \(RunHarness.binary("relay"))"
        case .c:
            let source = ApusCommand.repository.appendingPathComponent("Tests/CNodes/api_test.c").path
            return """
                build: gcc -std=c99 -Wall -Wextra -Werror -o api_test \(source) $(apus config --cflags --libs)
                    path: ./api_test
                    args: echo
                """
        case .operator:
            let source = ApusCommand.repository.appendingPathComponent("Tests/CNodes/operators/faulty.c").path
            // A single operator: its input and output are the node's own `in` and `out`.
            return """
                operator:
                      id: forward
                      build: gcc -std=c99 -Wall -Werror -shared -fPIC $(apus config --cflags) -o librelay.so \(source)
                      shared-library: ./relay
                """
        case .python:
            try """
            from apus import Node
            node = Node()
            for event in node:
                if event.type == "INPUT":
                    node.send_output("out", event.value, event.metadata)
            """.write(to: harness.folder.appendingPathComponent("relay.py"), atomically: true, encoding: .utf8)
            return "path: relay.py"
        }
    }

    func received(_ result: RunHarness.Result) -> Int? {
        (result.lines(of: "sink").last?.firstMatch(of: /events done inputs (\d+)/)).flatMap { Int($0.1) }
    }

    /// The source every case uses: `sent` messages, one per millisecond, then it exits.
    var source: String {
        """
        nodes:
          - id: source
            path: \(node)
            args: --send \(Self.sent) --on-tick
            inputs: { tick: apus/timer/millis/1 }
            outputs: [out]
        """
    }

    func chain(_ relay: String, policy: String, restart: Bool, hostsOperator: Bool = false) -> String {
        // An operator's inputs and outputs sit under `operator:`, a node's under the node.
        let wiring = hostsOperator ? "  " : ""
        return source + """

              - id: relay
                \(relay)
                \(wiring)inputs: { in: { source: source/out, queue_policy: \(policy) } }
                \(wiring)outputs: [out]
            \(restart ? "    restart_policy: on-failure\n    restart_delay: 0.3" : "")
              - id: sink
                path: \(node)
                args: --print-inputs
                inputs: { in: { source: relay/out, queue_policy: \(policy) } }
            """
    }

    @Test(arguments: Kind.allCases, ["backpressure", "drop_oldest"])
    func sigkillOfARelayWithoutRestartIsCountedAndCleanedUp(_ kind: Kind, _ policy: String) throws {
        try killRelay(kind, policy: policy, restart: false)
    }

    @Test(arguments: Kind.allCases, ["backpressure", "drop_oldest"])
    func sigkillOfARestartingRelayIsCountedAndCleanedUp(_ kind: Kind, _ policy: String) throws {
        try killRelay(kind, policy: policy, restart: true)
    }

    func killRelay(_ kind: Kind, policy: String, restart: Bool) throws {
        let harness = try RunHarness(dataflow: "nodes: []")
        try chain(try relay(kind, in: harness), policy: policy, restart: restart, hostsOperator: kind == .operator)
            .write(to: harness.folder.appendingPathComponent("dataflow.yml"), atomically: true, encoding: .utf8)
        try harness.start()
        // Mid-stream: once messages flow through the relay (builds and start-up may be slow).
        try harness.waitForOutput("[sink] got in 100", timeout: 120)
        let relay = try #require(harness.pid(ofNode: "relay"), "the relay is not running")
        kill(relay, SIGKILL)
        let result = try harness.wait()
        #expect(result.status == (restart ? 0 : 1), "\(result.stderr)")
        let got = try #require(received(result), "\(result.stdout)")
        let reported = result.reportedLosses(of: ["relay", "sink"])
        let missing = Self.sent - got - reported
        // What the relay held in hand when it was killed is lost with it, and only that.
        #expect((0...2).contains(missing), "\(kind) \(policy): received \(got), reported \(reported) lost\n\(result.stderr)")
        if restart && policy == "backpressure" {
            // Promised: what was queued for the dead relay, and what came while it restarted, is kept.
            #expect(reported == 0, "\(kind): \(reported) lost on a backpressure edge\n\(result.stderr)")
        }
        harness.expectClean()
    }

    /// A producer stopped for a second, then continued: it sends late; on backpressure nothing is
    /// lost, and on drop_oldest whatever a slow consumer lets fall is counted.
    @Test(arguments: ["backpressure", "drop_oldest"])
    func aStoppedProducerLosesOnlyWhatIsCounted(_ policy: String) throws {
        try pause("source", policy: policy, expectNoLoss: policy == "backpressure")
    }

    /// A consumer stopped for a second: on backpressure the producer waits and nothing is lost;
    /// on drop_oldest what was evicted is counted.
    @Test(arguments: ["backpressure", "drop_oldest"])
    func aStoppedConsumerLosesOnlyWhatIsCounted(_ policy: String) throws {
        try pause("sink", policy: policy, expectNoLoss: policy == "backpressure")
    }

    func pause(_ target: String, policy: String, expectNoLoss: Bool) throws {
        let harness = try RunHarness(
            dataflow: source + """

                  - id: sink
                    path: \(node)
                    args: --print-inputs
                    inputs: { in: { source: source/out, queue_policy: \(policy) } }
                """)
        try harness.start()
        try harness.waitForOutput("[sink] got in 100", timeout: 120)
        let paused = try #require(harness.pid(ofNode: target))
        kill(paused, SIGSTOP)
        usleep(1_000_000)
        kill(paused, SIGCONT)
        let result = try harness.wait()
        #expect(result.status == 0, "\(result.stderr)")
        let got = try #require(received(result), "\(result.stdout)")
        let reported = result.reportedLosses(of: ["sink"])
        #expect(got + reported == Self.sent, "received \(got), reported \(reported): \(result.stderr)")
        if expectNoLoss { #expect(reported == 0, "\(result.stderr)") }
        harness.expectClean()
    }
}
