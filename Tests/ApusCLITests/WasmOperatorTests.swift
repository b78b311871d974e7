import Foundation
import Glibc
import Testing

/// Wasm operators: a guest that forwards, and hostile guests, each contained: the runtime and a
/// sibling operator keep running, and the failure is named with node, operator and reason.
@Suite(.serialized) struct WasmOperatorTests {
    static let guest = ApusCommand.repository.appendingPathComponent("Tests/WasmGuests/guest.c").path
    /// clang for wasm32 with the guest header (the Swift toolchain's clang has the target and wasm-ld).
    static let compile = "apus wasm-cc"

    /// 10 messages into a runtime node with the guest built with `flags` and a plain sibling, whose
    /// output a sink counts.
    func run(_ flags: String, limits: String = "", keys: [String] = [], sinkOn: String = "sibling") throws -> RunHarness.Result {
        let extra = (limits.isEmpty ? [] : ["limits: \(limits)"]) + keys
        let harness = try RunHarness(
            dataflow: """
                nodes:
                \(RunHarness.tickingSource(millis: 10))
                  - id: runtime
                    operators:
                      - id: guest
                        build: \(Self.compile) \(flags) -o guest.wasm \(Self.guest)
                        wasm: guest.wasm
                        inputs: { in: source/out }
                        outputs: [out]
                        \(extra.joined(separator: "\n        "))
                      - id: sibling
                        build: \(Self.compile) -o sibling.wasm \(Self.guest)
                        wasm: sibling.wasm
                        inputs: { in: source/out }
                        outputs: [out]
                  - id: sink
                    path: \(RunHarness.testNode)
                    args: --print-inputs
                    inputs: { in: runtime/\(sinkOn)/out }
                """)
        try harness.start()
        let result = try harness.wait(timeout: 120)
        harness.expectClean()
        return result
    }

    func expectContained(_ result: RunHarness.Result, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let output = result.stdout + result.stderr
        #expect(result.status == 1, "\(output)", sourceLocation: sourceLocation)
        #expect(output.contains("apus: operator 'guest' of node 'runtime'"), "\(output)", sourceLocation: sourceLocation)
        #expect(output.contains(reason), "\(output)", sourceLocation: sourceLocation)
        // The sibling, in the same process, handled all ten.
        #expect(result.lines(of: "sink").last == "events done inputs 10 sent 0", "\(output)", sourceLocation: sourceLocation)
    }

    /// dataflows/wasm-filters.yml: a C camera, a threshold and a router in Wasm, a C sink.
    @Test func theWasmExampleRuns() throws {
        try runExample()
    }

    /// The same example with the threshold written in Rust (dataflows/wasm/threshold.rs, built by
    /// Debian's rustc, which .ci/run installs) gives the same masks.
    @Test func theRustThresholdGivesTheSameMasks() throws {
        try runExample(
            threshold: (
                "apus wasm-cc wasm/threshold.c",
                "/usr/bin/rustc --target wasm32-unknown-unknown --crate-type cdylib -O wasm/threshold.rs"
            ))
    }

