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
        let cases = RunHarness.apiNodeChecks
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
}
