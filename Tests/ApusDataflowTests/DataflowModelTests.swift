import Foundation
import Testing

@testable import ApusDataflow

/// Each supported key, parsed into the model.
@Suite struct DataflowModelTests {
    static let twoNodes = """
        nodes:
          - id: camera
            path: /bin/true
            outputs: [frame]
          - id: sink
            path: /bin/true
            inputs:
              frame: camera/frame
        """

    @Test func rootEnvAndNodesAreRead() throws {
        let dataflow = try Fixtures.load("env: {FPS: 30, DEBUG: true}\n" + Self.twoNodes)
        #expect(dataflow.env == [EnvVariable(name: "FPS", value: .int(30)), EnvVariable(name: "DEBUG", value: .bool(true))])
        #expect(dataflow.nodes.map(\.id) == ["camera", "sink"])
        #expect(dataflow.file == "test.yml")
        #expect(dataflow.directory == Fixtures.url.path)
    }

    @Test func idNameAndDescriptionAreRead() throws {
        let node = try Fixtures.load(
            """
            nodes:
              - id: cam.front-1_a
                name: Front camera
                description: 640x480 at 30 Hz
                path: /bin/true
            """
        ).nodes[0]
        #expect(node.id == "cam.front-1_a")
        #expect(node.name == "Front camera")
        #expect(node.description == "640x480 at 30 Hz")
    }

    @Test func pathResolvesAgainstTheDataflowFolder() throws {
        let folder = Fixtures.url.appendingPathComponent("valid")
        let node = try DataflowLoader(environment: Fixtures.environment)
            .parse(yaml: "nodes: [{id: a, path: ../valid/dora-c-dataflow.yml, build: 'true'}]", file: "x.yml", directory: folder.path)
            .nodes[0]
        #expect(node.path == "../valid/dora-c-dataflow.yml")
        #expect(node.resolvedPath == folder.appendingPathComponent("dora-c-dataflow.yml").path)
    }

    @Test func bareCommandIsFoundOnPATH() throws {
        let node = try Fixtures.load("nodes: [{id: a, path: sh}]").nodes[0]
        #expect(node.resolvedPath == "/usr/bin/sh" || node.resolvedPath == "/bin/sh")
    }