    func runExample(threshold replacement: (String, String)? = nil) throws {
        let example = ApusCommand.repository.appendingPathComponent("dataflows")
        let harness = try RunHarness(dataflow: "nodes: []")
        try FileManager.default.createDirectory(at: harness.folder.appendingPathComponent("wasm"), withIntermediateDirectories: true)
        for file in ["wasm-filters.yml", "wasm/source.c", "wasm/threshold.c", "wasm/threshold.rs", "wasm/router.c", "wasm/sink.c"] {
            try FileManager.default.copyItem(at: example.appendingPathComponent(file), to: harness.folder.appendingPathComponent(file))
        }
        if let (original, substitute) = replacement {
            let file = harness.folder.appendingPathComponent("wasm-filters.yml")
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.contains(original))
            try text.replacingOccurrences(of: original, with: substitute).write(to: file, atomically: true, encoding: .utf8)
        }
        try harness.start(file: "wasm-filters.yml")
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let sink = result.lines(of: "sink").filter { !$0.hasPrefix("build: ") }
        #expect(sink.last == "received 20 masks", "\(result.stdout)")
        #expect(sink.contains("even frame 0: 1488 of 3072 pixels set") && sink.contains("odd frame 19: 1536 of 3072 pixels set"), "\(sink)")
        #expect(sink.filter { $0.hasPrefix("even ") }.count == 10 && sink.filter { $0.hasPrefix("odd ") }.count == 10, "\(sink)")
        harness.expectClean()
    }

    @Test func aGuestForwardsWithItsElementType() throws {
        let result = try run("")
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.lines(of: "sink").last == "events done inputs 10 sent 0", "\(result.stdout)")
    }

    /// Every element type, a shape and every kind of parameter pass through a Wasm operator: the
    /// API node's consumer checks each message as if it came from the producer itself.
    @Test func everyElementTypeShapeAndParameterRoundTrips() throws {
        try roundTrip(flags: "-DFORWARD")
    }

    /// A guest reads its input's shape, parameters of every type and id through apus.shape, the
    /// apus.param_ functions and apus.input_id.
    @Test func aGuestReadsShapeParametersAndItsInputID() throws {
        let result = try roundTrip(flags: "-DFORWARD -DINSPECT")
        let logged = result.stdout.split(separator: "\n").map { String($0) }
        let lines = [
            "rank 2", "dim0 2", "dim1 3", "count -42", "ratio x100 25", "ratio is no int 0", "input id length 2", "name camera-1", "flag 1",
            "counts 3", "counts[last] 3", "ratios 2", "ratios[0] x100 50", "flags 2", "flags[1] 0", "names a|bc|",
        ]
        for line in lines {
            #expect(logged.contains { $0.hasSuffix("runtime/forward: \(line)") }, "\(line): \(result.stdout)")
        }
    }

    /// A guest sends with a shape and parameters of its own, of every type (apus.set_shape and the
    /// set_ functions), and the next operator reads them.
    @Test func aGuestSendsWithItsOwnShapeAndParameters() throws {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(RunHarness.testNode)
                    args: --send 3 --on-tick
                    inputs: { tick: apus/timer/millis/10 }
                    outputs: [out]
                  - id: runtime
                    operators:
                      - id: annotate
                        build: \(Self.compile) -DANNOTATE -o annotate.wasm \(Self.guest)
                        wasm: annotate.wasm
                        inputs: { in: source/out }
                        outputs: [out]
                      - id: inspect
                        build: \(Self.compile) -DINSPECT -o inspect.wasm \(Self.guest)
                        wasm: inspect.wasm
                        inputs: { in: runtime/annotate/out }
                        outputs: [out]
                """)
        try harness.start()
        let result = try harness.wait(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let lines = [
            "rank 2", "dim0 1", "dim1 1", "count -42", "ratio x100 25", "name wasm", "flag 1", "counts 3", "counts[last] -9", "ratios 2",
            "ratios[0] x100 150", "flags 2", "flags[1] 1", "names ab||cde|",
        ]
        for line in lines {
            #expect(result.stdout.contains("runtime/inspect: \(line)\n"), "\(line): \(result.stdout)")
        }
        harness.expectClean()
    }

    @discardableResult
    func roundTrip(flags: String) throws -> RunHarness.Result {
        let api = RunHarness.binary("apus-api-node")
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: producer
                    path: \(api)
                    args: produce
                    outputs: [out]
                  - id: runtime
                    operator:
                      id: forward
                      build: \(Self.compile) \(flags) -o forward.wasm \(Self.guest)
                      wasm: forward.wasm
                      inputs: { in: { source: producer/out, queue_size: 32, queue_policy: backpressure } }
                      outputs: [out]
                  - id: consumer
                    path: \(api)
                    args: consume
                    inputs: { in: { source: runtime/out, queue_size: 32, queue_policy: backpressure } }
                """)
        let result = try harness.run(timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let consumer = result.lines(of: "consumer")
        #expect(!consumer.contains { $0.hasPrefix("FAIL") }, "\(consumer)")
        let cases = RunHarness.apiNodeChecks
        #expect(consumer.filter { $0.hasPrefix("ok") && $0 != "ok released" } == cases.map { "ok \($0)" }, "\(consumer)")
        harness.expectClean()
        return result
    }

    /// restart_policy on a Wasm operator: each trap (every third message of an instance) gets a
    /// fresh instance; with max_restarts it stays stopped once they are used up.
    @Test func aFailedWasmOperatorIsRestartedWithAFreshInstance() throws {
        let always = try run("-DOUT_OF_BOUNDS", keys: ["restart_policy: on-failure"], sinkOn: "guest")
        #expect(always.status == 0, "\(always.stderr)")
        #expect(always.stdout.contains("operator 'guest' of node 'runtime' restarted with a fresh instance (3)"), "\(always.stdout)")
        // Messages 3, 6 and 9 trapped; the other seven were passed on.
        #expect(always.lines(of: "sink").last == "events done inputs 7 sent 0", "\(always.stdout)")

        let limited = try run("-DOUT_OF_BOUNDS", keys: ["restart_policy: on-failure", "max_restarts: 1"], sinkOn: "guest")
        #expect(limited.status == 1, "\(limited.stderr)")
        #expect(limited.stdout.contains("restarted with a fresh instance (1 of 1)"), "\(limited.stdout)")
        #expect(limited.lines(of: "sink").last == "events done inputs 4 sent 0", "\(limited.stdout)")
    }

    @Test func anEndlessLoopIsStoppedByFuel() throws {
        expectContained(try run("-DLOOP", limits: "{fuel_per_event: 1000000}"), "ran out of fuel (1000000 per event)")
    }

    @Test func anOutOfBoundsStoreTraps() throws {
        expectContained(try run("-DOUT_OF_BOUNDS"), "trapped: out of bounds memory access")
    }

    @Test func memoryGrowthPastTheLimitIsRefused() throws {
        expectContained(try run("-DGROW", limits: "{memory: 1MiB}"), "memory.grow was refused")
    }

    @Test func sendingOnAnUndeclaredOutputStopsTheGuest() throws {
        expectContained(try run("-DUNDECLARED"), "sent on output 'elsewhere', which it does not declare")
    }

    @Test func pointersOutsideItsMemoryStopTheGuest() throws {
        let result = try run("-DBAD_POINTER")
        expectContained(result, "passed memory outside its linear memory (2147483632+")
        #expect(!result.stdout.contains("was accepted"), "\(result.stdout)")
    }

    @Test func anImportThatIsNotGrantedIsRefusedAtLoad() throws {
        expectContained(try run("-DUNGRANTED"), "imports wasi_snapshot_preview1.fd_write, which is not granted")
    }

    @Test func aMissingOnEventIsRefusedAtLoad() throws {
        expectContained(try run("-DNO_ON_EVENT"), "does not export apus_on_event")
    }
}
