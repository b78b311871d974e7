import Foundation
import Glibc
import Testing

/// Runtime nodes: operators in shared libraries, with dora's C operator ABI and with Apus's.
@Suite(.serialized) struct OperatorTests {
    static let doraSources = ApusCommand.repository.appendingPathComponent("Tests/CNodes/dora").path
    static let operatorSources = ApusCommand.repository.appendingPathComponent("Tests/CNodes/operators").path
    /// dora's sources include "node_api.h" and "operator_api.h": Apus's are in include/dora.
    static let doraFlags = "-std=c99 -Wall -Wextra -Werror -I$(apus config --include-dir)/dora"

    /// dora's example shape: its C node (a counter byte and a message on each tick), a runtime
    /// node hosting one operator (`id`, built by `build`, fed from `input`, sending on `output`),
    /// and a C sink that prints what that output sends.
    static func doraDataflow(operator id: String, build: String, input: String, output: String) -> String {
        """
        nodes:
          - id: c_node
            build: gcc \(doraFlags) -o c_node \(doraSources)/node.c $(apus config --libs)
            path: ./c_node
            inputs: { tick: dora/timer/millis/20 }
            outputs: [counter, message]
          - id: runtime-node
            operators:
              - id: \(id)
                build: \(build)
                shared-library: ./operator
                inputs: { \(input): c_node/\(input) }
                outputs: [\(output)]
          - id: c_sink
            build: gcc \(doraFlags) -o c_sink \(doraSources)/counter_sink.c $(apus config --libs)
            path: ./c_sink
            inputs: { \(output): runtime-node/\(id)/\(output) }
        """
    }

    /// dora's c-dataflow, in its shape: a C node, a runtime node with a dora C operator, a C sink.
    @Test func aDoraCOperatorRunsUnchanged() throws {
        let harness = try RunHarness(
            dataflow: Self.doraDataflow(
                operator: "c_operator", build: "gcc \(Self.doraFlags) -shared -fPIC -o liboperator.so \(Self.doraSources)/operator.c",
                input: "message", output: "counter"))
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let received = result.lines(of: "c_sink").filter { $0.hasPrefix("C sink received: ") }
        #expect(received == (1...20).map { "C sink received: The current counter value is \($0)" }, "\(result.stdout)")
        let operatorLines = result.lines(of: "runtime-node")
        #expect(operatorLines.contains("C operator received message `message 20`, counter: 20"), "\(result.stdout)")
        #expect(operatorLines.contains("C operator received stop event"), "\(result.stdout)")
        #expect(operatorLines.last == "C operator dropped after 20 messages", "\(result.stdout)")
        harness.expectClean()
    }
}

extension OperatorTests {
    /// dora's C++ operator over the C API (examples/c++-dataflow/operator-c-api, in its shape).
    @Test func aDoraCPlusPlusOperatorRunsUnchanged() throws {
        let build = "g++ -std=c++17 -Wall -Werror -I$(apus config --include-dir)/dora -shared -fPIC -o liboperator.so"
        let harness = try RunHarness(
            dataflow: Self.doraDataflow(
                operator: "cxx_operator", build: "\(build) \(Self.doraSources)/operator.cc", input: "counter", output: "half-status"))
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let operatorLines = result.lines(of: "runtime-node")
        #expect(operatorLines.filter { $0 == "C++ operator received `counter` of 1 bytes" }.count == 20, "\(result.stdout)")
        #expect(operatorLines.last == "C++ operator dropped after 20 inputs", "\(result.stdout)")
        #expect(result.lines(of: "c_sink").last == "sink: 20 messages", "\(result.stdout)")
        harness.expectClean()
    }
}

/// Apus's operator ABI: a chain in one runtime node, and operators that fail in every way.
@Suite(.serialized) struct ApusOperatorTests {
    static let faulty = ApusCommand.repository.appendingPathComponent("Tests/CNodes/operators/faulty.c").path

