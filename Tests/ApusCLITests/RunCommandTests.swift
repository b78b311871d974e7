import Foundation
import Glibc
import Testing

/// `apus run` end to end: the real binary, real node processes, real shared memory.
@Suite(.serialized) struct RunCommandTests {
    let node = RunHarness.testNode

    /// Asserts what every run must leave behind: no process of the run and no shared memory.
    @Test func minimalExampleRunsToItsEnd() throws {
        let harness = try RunHarness(dataflow: "nodes: []")
        try harness.start(["--no-build"], file: "dataflows/minimal.yml", in: ApusCommand.repository)
        let result = try harness.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "sender") == ["sent 10 messages"])
        let received = result.lines(of: "receiver")
        #expect(received.filter { $0.hasPrefix("count: [") }.count == 10)
        #expect(received.suffix(2).first == "input count closed")
        #expect(received.last?.hasPrefix("received 10 messages, mean latency") == true)
        harness.expectClean()
    }

    @Test func fanOutAndFanInExampleDeliversEveryMessage() throws {
        let harness = try RunHarness(dataflow: "nodes: []")
        try harness.start(["--no-build"], file: "dataflows/fan-out-fan-in.yml", in: ApusCommand.repository)
        let result = try harness.wait()
        #expect(result.status == 0, "\(result.stderr)")
        let collector = result.lines(of: "collector")
        for input in ["from-1", "from-2", "from-3"] {
            // Per edge, in order: 0…9.
            #expect(collector.filter { $0.hasPrefix("\(input): ") }.map { $0.split(separator: " ")[1] } == (0..<10).map { "[\($0)]" })
        }
        #expect(collector.last?.hasPrefix("received 30 messages") == true)
        harness.expectClean()
    }

    @Test func stdoutLinesBecomeMessagesWithSendStdoutAs() throws {
        let harness = try RunHarness(dataflow: "nodes: []")
        try harness.start(["--no-build"], file: "dataflows/long-form-inputs.yml", in: ApusCommand.repository)
        let result = try harness.wait()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "receiver").contains { $0.hasPrefix("log: \"sent 10 messages\"") })
        harness.expectClean()
    }

    @Test func chainOfFiveNodesKeepsOrder() throws {
        var yaml = """
            nodes:
              - id: n1
                path: \(node)
                args: --send 20 --on-tick
                inputs: { tick: apus/timer/millis/5 }
                outputs: [out]

            """
        for index in 2...4 {
            yaml += """
                  - id: n\(index)
                    path: \(RunHarness.binary("relay"))
                    inputs: { in: n\(index - 1)/out }
                    outputs: [out]

                """
        }
        yaml += """
              - id: n5
                path: \(node)
                args: --print-inputs
                inputs: { in: n4/out }
            """
        let harness = try RunHarness(dataflow: yaml)
        let result = try harness.run()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "n5").filter { $0.hasPrefix("got") } == (0..<20).map { "got in \($0)" })
        #expect(result.lines(of: "n5").contains("closed in"))
        harness.expectClean()
    }

    @Test func fiftyNodeDataflow() throws {
        var yaml = """
            nodes:
              - id: source
                path: \(node)
                args: --send 5 --on-tick
                inputs: { tick: apus/timer/millis/20 }
                outputs: [out]
              - id: sink
                path: \(node)
                inputs:

            """
        for index in 1...48 { yaml += "      r\(index): relay-\(index)/out\n" }
        for index in 1...48 {
            yaml += """
                  - id: relay-\(index)
                    path: \(RunHarness.binary("relay"))
                    inputs: { in: source/out }
                    outputs: [out]

                """
        }
        let harness = try RunHarness(dataflow: yaml)
        let result = try harness.run(timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "sink").last == "events done inputs 240 sent 0")
        #expect(result.lines.filter { $0.hasSuffix("relayed 5 messages") }.count == 48)
        harness.expectClean()
    }

    @Test func timerTicksAtItsConfiguredRate() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: ticker
                    path: \(node)
                    inputs: { tick: apus/timer/millis/20 }
                """)
        let result = try harness.run(["--stop-after", "2s"])
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(result.lines(of: "ticker").last)
        let ticks = try #require(Int(summary.split(separator: " ")[3]))
        // 2 s at 50 Hz, minus the start-up before the barrier: 100 ± 20 %.
        #expect((80...120).contains(ticks), "\(ticks) ticks in 2 s at 50 Hz")
        #expect(result.lines(of: "ticker").contains("stop"))
        harness.expectClean()
    }

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
        // The source is done long before the restart, so only the first inbox dropped anything.
        #expect(notes.count == 1, "each inbox's drops are reported once: \(notes)")
        // The restarted sink finds its only input closed and is told to stop instead of waiting.
        #expect(result.lines(of: "sink").contains("closed in"), "\(result.stdout)")
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

    @Test func pythonNodesRunWithPython3InTheDataflowFolder() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: script
                    path: hello.py
                    args: one "two words"
                    env: { GREETING: hello }
                """)
        try """
        import os, sys
        print(os.environ["GREETING"], sys.argv[1:], os.environ["APUS_NODE_ID"], os.getcwd() == os.path.dirname(os.path.abspath(__file__)))
        print("to stderr", file=sys.stderr)
        """.write(to: harness.folder.appendingPathComponent("hello.py"), atomically: true, encoding: .utf8)
        let result = try harness.run()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.lines(of: "script").sorted() == ["hello ['one', 'two words'] script True", "to stderr"])
        harness.expectClean()
    }

    @Test func sigkillOfApusRunLeavesNoOrphan() throws {
        let harness = try RunHarness(dataflow: stubbornConsumerOfATicker)
        try harness.start()
        try harness.waitForOutput("got in 3")
        #expect(harness.survivors().count == 3)
        harness.signal(SIGKILL)
        _ = try harness.wait()
        harness.expectClean()
    }

    @Test func swiftAPICarriesEveryElementTypeMetadataAndZeroCopySamples() throws {
        let api = RunHarness.binary("apus-api-node")
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: producer
                    path: \(api)
                    args: produce
                    outputs: [out]
                  - id: consumer
                    path: \(api)
                    args: consume
                    inputs: { in: { source: producer/out, queue_size: 32, queue_policy: backpressure } }
                """)
        let result = try harness.run()
        #expect(result.status == 0, "\(result.stderr)")
        let consumer = result.lines(of: "consumer")
        #expect(!consumer.contains { $0.hasPrefix("FAIL") }, "\(consumer)")
        let cases = [
            "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32",
            "float64", "bool", "utf8", "parameters", "allocate",
        ]
        #expect(consumer.filter { $0.hasPrefix("ok") && $0 != "ok released" } == cases.map { "ok \($0)" })
        #expect(consumer.filter { $0 == "ok released" }.count == cases.count)
        #expect(consumer.suffix(2) == ["closed in", "events ended"])
        #expect(result.lines(of: "producer").first?.hasPrefix("ok undeclared: output 'nowhere' is not declared") == true)
        harness.expectClean()
    }

    @Test func floodsOfLogLinesAndMessagesAreCarriedOrCountedNeverHang() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: chatty
                    path: \(node)
                    args: --flood 50000 --send 100000 --then-exit
                    outputs: [out]
                  - id: slow
                    path: \(node)
                    inputs: { in: { source: chatty/out, queue_size: 10 } }
                """)
        let result = try harness.run(timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        // Every log line arrives, in order, on the console and in the log file.
        let lines = result.lines(of: "chatty").filter { $0.hasPrefix("flood line") }
        #expect(lines.count == 50000)
        #expect(lines.last == "flood line 49999 with some padding to make it longer")
        #expect(try harness.log(of: "chatty").components(separatedBy: "\n").filter { $0.hasPrefix("flood line") }.count == 50000)
        // drop_oldest: the sender never blocks; every message is received or reported as dropped.
        let summary = try #require(result.lines(of: "slow").last)
        let received = try #require(Int(summary.split(separator: " ")[3]))
        #expect((1...100_000).contains(received), "\(summary)")
        let note = result.stderr.split(separator: "\n").first { $0.hasPrefix("apus: node 'slow' input 'in': ") }
        let dropped = note.flatMap { Int($0.split(separator: " ")[5]) } ?? 0
        #expect(received + dropped == 100_000, "\(summary) / \(note ?? "no drop note")")
        #expect(
            note == nil
                || note!.hasSuffix(
                    "dropped (queue_size 10 full, drop_oldest kept the newest; a larger queue_size or queue_policy: backpressure keeps them all)"
                ))
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
        for (option, value) in [("--grace", "abc"), ("--stop-after", "-1s"), ("--startup-timeout", "10 parsecs")] {
            let result = try ApusCommand.run(["run", "dataflows/minimal.yml", "\(option)=\(value)"])
            #expect(result.status == 64)
            #expect(result.stderr.contains("\(option): '\(value)' is not a duration (write e.g. 500ms, 10s, 2m)"))
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