    @Test func pythonPathNeedNotBeExecutable() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("apus-model-\(getpid()).py")
        try "print('hi')\n".write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let node = try Fixtures.load("nodes: [{id: a, path: \(script.path)}]").nodes[0]
        #expect(node.isPython)
        #expect(node.resolvedPath == script.path)
    }

    @Test func nonExecutableProgramIsRefused() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("apus-model-\(getpid()).bin")
        try "data".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(
            Fixtures.diagnostics("nodes: [{id: a, path: \(file.path)}]")
                == ["1:23: node 'a': key 'path': '\(file.path)' is not executable ('\(file.path)'; try chmod +x)"])
    }

    @Test func pathWithBuildStepIsCheckedWhenTheNodeStarts() throws {
        let node = try Fixtures.load("nodes: [{id: a, path: build/a, build: make a}]").nodes[0]
        #expect(node.build == "make a")
        #expect(node.resolvedPath == Fixtures.url.appendingPathComponent("build/a").path)
    }

    @Test func argsAreSplitLikeAShell() throws {
        let node = try Fixtures.load(
            #"""
            nodes:
              - id: a
                path: /bin/true
                args: --name 'front camera' --label "say \"hi\"" plain\ space ''
            """#
        ).nodes[0]
        #expect(node.args == ["--name", "front camera", "--label", #"say "hi""#, "plain space", ""])
    }

    @Test func envValuesKeepTheirTypesAndExpandVariables() throws {
        let node = try Fixtures.load(
            """
            nodes:
              - id: a
                path: /bin/true
                env:
                  FLAG: false
                  COUNT: 0x10
                  RATE: 29.97
                  QUOTED: "30"
                  HOME_MODEL: $HOME/models/${APUS_TEST_FPS}fps
                  FALLBACK: ${APUS_TEST_UNSET:-cpu}
                  LITERAL: cost $5
                  YES_IS_TEXT: yes
            """
        ).nodes[0]
        #expect(
            node.env == [
                EnvVariable(name: "FLAG", value: .bool(false)),
                EnvVariable(name: "COUNT", value: .int(16)),
                EnvVariable(name: "RATE", value: .float(29.97)),
                EnvVariable(name: "QUOTED", value: .string("30")),
                EnvVariable(name: "HOME_MODEL", value: .string("/home/robot/models/30fps")),
                EnvVariable(name: "FALLBACK", value: .string("cpu")),
                EnvVariable(name: "LITERAL", value: .string("cost $5")),
                EnvVariable(name: "YES_IS_TEXT", value: .string("yes")),
            ])
        #expect(node.env.map(\.value.description) == ["false", "16", "29.97", "30", "/home/robot/models/30fps", "cpu", "cost $5", "yes"])
    }

    @Test func buildIsReadAsShellText() throws {
        let node = try Fixtures.load(
            """
            nodes:
              - id: a
                path: out/a
                build: |
                  mkdir -p out
                  cc -o out/a a.c
            """
        ).nodes[0]
        #expect(node.build == "mkdir -p out\ncc -o out/a a.c")
    }

    @Test func shortFormInputTakesDefaults() throws {
        let input = try Fixtures.load(Self.twoNodes).nodes[1].inputs[0]
        #expect(
            input
                == InputDescriptor(
                    id: "frame", source: .output(node: "camera", output: "frame"),
                    queueSize: 10, queuePolicy: .dropOldest, inputTimeout: nil))
    }

    @Test func longFormInputReadsEveryKey() throws {
        let input = try Fixtures.load(
            """
            nodes:
              - id: camera
                path: /bin/true
                outputs: [frame]
              - id: sink
                path: /bin/true
                inputs:
                  frame:
                    source: camera/frame
                    queue_size: 1
                    queue_policy: backpressure
                    input_timeout: 2.5
            """
        ).nodes[1].inputs[0]
        #expect(
            input
                == InputDescriptor(
                    id: "frame", source: .output(node: "camera", output: "frame"),
                    queueSize: 1, queuePolicy: .backpressure, inputTimeout: 2.5))
    }

    @Test func inputsMayComeFromNodesDeclaredLaterAndFromThemselves() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: a
                path: /bin/true
                inputs: {fromB: b/out, loop: a/back}
                outputs: [back]
              - id: b
                path: /bin/true
                outputs: [out]
            """)
        #expect(dataflow.nodes[0].inputs.map(\.source) == [.output(node: "b", output: "out"), .output(node: "a", output: "back")])
    }

    @Test(arguments: [
        ("apus/timer/secs/2", TimerSpec.Unit.secs, 2_000_000_000 as UInt64),
        ("dora/timer/millis/33", .millis, 33_000_000),
        ("apus/timer/micros/250", .micros, 250_000),
        ("dora/timer/nanos/500", .nanos, 500),
        ("apus/timer/hz/29.97", .hz, 33_366_700),
        ("apus/timer/hz/100", .hz, 10_000_000),
    ])
    func timersParseEveryUnit(source: String, unit: TimerSpec.Unit, period: UInt64) throws {
        let yaml = "nodes: [{id: a, path: /bin/true, inputs: {tick: \(source)}}]"
        guard case .timer(let timer) = try Fixtures.load(yaml).nodes[0].inputs[0].source else {
            Issue.record("\(source) is not a timer")
            return
        }
        #expect(timer.unit == unit)
        #expect(timer.periodNanoseconds == period)
    }

    @Test func doraAndApusTimersAreTheSameSource() throws {
        let dataflow = try Fixtures.load(
            """
            nodes:
              - id: a
                path: /bin/true
                inputs: {t1: dora/timer/millis/100, t2: apus/timer/millis/100, t3: apus/timer/hz/10, t4: apus/timer/secs/1}
            """)
        #expect(dataflow.nodes[0].inputs[0].source == dataflow.nodes[0].inputs[1].source)
        #expect(dataflow.timers.map(\.description) == ["apus/timer/millis/100", "apus/timer/secs/1"])
        #expect(dataflow.summary == "1 node, 0 edges, 2 timers")
    }

    @Test func outputsRestartAndStdoutKeysAreRead() throws {
        let node = try Fixtures.load(
            """
            nodes:
              - id: a
                path: /bin/true
                outputs: [frame, log]
                restart_policy: on-failure
                max_restarts: 5
                restart_delay: 0.5
                max_restart_delay: 8
                send_stdout_as: log
            """
        ).nodes[0]
        #expect(node.outputs == ["frame", "log"])
        #expect(node.restartPolicy == .onFailure)
        #expect(node.maxRestarts == 5)
        #expect(node.restartDelay == 0.5)
        #expect(node.maxRestartDelay == 8)
        #expect(node.sendStdoutAs == "log")
    }

    @Test func restartDefaultsToNever() throws {
        let node = try Fixtures.load("nodes: [{id: a, path: /bin/true}]").nodes[0]
        #expect(node.restartPolicy == .never)
        #expect(node.maxRestarts == 0)
        #expect(node.restartDelay == nil)
        #expect(node.sendStdoutAs == nil)
    }

    @Test func doraShapedFilesCheckClean() throws {
        let folder = Fixtures.url.appendingPathComponent("valid")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yml") }
        #expect(files.count >= 3)
        for file in files {
            #expect(throws: Never.self, "\(file)") {
                try DataflowLoader(environment: Fixtures.environment).load(file: folder.appendingPathComponent(file).path)
            }
        }
    }

    @Test func queueSizeAboveTheLimitIsRefused() {
        let yaml = """
            nodes:
              - {id: a, path: /bin/true, outputs: [o]}
              - {id: b, path: /bin/true, inputs: {i: {source: a/o, queue_size: 2000000}}}
            """
        #expect(Fixtures.diagnostics(yaml) == ["3:68: node 'b': input 'i': key 'queue_size': must be at most 1048576, found 2000000"])
    }

    @Test func duplicateOutputIsRefused() {
        #expect(
            Fixtures.diagnostics("nodes: [{id: a, path: /bin/true, outputs: [o, o]}]")
                == ["1:47: node 'a': key 'outputs': output 'o' is declared twice"])
    }

    @Test func longNodeListsAreShortenedInMessages() {
        var yaml = "nodes:\n"
        for index in 0..<20 { yaml += "  - {id: n\(index), path: /bin/true}\n" }
        yaml += "  - {id: sink, path: /bin/true, inputs: {x: nope/out}}\n"
        #expect(
            Fixtures.diagnostics(yaml) == [
                "22:45: node 'sink': input 'x': source 'nope/out' names no node "
                    + "(nodes: n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11, … 9 more)"
            ])
    }
}
