import Foundation
import Glibc
import Testing

/// Nodes that fail, hang, crash or are missing, and dataflows that cannot start: reported, and cleaned up.
@Suite(.serialized) struct NodeFailureTests {
    let node = RunHarness.testNode

    @Test func nodeExitingOneIsReportedAndItsConsumersAreTold() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 10 --on-tick --fail-after 3
                    inputs: { tick: apus/timer/millis/10 }
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --print-inputs
                    inputs: { in: source/out }
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'source' exited with status 1"))
        #expect(result.stderr.contains("last 1 line of its stderr:\n      failing on purpose after 3 inputs"))
        let sink = result.lines(of: "sink")
        #expect(sink.filter { $0.hasPrefix("got") } == ["got in 0", "got in 1", "got in 2"])
        #expect(sink.contains("node-failed source [in]: node 'source' exited with status 1"))
        let failed = try #require(sink.firstIndex { $0.hasPrefix("node-failed") })
        let closed = try #require(sink.firstIndex(of: "closed in"))
        #expect(failed < closed)
        #expect(try harness.log(of: "source").contains("failing on purpose after 3 inputs"))
        harness.expectClean()
    }

    @Test func nodeKilledBySegfaultIsReportedWithTheSignal() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: crasher
                    path: \(node)
                    inputs: { tick: apus/timer/millis/10 }
                    args: --segv-after 2
                    env: { SWIFT_BACKTRACE: enable=no }
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'crasher' killed by signal 11 (SIGSEGV)"))
        #expect(result.stderr.contains("crashing on purpose after 2 inputs"))
        harness.expectClean()
    }

    @Test func nodeThatNeverConnectsFailsTheStartNamingIt() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: mute
                    path: \(node)
                    args: --no-connect
                  - id: fine
                    path: \(node)
                    inputs: { tick: apus/timer/millis/10 }
                """)
        let result = try harness.run(["--startup-timeout", "1s", "--grace", "1s"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'mute' never connected to the dataflow within the 1 s startup timeout"))
        #expect(!result.stderr.contains("node 'fine'"))
        // The barrier never opened, so the timer of `fine` never ticked.
        #expect(result.lines(of: "fine").last == "events done inputs 0 sent 0")
        harness.expectClean()
    }

    /// A node that never connected cannot get STOP: it is stopped at once, not after the grace
    /// period, and `apus run` waits for the others without spinning on the expired start deadline.
    @Test func aNodeThatNeverConnectsIsStoppedAtOnceAndNothingSpins() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: mute
                    path: \(node)
                    args: --no-connect
                  - id: stubborn
                    path: \(node)
                    args: --ignore-stop
                """)
        let started = Date()
        let result = try harness.run(["--startup-timeout", "1s", "--grace", "3s"])
        let elapsed = Date().timeIntervalSince(started)
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'mute' never connected"), "\(result.stderr)")
        // 1 s to the start deadline, 3 s of grace for the stubborn node, 2 s of SIGTERM.
        #expect(elapsed < 8, "\(elapsed) s")
        #expect(result.cpuSeconds < 0.6, "apus run used \(result.cpuSeconds) s of CPU in \(elapsed) s")
        let mute = result.stderr.split(separator: "\n").first { $0.contains("node 'mute'") && $0.contains("grace period") }
        #expect(mute == nil, "the node that never connected waited for the grace period: \(result.stderr)")
        harness.expectClean()
    }

    /// A node may exit with control messages unread (here the STOP sent when its producer ended):
    /// its socket then resets, which is a normal end, not an error to report.
    @Test func nodeExitingWithUnreadControlMessagesEndsQuietly() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 3 --then-exit
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --exit-after-ms 500
                    inputs: { in: source/out }
                """)
        let result = try harness.run()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "sink") == ["exiting without reading"])
        #expect(!result.stderr.contains("recvmsg"), "\(result.stderr)")
        #expect(!result.stderr.contains("closing its control socket"), "\(result.stderr)")
        harness.expectClean()
    }

    @Test func nodeIgnoringStopIsTerminatedAfterTheGracePeriod() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: stubborn
                    path: \(node)
                    args: --ignore-stop
                    inputs: { tick: apus/timer/millis/50 }
                """)
        let started = Date()
        let result = try harness.run(["--stop-after", "0.5s", "--grace", "1s"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'stubborn' did not stop within the 1 s grace period; killed by signal 15 (SIGTERM)"))
        #expect(result.lines(of: "stubborn").contains("ignoring the end of the event stream"))
        #expect(Date().timeIntervalSince(started) < 20)
        harness.expectClean()
    }

    @Test func restartOnFailureHonoursMaxRestartsAndTheConsumerKeepsReceiving() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: flaky
                    path: \(node)
                    args: --send 100 --on-tick --fail-after 3
                    inputs: { tick: apus/timer/millis/10 }
                    outputs: [out]
                    restart_policy: on-failure
                    max_restarts: 2
                    restart_delay: 0.05
                  - id: sink
                    path: \(node)
                    args: --print-inputs
                    inputs: { in: flaky/out }
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'flaky' exited with status 1; restarting (1 of 2) in 0.05 s"))
        #expect(result.stderr.contains("node 'flaky' exited with status 1; restarting (2 of 2) in 0.1 s"))
        #expect(result.stderr.contains("node 'flaky' exited with status 1 after 2 restarts"))
        // Three incarnations, three messages each; the sink ran through all of them.
        #expect(
            result.lines(of: "sink").filter { $0.hasPrefix("got") }
                == Array(repeating: ["got in 0", "got in 1", "got in 2"], count: 3).flatMap { $0 })
        #expect(result.lines(of: "sink").contains("closed in"))
        harness.expectClean()
    }

    @Test func restartedConsumerIsWiredAgain() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 40 --on-tick
                    inputs: { tick: apus/timer/millis/10 }
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --print-inputs --fail-after 5
                    inputs: { in: source/out }
                    restart_policy: on-failure
                    max_restarts: 1
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'sink' exited with status 1; restarting (1 of 1)"))
        let got = result.lines(of: "sink").filter { $0.hasPrefix("got") }
        // Five before the failure and five after the restart, each run in order.
        #expect(got.count == 10, "\(got)")
        #expect(got.prefix(5) == ["got in 0", "got in 1", "got in 2", "got in 3", "got in 4"])
        harness.expectClean()
    }

    @Test func dropsOfARestartedConsumerAreReportedOncePerInbox() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 20000 --then-exit
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --fail-after 3
                    inputs: { in: { source: source/out, queue_size: 2 } }
                    restart_policy: on-failure
                    max_restarts: 1
                    restart_delay: 1
                """)
        let result = try harness.run()
        #expect(result.stderr.contains("node 'sink' exited with status 1; restarting (1 of 1)"), "\(result.stderr)")
        let notes = result.stderr.split(separator: "\n").filter { $0.hasPrefix("apus: node 'sink' input 'in': ") }
        #expect(!notes.isEmpty, "\(result.stderr)")
        #expect(notes.count == 1, "each input's losses are reported once: \(notes)")
        // The source ended while the sink waited to restart: restarted, it would only get STOP.
        #expect(result.stderr.contains("node 'sink' is not restarted: every node it takes input from has ended"), "\(result.stderr)")
        harness.expectClean()
    }

    /// A node waiting out a long restart delay, whose producer has ended meanwhile, is not
    /// restarted (it would only get STOP), and the run does not wait for it.
    @Test func aNodeWithNothingLeftToReceiveIsNotRestartedLate() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(node)
                    args: --send 5 --on-tick
                    inputs: { tick: apus/timer/millis/100 }
                    outputs: [out]
                  - id: sink
                    path: \(node)
                    args: --fail-after 1
                    inputs: { in: source/out }
                    restart_policy: on-failure
                    restart_delay: 60
                """)
        let started = Date()
        let result = try harness.run(timeout: 50)
        #expect(Date().timeIntervalSince(started) < 20, "\(result.stderr)")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("node 'sink' is not restarted: every node it takes input from has ended"), "\(result.stderr)")
        harness.expectClean()
    }

    @Test func failingBuildStepStopsTheRunNamingNodeAndCommand() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: broken
                    build: echo compiling; echo 'no such header' >&2; exit 3
                    path: \(node)
                """)
        try harness.start()
        let result = try harness.wait()
        #expect(result.status == 1)
        #expect(result.stderr.contains("build of node 'broken' failed (exited with status 3): echo compiling;"))
        #expect(result.lines(of: "broken") == ["build: echo compiling; echo 'no such header' >&2; exit 3", "compiling", "no such header"])
        harness.expectClean()
    }

    @Test func nodeWhoseProgramIsMissingAfterItsBuildIsReported() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: ghost
                    build: "true"
                    path: not-built-yet
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 'ghost': cannot start \(harness.folder.path)/not-built-yet: No such file or directory"))
        harness.expectClean()
    }

    @Test func sendingOnAnUndeclaredOutputIsAnError() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: confused
                    path: \(node)
                    args: --send 1
                    outputs: [other]
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(
            result.lines(of: "confused") == [
                "test-node: output 'out' is not declared by this node in the dataflow (declared outputs: 'other')"
            ])
        harness.expectClean()
    }

    @Test func invalidDataflowStartsNothing() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: a
                    path: \(node)
                    inputs: { in: ghost/out }
                """)
        let result = try harness.run()
        #expect(result.status == 1)
        #expect(result.stderr.contains("dataflow.yml:4:"))
        #expect(result.stderr.contains("nothing was started"))
        #expect(!FileManager.default.fileExists(atPath: harness.folder.appendingPathComponent("out").path))
    }

    @Test func malformedDurationsAreRefusedBeforeAnythingStarts() throws {
        let cases = [
            ("--grace", "abc"), ("--stop-after", "-1s"), ("--startup-timeout", "10 parsecs"), ("--grace", "1e19"), ("--stop-after", "200h"),
        ]
        for (option, value) in cases {
            let result = try ApusCommand.run(["run", "dataflows/minimal.yml", "\(option)=\(value)"])
            #expect(result.status == 64)
            #expect(result.stderr.contains("\(option): '\(value)' is not a duration of at most a week (write e.g. 500ms, 10s, 2m)"))
            #expect(result.stdout.isEmpty)
        }
    }

    @Test func nodeStartedByHandSaysItNeedsApusRun() throws {
        let result = try ApusCommand.run(program: node, [])
        let output = result.stdout
        #expect(result.status == 2)
        #expect(output.contains("apus-test-node is an Apus node: it runs inside a dataflow, started by `apus run dataflow.yml`"))
    }
}