    @Test func theOperatorChainExampleRuns() throws {
        let example = ApusCommand.repository.appendingPathComponent("dataflows/operators")
        let harness = try RunHarness(dataflow: "nodes: []")
        for file in ["dataflow.yml", "source.c", "stage.c", "sink.c"] {
            let target = harness.folder.appendingPathComponent(file)
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.copyItem(at: example.appendingPathComponent(file), to: target)
        }
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let printed = result.lines(of: "sink").filter { !$0.hasPrefix("build: ") }
        #expect(printed == (1...20).map { "value \(2 * $0 + 1)" } + ["received 20"], "\(result.stdout)")
        harness.expectClean()
    }

    /// A source of 10 messages, a runtime node with the faulty operator built with `flags`, and
    /// a second, healthy operator beside it that must keep running.
    func run(_ flags: String) throws -> RunHarness.Result {
        let build = "mkdir -p build && gcc -std=c99 -Wall -Werror -shared -fPIC $(apus config --cflags) -o build"
        let harness = try RunHarness(
            dataflow: """
                nodes:
                \(RunHarness.tickingSource())
                  - id: runtime
                    operators:
                      - id: faulty
                        build: \(build)/libfaulty.so \(flags) \(Self.faulty)
                        shared-library: build/faulty
                        inputs: { in: source/out }
                        outputs: [out]
                      - id: healthy
                        build: \(build)/libhealthy.so \(Self.faulty)
                        shared-library: build/healthy
                        inputs: { in: source/out }
                        outputs: [out]
                  - id: sink
                    path: \(RunHarness.testNode)
                    inputs: { in: runtime/healthy/out }
                """)
        try harness.start()
        let result = try harness.wait(timeout: 120)
        harness.expectClean()
        return result
    }

    /// Operators with no edge between them run on threads of their own: one that takes 2 s over a
    /// message does not hold up the other's stream.
    @Test func aSlowOperatorDoesNotDelayAnother() throws {
        let build = "gcc -std=c99 -Wall -Werror -shared -fPIC $(apus config --cflags) -o"
        let harness = try RunHarness(
            dataflow: """
                nodes:
                \(RunHarness.tickingSource())
                  - id: runtime
                    operators:
                      - id: slow
                        build: \(build) libslow.so -DFAULT_SLOW \(Self.faulty)
                        shared-library: ./slow
                        inputs: { in: source/out }
                        outputs: [out]
                      - id: fast
                        build: \(build) libfast.so \(Self.faulty)
                        shared-library: ./fast
                        inputs: { in: source/out }
                        outputs: [out]
                  - id: sink
                    path: \(RunHarness.testNode)
                    args: --print-inputs
                    inputs: { in: runtime/fast/out }
                """)
        try harness.start()
        // The source has sent its last message (0.2 s after its first, when the slow one began
        // its 2 s): the fast operator's copy of it must follow at once, not after those 2 s.
        let delay = try harness.seconds(from: "[source] events done", until: ["[sink] got in 9"])
        #expect(delay < 1.0, "the fast operator's last message came \(delay) s after it was sent")
        let result = try harness.wait(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        harness.expectClean()
    }

    @Test func anOperatorThatReturnsAnErrorIsReportedAndTheOthersRunOn() throws {
        let result = try run("-DFAULT_ERROR")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(
            result.stderr.contains("[runtime] apus: operator 'faulty' of node 'runtime' failed: the third message is one too many")
                || result.stdout.contains("[runtime] apus: operator 'faulty' of node 'runtime' failed: the third message is one too many"),
            "\(result.stdout)\n\(result.stderr)")
        #expect(result.lines(of: "runtime").contains("dropped after 10 messages"), "the healthy one: \(result.stdout)")
        #expect(result.lines(of: "sink").last?.contains("events done inputs 10") == true, "\(result.stdout)")
    }

    @Test func anOperatorThatCrashesIsNamedWithItsInput() throws {
        let result = try run("-DFAULT_SEGV")
        #expect(result.status == 1, "\(result.stderr)")
        let output = result.stdout + result.stderr
        #expect(output.contains("apus: operator 'faulty' of node 'runtime' crashed while handling input 'in'"), "\(output)")
        #expect(result.stderr.contains("node 'runtime' killed by signal 11 (SIGSEGV)"), "\(result.stderr)")
    }

    @Test func stopAllFromAnOperatorStopsTheDataflow() throws {
        let result = try run("-DFAULT_STOP_ALL")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains("node 'runtime': operator 'faulty' asked to stop the dataflow (STOP_ALL); stopping the dataflow"),
            "\(result.stderr)")
    }

