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
                        python: op.py
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
                    "11:9: node 'runtime': operator 'b': operator kind 'python' is not supported by Apus yet (use 'shared-library')",
                    "12:9: node 'runtime': operator 'c': missing its kind: one of 'shared-library', 'python' or 'wasm'",
                    "15:9: node 'runtime': operator 'd': operator kind 'wasm' is not supported by Apus yet (use 'shared-library')",
                    "15:15: node 'runtime': operator 'd': an operator has one kind; found 'shared-library' and 'wasm'",
                    "16:9: node 'runtime': operator 'd': unknown key 'colour' (valid keys: id, name, description, build, shared-library, inputs, outputs)",
                    "17:9: node 'runtime': key 'operators': expected a mapping with 'id' and 'shared-library', found the string 'just-a-string'",
                    "18:5: node 'runtime': key 'operator' and key 'operators' do not go together; use one",
                ])
    }
}
