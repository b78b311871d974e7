import Foundation
import Glibc
import Testing

/// Wasm operators: a guest that forwards, and hostile guests, each contained: the runtime and a
/// sibling operator keep running, and the failure is named with node, operator and reason.
@Suite(.serialized) struct WasmOperatorTests {
    static let guest = ApusCommand.repository.appendingPathComponent("Tests/WasmGuests/guest.c").path
    static let include = ApusCommand.repository.appendingPathComponent("include").path
    /// The Swift toolchain's clang has the wasm32 target and wasm-ld.
    static let compile = "clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -I\(include)"

    /// 10 messages into a runtime node with the guest built with `flags` and a plain sibling, whose
    /// output a sink counts.
    func run(_ flags: String, limits: String = "") throws -> RunHarness.Result {
        let harness = try RunHarness(
            dataflow: """
                nodes:
                  - id: source
                    path: \(RunHarness.testNode)
                    args: --send 10 --on-tick
                    inputs: { tick: apus/timer/millis/10 }
                    outputs: [out]
                  - id: runtime
                    operators:
                      - id: guest
                        build: \(Self.compile) \(flags) -o guest.wasm \(Self.guest)
                        wasm: guest.wasm
                        inputs: { in: source/out }
                        outputs: [out]
                        \(limits.isEmpty ? "" : "limits: \(limits)")
                      - id: sibling
                        build: \(Self.compile) -o sibling.wasm \(Self.guest)
                        wasm: sibling.wasm
                        inputs: { in: source/out }
                        outputs: [out]
                  - id: sink
                    path: \(RunHarness.testNode)
                    args: --print-inputs
                    inputs: { in: runtime/sibling/out }
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

    @Test func aGuestForwardsWithItsElementType() throws {
        let result = try run("")
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.lines(of: "sink").last == "events done inputs 10 sent 0", "\(result.stdout)")
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

    @Test func anImportThatIsNotGrantedIsRefusedAtLoad() throws {
        expectContained(try run("-DUNGRANTED"), "imports wasi_snapshot_preview1.fd_write, which is not granted")
    }

    @Test func aMissingOnEventIsRefusedAtLoad() throws {
        expectContained(try run("-DNO_ON_EVENT"), "does not export apus_on_event")
    }
}