    @Test func aLibraryWithoutOnEventIsNamedWithTheSymbol() throws {
        let result = try run("-DFAULT_NO_ON_EVENT")
        #expect(result.status == 1, "\(result.stderr)")
        let output = result.stdout + result.stderr
        #expect(output.contains("libfaulty.so' has no on_event function: it defines neither apus_operator_on_event"), "\(output)")
        #expect(result.lines(of: "runtime").contains("dropped after 10 messages"), "the healthy one: \(result.stdout)")
    }

    @Test func aMissingLibraryIsNamedAfterTheBuild() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: runtime
                    operators:
                      - id: ghost
                        build: "true"
                        shared-library: build/ghost
                        inputs: { tick: apus/timer/millis/20 }
                """)
        try harness.start()
        let result = try harness.wait(timeout: 60)
        #expect(result.status == 1, "\(result.stderr)")
        let output = result.stdout + result.stderr
        #expect(output.contains("operator 'ghost' of node 'runtime': cannot load '\(harness.folder.path)/build/libghost.so'"), "\(output)")
        harness.expectClean()
    }

    /// Blocks from an output's allocator are the samples themselves: the receiver reads the very
    /// bytes the operator wrote (same memfd inode and offset in both processes); a stand-in
    /// third-party library allocates, grows, shrinks and frees through the callbacks only; misuse
    /// gets error codes.
    @Test func allocatorBlocksArriveZeroCopyAndMisuseIsRefused() throws {
        let sources = ApusCommand.repository.appendingPathComponent("Tests/CNodes/operators").path
        let flags = "-std=c99 -Wall -Wextra -Werror -I\(sources) $(apus config --cflags)"
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(RunHarness.testNode)
                    args: --send 5 --on-tick
                    inputs: { tick: apus/timer/millis/20 }
                    outputs: [out]
                  - id: runtime
                    operators:
                      - id: allocating
                        build: gcc \(flags) -shared -fPIC -o liballocating.so \(sources)/allocating.c
                        shared-library: ./allocating
                        inputs: { in: source/out }
                        outputs: [direct, library]
                  - id: sink
                    build: gcc \(flags) -o sink \(sources)/allocation_sink.c $(apus config --libs)
                    path: ./sink
                    inputs:
                      direct: { source: runtime/allocating/direct, queue_policy: backpressure }
                      library: { source: runtime/allocating/library, queue_policy: backpressure }
                """)
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let runtime = result.lines(of: "runtime")
        #expect(runtime.contains("misuse: ok"), "\(result.stdout)")
        #expect(!runtime.contains("sending a block twice was not refused"), "\(result.stdout)")
        let sent = runtime.compactMap { $0.firstMatch(of: /sent (\d+) at inode (\d+) offset (\d+) in (.*)/) }
        let received = result.lines(of: "sink").compactMap {
            $0.firstMatch(of: /received (\d+) at inode (\d+) offset (\d+) in (.*), intact/)
        }
        #expect(sent.count == 5 && received.count == 5, "\(result.stdout)")
        for (out, back) in zip(sent, received) {
            #expect(out.1 == back.1 && out.2 == back.2 && out.3 == back.3, "\(out.0) / \(back.0)")
            #expect(out.4.contains("memfd:apus-pool-runtime") && back.4.contains("memfd:apus-pool-runtime"), "\(out.0) / \(back.0)")
        }
        let texts = result.lines(of: "sink").filter { $0.hasPrefix("library text of ") }
        #expect(texts.count == 5 && texts.allSatisfy { $0.hasSuffix("tem 599`") }, "\(result.stdout)")
        // 600 items outgrow the first pool's 4 KiB slots: realloc moved the text to a larger class.
        #expect(runtime.contains { $0.hasPrefix("library: ") && $0.hasSuffix("moved at least once") }, "\(result.stdout)")
        harness.expectClean()
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
