import ApusDataflow
import Foundation
import Testing

/// `output_types`, `input_types`, `output_metadata`, `pattern`, `strict_types` and `type_rules`.
@Suite struct TypeAnnotationTests {
    static func dataflow(outputs: String, inputs: String, root: String = "", producer: String = "") -> String {
        """
        \(root)
        nodes:
          - id: sensor
            path: /bin/true
            outputs: [reading]
            output_types:
              reading: \(outputs)
        \(producer)
          - id: processor
            path: /bin/true
            inputs:
              reading: sensor/reading
              tick: dora/timer/millis/10
            input_types:
              reading: \(inputs)
        """
    }

    @Test(arguments: [
        ("std/core/v1/Float64", "std/core/v1/Float64"),
        ("std/core/v1/UInt8", "std/core/v1/UInt64"),  // widening, two steps
        ("std/core/v1/Float32", "std/core/v1/Float64"),
        ("std/media/v1/Image", "std/core/v1/Bytes"),  // Bytes takes anything
        ("std/media/v1/AudioFrame[sample_type=f32]", "std/media/v1/AudioFrame"),  // a wildcard
        ("std/media/v1/AudioFrame[channels=2,sample_type=f32]", "std/media/v1/AudioFrame[sample_type=f32]"),
    ])
    func compatibleTypesLoadWithoutWarnings(sent: String, expected: String) throws {
        let dataflow = try Fixtures.load(Self.dataflow(outputs: sent, inputs: expected))
        #expect(dataflow.warnings.isEmpty, "\(dataflow.warnings)")
        #expect(dataflow.node("sensor")?.outputTypes.first?.type == TypeURN(sent))
        #expect(dataflow.node("sensor")?.outputTypes.first?.type.description == TypeURN(sent)?.description)
    }

    @Test func mismatchesAreWarningsWithBothPositions() throws {
        let dataflow = try Fixtures.load(Self.dataflow(outputs: "std/core/v1/Float64", inputs: "std/core/v1/String"))
        #expect(
            dataflow.warnings.map(\.positionedMessage) == [
                "15:16: node 'processor': type mismatch on input 'reading': it expects std/core/v1/String, but sensor/reading "
                    + "(declared at test.yml:7:16) sends std/core/v1/Float64"
            ])
        // Narrowing, different parameters, and a timer into a String are mismatches too.
        for (sent, expected) in [
            ("std/core/v1/Int64", "std/core/v1/Int32"),
            ("std/media/v1/AudioFrame[sample_type=f32]", "std/media/v1/AudioFrame[sample_type=i16]"),
        ] {
            #expect(try Fixtures.load(Self.dataflow(outputs: sent, inputs: expected)).warnings.count == 1, "\(sent) -> \(expected)")
        }
    }

    @Test func strictTypesMakesThemErrorsAndTypeRulesAllowMore() throws {
        let strict = Fixtures.diagnostics(
            Self.dataflow(outputs: "std/core/v1/Float64", inputs: "std/core/v1/String", root: "strict_types: true"))
        #expect(strict.count == 1 && strict[0].contains("type mismatch on input 'reading'"), "\(strict)")
        let ruled = try Fixtures.load(
            Self.dataflow(
                outputs: "acme/v1/Reading", inputs: "std/core/v1/String",
                root: "type_rules:\n  - {from: acme/v1/Reading, to: std/core/v1/String}"))
        // acme/v1/Reading is not a known type (no types/ folder here): that is the only warning.
        #expect(ruled.warnings.map(\.message) == ["output 'reading': unknown type 'acme/v1/Reading'"])
    }

    @Test func unknownTypesAndPortsAreNamed() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: camera
                path: /bin/true
                outputs: [image]
                output_types:
                  image: std/media/v1/Imag
                  framez: std/media/v1/Image
              - id: detector
                path: /bin/true
                inputs: { image: camera/image, tick: apus/timer/hz/5 }
                input_types:
                  image: std/media/v1/Image[colour=red]
                  tick: std/core/v1/String
            """)
        #expect(
            dataflow.warnings.map(\.positionedMessage) == [
                "6:14: node 'camera': output 'image': unknown type 'std/media/v1/Imag' (did you mean 'std/media/v1/Image'?)",
                "7:15: node 'camera': output_types: 'framez' is not one of its outputs (image)",
                "12:14: node 'detector': input 'image': type 'std/media/v1/Image' has no parameter 'colour' (it takes encoding)",
                "13:13: node 'detector': type mismatch on input 'tick': it expects std/core/v1/String, but the timer apus/timer/hz/5 sends std/core/v1/UInt64",
            ])
    }

    @Test func metadataKeysAndPatternsAndTheirMistakes() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: server
                path: /bin/true
                pattern: action-server
                outputs: [result, feedback]
                output_metadata:
                  result: [attempt]
            """)
        let server = try #require(dataflow.node("server"))
        #expect(server.outputMetadata == ["result": ["attempt", "goal_id", "goal_status"], "feedback": ["goal_id", "goal_status"]])
        #expect(
            Fixtures.diagnostics(
                """
                type_rules: [{from: a/v1/X}]
                nodes:
                  - id: server
                    path: /bin/true
                    pattern: rpc
                    outputs: [result]
                    output_metadata: { result: attempt }
                    output_types: [std/core/v1/Int64]
                    input_types: { x: "std/core/v1/Int64[" }
                """) == [
                    "1:14: key 'type_rules': expected {from: TYPE, to: TYPE}",
                    "5:14: node 'server': key 'pattern': 'rpc' is not a pattern (one of action-client, action-server, service-client, service-server)",
                    "7:32: node 'server': key 'output_metadata': 'result': expected a list of metadata keys, found the string 'attempt'",
                    "8:19: node 'server': key 'output_types': expected a mapping of ids to type URNs (e.g. std/core/v1/Float64), found a list",
                    "9:23: node 'server': key 'input_types': 'x': 'std/core/v1/Int64[' is not a type URN (std/<category>/v<N>/<Name>, optionally [key=value,...])",
                ])
    }

    @Test func userTypesComeFromTheTypesFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-types-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("types/acme/sensors"), withIntermediateDirectories: true)
        try "types:\n  Reading:\n    arrow: Struct\n".write(
            to: folder.appendingPathComponent("types/acme/sensors/v1.yml"), atomically: true, encoding: .utf8)
        let yaml = Self.dataflow(outputs: "acme/sensors/v1/Reading", inputs: "acme/sensors/v1/Reading")
        let dataflow = try DataflowLoader(environment: Fixtures.environment).parse(yaml: yaml, file: "test.yml", directory: folder.path)
        #expect(dataflow.warnings.isEmpty, "\(dataflow.warnings)")
    }

    @Test func operatorsDeclareTypesOfTheirOwnPorts() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: runtime
                operators:
                  - id: op
                    build: make
                    python: op.py
                    outputs: [out]
                    output_types: { out: std/core/v1/Int64 }
                    inputs: { tick: dora/timer/millis/10 }
                    input_types: { tick: std/core/v1/UInt64 }
              - id: sink
                path: /bin/true
                inputs: { in: runtime/op/out }
                input_types: { in: std/core/v1/String }
            """)
        #expect(dataflow.node("runtime")?.outputTypes.map(\.port) == ["op/out"])
        #expect(
            dataflow.warnings.map(\.message) == [
                "type mismatch on input 'in': it expects std/core/v1/String, but runtime/op/out (declared at test.yml:8:30) sends std/core/v1/Int64"
            ])
    }
}
