import Foundation
import Testing

@Suite struct CheckCommandTests {
    @Test func exampleDataflowsCheckCleanWithOneSummaryLineEach() throws {
        let result = try ApusCommand.run([
            "check", "dataflows/minimal.yml", "dataflows/fan-out-fan-in.yml", "dataflows/long-form-inputs.yml",
        ])
        #expect(result.status == 0)
        #expect(result.stderr == "")
        #expect(
            result.stdout == """
                dataflows/minimal.yml: ok (2 nodes, 1 edge, 1 timer)
                dataflows/fan-out-fan-in.yml: ok (5 nodes, 6 edges, 2 timers)
                dataflows/long-form-inputs.yml: ok (2 nodes, 2 edges, 1 timer)

                """)
    }

    @Test func everyFileInDataflowsChecksClean() throws {
        let folder = ApusCommand.repository.appendingPathComponent("dataflows")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".yml") }.sorted().map { "dataflows/\($0)" }
        #expect(files.count >= 3)
        let result = try ApusCommand.run(["check"] + files)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").count == files.count)
    }

    /// A declared type that does not fit is a warning naming both ends; --strict-types makes it
    /// an error. The file is Tests/DoraExamples/typed with one type changed.
    @Test func aTypeMismatchIsReportedAtBothEnds() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-check-types-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(at: ApusCommand.repository.appendingPathComponent("Tests/DoraExamples/typed"), to: folder)
        let file = folder.appendingPathComponent("dataflow.yml")
        let text = try String(contentsOf: file, encoding: .utf8).replacingOccurrences(of: "strict_types: true\n", with: "")
        try text.replacingOccurrences(
            of: "reading: std/core/v1/Float64\n\n  - id: processor", with: "reading: std/core/v1/Int64\n\n  - id: processor"
        )
        .write(to: file, atomically: true, encoding: .utf8)
        let warned = try ApusCommand.run(["check", "dataflow.yml"], in: folder)
        #expect(warned.status == 0)
        #expect(
            warned.stderr
                == "warning: dataflow.yml:20:16: node 'processor': type mismatch on input 'reading': it expects std/core/v1/Float64, "
                + "but sensor/reading (declared at dataflow.yml:13:16) sends std/core/v1/Int64\n", "\(warned.stderr)")
        let strict = try ApusCommand.run(["check", "--strict-types", "dataflow.yml"], in: folder)
        #expect(strict.status == 1 && strict.stderr.contains("dataflow.yml: 1 type error (--strict-types)"), "\(strict.stderr)")
    }

    @Test func invalidFileIsReportedWithPositionsAndExitsOne() throws {
        let file = "Tests/ApusDataflowTests/Fixtures/invalid/every-error-reported.yml"
        let result = try ApusCommand.run(["check", "dataflows/minimal.yml", file])
        #expect(result.status == 1)
        #expect(result.stdout == "dataflows/minimal.yml: ok (2 nodes, 1 edge, 1 timer)\n")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines.first?.hasPrefix("\(file):9:5: node 'camera': unknown key 'fps'") == true)
        #expect(lines.last == "\(file): 4 errors")
    }

    @Test func missingFileIsNamed() throws {
        let result = try ApusCommand.run(["check", "dataflows/nope.yml"])
        #expect(result.status == 1)
        #expect(result.stderr == "dataflows/nope.yml: no such file\ndataflows/nope.yml: 1 error\n")
    }

    @Test func noFileIsAUsageError() throws {
        let result = try ApusCommand.run(["check"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("Missing expected argument '<files> ...'"))
    }

    @Test func generatedThousandNodeDataflowChecks() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("apus-large-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("large.yml")
        try LargeDataflow.yaml(nodes: 1000).write(to: file, atomically: true, encoding: .utf8)
        let result = try ApusCommand.run(["check", file.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(file.path): ok (1000 nodes, 999 edges, 1 timer)\n")
    }
}

@Suite struct GraphCommandTests {
    @Test func mermaidShowsNodesTimersAndLabelledEdges() throws {
        let result = try ApusCommand.run(["graph", "dataflows/long-form-inputs.yml"])
        #expect(result.status == 0)
        #expect(
            result.stdout == """
                flowchart LR
                    timer_hz_20(["apus/timer/hz/20"])
                    n0["sender"]
                    n1["receiver"]
                    timer_hz_20 -- "tick" --> n0
                    n0 -- "count (queue 1, timeout 2 s)" --> n1
                    n0 -- "log (queue 64, backpressure)" --> n1

                """)
    }

    @Test func dotShowsTheSameGraph() throws {
        let result = try ApusCommand.run(["graph", "dataflows/minimal.yml", "--format", "dot"])
        #expect(result.status == 0)
        #expect(
            result.stdout == """
                digraph dataflow {
                    rankdir=LR;
                    node [shape=box];
                    timer_millis_100 [label="apus/timer/millis/100", shape=ellipse, style=dashed];
                    n0 [label="sender"];
                    n1 [label="receiver"];
                    timer_millis_100 -> n0 [label="tick"];
                    n0 -> n1 [label="count"];
                }

                """)
    }

    @Test func operatorsAreDrawnInsideTheirRuntimeNode() throws {
        let mermaid = try ApusCommand.run(["graph", "dataflows/operators/dataflow.yml"])
        #expect(mermaid.status == 0, "\(mermaid.stderr)")
        #expect(
            mermaid.stdout.contains(
                """
                    subgraph n1["chain"]
                        n1_0["double"]
                        n1_1["increment"]
                        n1_2["describe"]
                    end
                """), "\(mermaid.stdout)")
        #expect(mermaid.stdout.contains("    n0 -- \"number → in\" --> n1_0\n    n1_0 -- \"out → in\" --> n1_1\n"), "\(mermaid.stdout)")
        #expect(mermaid.stdout.contains("    n1_2 -- \"out → text\" --> n2\n"), "\(mermaid.stdout)")
        let dot = try ApusCommand.run(["graph", "dataflows/operators/dataflow.yml", "--format", "dot"])
        #expect(
            dot.stdout.contains(
                """
                    subgraph cluster_n1 {
                        label="chain";
                        n1_0 [label="double"];
                        n1_1 [label="increment"];
                        n1_2 [label="describe"];
                    }
                """), "\(dot.stdout)")
        #expect(dot.stdout.contains("    n1_1 -> n1_2 [label=\"out → in\"];"), "\(dot.stdout)")
    }

    @Test func edgeLabelNamesTheOutputWhenItDiffersFromTheInput() throws {
        let result = try ApusCommand.run(["graph", "dataflows/fan-out-fan-in.yml"])
        #expect(result.status == 0)
        #expect(result.stdout.contains(#"n1 -- "count → from-1" --> n4"#))
        #expect(result.stdout.contains(#"timer_secs_1 -- "heartbeat" --> n4"#))
    }

    @Test func unknownFormatIsRefused() throws {
        let result = try ApusCommand.run(["graph", "dataflows/minimal.yml", "--format", "svg"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("The value 'svg' is invalid for '--format <format>'"))
    }

    @Test func invalidFileIsReported() throws {
        let result = try ApusCommand.run(["graph", "Tests/ApusDataflowTests/Fixtures/invalid/zero-timer.yml"])
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr.hasPrefix("Tests/ApusDataflowTests/Fixtures/invalid/zero-timer.yml:7:13: node 'ticker'"))
    }
}

@Suite struct HelpTests {
    @Test func helpListsTheCommands() throws {
        let result = try ApusCommand.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("check"))
        #expect(result.stdout.contains("graph"))
    }
}

/// A chain of `nodes` nodes fed by one timer, the shape used to time `apus check` at scale.
enum LargeDataflow {
    static func yaml(nodes count: Int) -> String {
        var yaml = "nodes:\n"
        for index in 0..<count {
            yaml += "  - id: node-\(index)\n    path: /bin/true\n    outputs: [out]\n    inputs:\n"
            yaml += index == 0 ? "      tick: apus/timer/millis/10\n" : "      in: node-\(index - 1)/out\n"
        }
        return yaml
    }
}
