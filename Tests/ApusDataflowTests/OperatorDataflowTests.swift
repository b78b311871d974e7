import ApusDataflow
import Foundation
import Testing

/// `operators:` and `operator:`: their keys, kinds, ids and addresses.
@Suite struct OperatorDataflowTests {
    @Test func operatorsBecomeTheRuntimeNodesInputsAndOutputs() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: source
                path: /bin/true
                outputs: [message]
              - id: runtime-node
                operators:
                  - id: c_operator
                    shared-library: build/operator
                    build: make operator
                    inputs: { message: source/message }
                    outputs: [counter]
                  - id: second
                    build: make operator
                    shared-library: lib/libsecond.so.1
                    inputs: { in: runtime-node/c_operator/counter, tick: dora/timer/millis/5 }
                    outputs: [out]
              - id: sink
                path: /bin/true
                inputs: { counter: runtime-node/c_operator/counter }
            """)
        let runtime = try #require(dataflow.node("runtime-node"))
        #expect(runtime.isRuntime && !runtime.isSingleOperator)
        #expect(runtime.inputs.map(\.id) == ["c_operator/message", "second/in", "second/tick"])
        #expect(runtime.outputs == ["c_operator/counter", "second/out"])
        #expect(runtime.operators.map(\.id) == ["c_operator", "second"])
        #expect(
            runtime.operators[0].kind == .sharedLibrary(path: "build/operator", resolvedPath: "\(Fixtures.url.path)/build/liboperator.so"))
        #expect(
            runtime.operators[1].kind == .sharedLibrary(path: "lib/libsecond.so.1", resolvedPath: "\(Fixtures.url.path)/lib/libsecond.so.1")
        )
        #expect(runtime.builds == ["make operator"])
        #expect(dataflow.node("sink")?.inputs.first?.source == .output(node: "runtime-node", output: "c_operator/counter"))
    }

    @Test func aSingleOperatorsOutputsAreTheNodes() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: filter
                operator:
                  id: op
                  build: make filter
                  shared-library: /usr/lib/libfilter.so
                  inputs: { tick: apus/timer/millis/10 }
                  outputs: [out]
              - id: sink
                path: /bin/true
                inputs: { in: filter/out }
            """)
        let filter = try #require(dataflow.node("filter"))
        #expect(filter.isSingleOperator && filter.outputs == ["out"] && filter.inputs.map(\.id) == ["tick"])
        // As in dora, a single operator's id may be left out: it is the node's.
        let unnamed = try Fixtures.load(
            "nodes:\n  - id: detector\n    operator: {build: make, python: detect.py, inputs: {tick: apus/timer/millis/10}, outputs: [bbox]}"
        )
        #expect(unnamed.node("detector")?.operators.map(\.id) == ["detector"])
        #expect(
            Fixtures.diagnostics("nodes:\n  - id: r\n    operators:\n      - {build: make, python: a.py}") == [
                "4:9: node 'r': operator #1: missing required key 'id'"
            ])
    }

    @Test func badOperatorsAreReportedWithFileLineAndKey() {
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - id: runtime
                    path: /bin/true
                    operators:
                      - id: a
                        shared-library: missing/thing
                      - id: a
                        build: make
                        shared-library: x
                      - id: b
                        python: {file: op.py}
                      - id: c
                      - id: d
                        shared-library: x
                        wasm: op.wasm
                        colour: red
                      - just-a-string
                    operator: { id: e, shared-library: x }
                """) == [
                    "3:5: node 'runtime': key 'path' does not go with 'operators': a runtime node's inputs and outputs are its operators'",
                    "6:25: node 'runtime': operator 'a': key 'shared-library': library 'missing/thing' not found (looked for '\(Fixtures.url.path)/missing/libthing.so')",
                    "7:13: node 'runtime': operator 'a': duplicate operator id (first used at line 5)",
                    "11:17: node 'runtime': operator 'b': key 'python': missing required key 'source'",
                    "11:18: node 'runtime': operator 'b': key 'python': unknown key 'file' (valid keys: source)",
                    "12:9: node 'runtime': operator 'c': missing its kind: one of 'shared-library', 'wasm', 'python', 'numba'",
                    "15:15: node 'runtime': operator 'd': an operator has one kind; found 'shared-library' and 'wasm'",
                    "16:9: node 'runtime': operator 'd': unknown key 'colour' (valid keys: id, name, description, build, shared-library, wasm, python, numba, limits, params, restart_policy, max_restarts, inputs, outputs, output_types, input_types, output_metadata, pattern)",
                    "17:9: node 'runtime': key 'operators': expected a mapping with 'id' and its kind (shared-library, wasm, python, numba), found the string 'just-a-string'",
                    "18:5: node 'runtime': key 'operator' and key 'operators' do not go together; use one",
                ])
    }

    @Test func wasmOperatorsTakeLimitsAndNothingElseDoes() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: filters
                operators:
                  - id: threshold
                    build: make
                    wasm: build/threshold.wasm
                    limits: {fuel_per_event: 5000, memory: 2MiB}
                    inputs: { tick: apus/timer/millis/10 }
                  - id: plain
                    build: make
                    wasm: build/plain.wasm
                    inputs: { tick: apus/timer/millis/10 }
            """)
        let filters = try #require(dataflow.node("filters"))
        #expect(filters.operators[0].kind == .wasm(path: "build/threshold.wasm", resolvedPath: "\(Fixtures.url.path)/build/threshold.wasm"))
        #expect(filters.operators[0].limits == OperatorDescriptor.WasmLimits(fuelPerEvent: 5000, memory: 2 << 20))
        #expect(filters.operators[1].limits == OperatorDescriptor.WasmLimits())
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - id: filters
                    operators:
                      - id: a
                        shared-library: /bin/true
                        limits: {memory: 1MiB}
                      - id: b
                        build: make
                        wasm: b.wasm
                        limits: {memory: 5GiB, fuel_per_event: 0, speed: fast}
                      - id: c
                        build: make
                        wasm: c.wasm
                        limits: {memory: lots}
                      - id: d
                        wasm: missing.wasm
                """) == [
                    "5:25: node 'filters': operator 'a': key 'shared-library': library '/bin/true' not found (looked for '/bin/libtrue.so')",
                    "6:17: node 'filters': operator 'a': key 'limits': limits apply to 'wasm' operators only; a shared library runs unsandboxed",
                    "10:26: node 'filters': operator 'b': key 'limits': key 'memory': '5GiB' is more than a Wasm module can address (4 GiB)",
                    "10:48: node 'filters': operator 'b': key 'limits': key 'fuel_per_event': must be at least 1, found 0",
                    "10:51: node 'filters': operator 'b': key 'limits': unknown key 'speed' (valid keys: fuel_per_event, memory)",
                    "14:26: node 'filters': operator 'c': key 'limits': key 'memory': 'lots' is not a size (write bytes, or a number with KiB, MiB or GiB)",
                    "16:15: node 'filters': operator 'd': key 'wasm': module 'missing.wasm' not found (looked for '\(Fixtures.url.path)/missing.wasm')",
                ])
    }

    @Test func restartKeysAreForWasmOperators() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: filters
                operator:
                  id: threshold
                  build: make
                  wasm: build/threshold.wasm
                  restart_policy: on-failure
                  max_restarts: 3
                  inputs: { tick: apus/timer/millis/10 }
            """)
        let threshold = try #require(dataflow.node("filters")?.operators.first)
        #expect(threshold.restartPolicy == .onFailure && threshold.maxRestarts == 3)
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - id: runtime
                    operator:
                      id: native
                      build: make
                      shared-library: build/native
                      restart_policy: always
                      inputs: { tick: apus/timer/millis/10 }
                """) == [
                    "7:23: node 'runtime': operator 'native': restart_policy and max_restarts apply to 'wasm' operators; "
                        + "others share their process, whose node's restart_policy applies"
                ])
    }

    @Test func pythonAndNumbaOperatorsAndTheirParams() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: dsp
                operators:
                  - id: stats
                    build: make stats.py
                    python: ops/stats.py
                    inputs: { tick: apus/timer/millis/10 }
                  - id: dora_style
                    build: make
                    python: { source: op.py }
                    inputs: { tick: apus/timer/millis/10 }
                  - id: gain
                    build: make
                    numba: ops/filters.py:gain
                    params: { factor: 0.5, taps: 8, invert: false }
                    inputs: { tick: apus/timer/millis/10 }
            """)
        let dsp = try #require(dataflow.node("dsp"))
        #expect(dsp.usesPython && !dsp.isPython)
        #expect(dsp.operators[0].kind == .python(path: "ops/stats.py", resolvedPath: "\(Fixtures.url.path)/ops/stats.py"))
        #expect(dsp.operators[1].kind == .python(path: "op.py", resolvedPath: "\(Fixtures.url.path)/op.py"))
        #expect(
            dsp.operators[2].kind == .numba(path: "ops/filters.py", resolvedPath: "\(Fixtures.url.path)/ops/filters.py", function: "gain"))
        #expect(dsp.operators[2].kind.function == "gain")
        #expect(
            dsp.operators[2].params == [
                EnvVariable(name: "factor", value: .float(0.5)), EnvVariable(name: "taps", value: .int(8)),
                EnvVariable(name: "invert", value: .bool(false)),
            ])
        #expect(
            Fixtures.diagnostics(
                """
                nodes:
                  - id: dsp
                    operators:
                      - id: a
                        build: make
                        numba: filters.py
                      - id: b
                        build: make
                        numba: filters.py:not-a-name
                      - id: c
                        build: make
                        numba: filters.py:gain
                        params: { factor: fast, 2x: 1, list: [1, 2] }
                      - id: d
                        build: make
                        python: op.py
                        params: { factor: 1 }
                      - id: e
                        python: missing.py
                """) == [
                    "6:16: node 'dsp': operator 'a': key 'numba': 'filters.py' is not MODULE:FUNCTION (a Python file and the name of a numba @cfunc in it, e.g. ops.py:scale)",
                    "9:16: node 'dsp': operator 'b': key 'numba': 'not-a-name' is not a Python function name (in 'filters.py:not-a-name')",
                    "13:27: node 'dsp': operator 'c': key 'params': 'factor': expected a number or bool, found 'fast'",
                    "13:33: node 'dsp': operator 'c': key 'params': '2x' is not a Python argument name",
                    "13:46: node 'dsp': operator 'c': key 'params': 'list': expected a number or bool, found a list",
                    "17:17: node 'dsp': operator 'd': key 'params': params apply to 'numba' operators only (they fill the function's scalar arguments)",
                    "19:17: node 'dsp': operator 'e': key 'python': file 'missing.py' not found (looked for '\(Fixtures.url.path)/missing.py')",
                ])
    }
}
