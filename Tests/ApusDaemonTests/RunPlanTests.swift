import Foundation
import ApusDataflow
import ApusTransport
import Testing

@testable import ApusDaemon

/// How a dataflow is wired before anything is spawned: pure arithmetic, checked without processes.
@Suite struct RunPlanTests {
    func plan(_ yaml: String) throws -> RunPlan {
        RunPlan(try DataflowLoader(checksPaths: false).parse(yaml: yaml, file: "plan.yml", directory: "/flows"))
    }

    @Test func everyEdgeGetsItsOwnRingAndHolderBitPerProducer() throws {
        let plan = try plan(
            """
            nodes:
              - id: camera
                path: camera
                outputs: [frame, depth]
              - id: detector
                path: detector
                inputs: { frame: camera/frame, depth: { source: camera/depth, queue_size: 3, queue_policy: backpressure } }
              - id: viewer
                path: viewer
                inputs: { frame: camera/frame, tick: apus/timer/millis/10 }
            """)
        let camera = plan.nodes[0]
        #expect(
            camera.outputs == [
                [RunPlan.Edge(consumer: 1, ring: 0, bit: 1), RunPlan.Edge(consumer: 2, ring: 0, bit: 3)],
                [RunPlan.Edge(consumer: 1, ring: 1, bit: 2)],
            ])
        #expect(plan.nodes[1].streams.map(\.producer) == [.node(0), .node(0)])
        #expect(plan.nodes[1].inbox.rings.map(\.capacity) == [10, 3])
        #expect(plan.nodes[1].inbox.rings.map(\.policy) == [.dropOldest, .backpressure])
        // A timer input takes no ring: the viewer has one ring, for the frames.
        #expect(plan.nodes[2].streams.count == 1)
        #expect(plan.producers(of: 1) == [.node(0)])
    }

    @Test func stdoutEdgesAreTheDaemonsAndNumberedAfterTheNodes() throws {
        let plan = try plan(
            """
            nodes:
              - id: talker
                path: talker
                outputs: [log, data]
                send_stdout_as: log
              - id: listener
                path: listener
                inputs: { log: talker/log, data: talker/data }
            """)
        #expect(plan.nodes[0].outputs[0].isEmpty, "the daemon publishes the stdout output")
        #expect(plan.nodes[0].stdoutEdges == [RunPlan.Edge(consumer: 1, ring: 0, bit: 1)])
        #expect(plan.nodes[1].streams.map(\.producer) == [.stdout(0), .node(0)])
        #expect(RunPlan.ProducerKey.stdout(0).wire == 1 << 20)
        #expect(RunPlan.ProducerKey.node(1).wire == 1)
        #expect(RunPlan.ProducerKey.stdout(1).node == 1)
    }
}

@Suite struct EnvironmentTests {
    @Test func overridesWinAndKeepTheFirstPosition() {
        let merged = mergeEnvironment(["PATH=/bin", "HOME=/root", "PATH=/usr/bin"], [("HOME", "/tmp"), ("APUS_NODE_ID", "camera")])
        #expect(merged == ["PATH=/usr/bin", "HOME=/tmp", "APUS_NODE_ID=camera"])
        #expect(environmentValue(merged, "HOME") == "/tmp")
        #expect(environmentValue(merged, "MISSING") == nil)
        #expect(environmentValue(["A=x=y"], "A") == "x=y")
    }
}

@Suite struct LineSplitterTests {
    func lines(_ chunks: [String]) -> [String] {
        var splitter = LineSplitter()
        var lines: [String] = []
        for chunk in chunks {
            Array(chunk.utf8).withUnsafeBytes { splitter.feed($0) { lines.append($0) } }
        }
        splitter.finish { lines.append($0) }
        return lines
    }

    @Test func linesSplitAcrossReadsAndCarriageReturnsAreJoined() {
        #expect(lines(["one\ntw", "o\r\nthr", "ee"]) == ["one", "two", "three"])
        #expect(lines(["\n\n"]) == ["", ""])
    }

    @Test func aLineWithoutNewlineIsCutAtTheLimit() {
        let long = String(repeating: "x", count: LineSplitter.maxLine + 10)
        let split = lines([long])
        #expect(split.map(\.count) == [LineSplitter.maxLine, 10])
    }
}

@Suite struct ControlProtocolTests {
    @Test func runEventsRoundTripAndOtherLinesAreNotEvents() {
        #expect(RunEvent(line: RunEvent.restarted(node: "camera").line) == .restarted(node: "camera"))
        #expect(RunEvent(line: "apus: node 'camera' exited with status 1; restarting (1)") == nil)
        #expect(RunEvent(line: "restarted") == nil)
    }

    @Test func aResponseIsAFrameOfJSONThatDecodesBack() throws {
        var response = ControlResponse(ok: false, error: "no dataflow named 'x'")
        response.lines = ["[camera] hello"]
        var bytes = response.frame
        let body = try #require(try Frame.take(from: &bytes, limit: ControlProtocol.maximumResponse))
        #expect(bytes.isEmpty)
        let decoded = try JSONDecoder().decode(ControlResponse.self, from: Data(body))
        #expect(decoded.ok == false && decoded.error == "no dataflow named 'x'" && decoded.lines == ["[camera] hello"])
        #expect(decoded.version == ControlProtocol.version)
    }

    @Test func framesAreTakenWholeAndOversizedOnesRefused() throws {
        var buffer = Frame.encode([1, 2, 3]) + Frame.encode([4])
        buffer.removeLast()
        #expect(try Frame.take(from: &buffer, limit: 16) == [1, 2, 3])
        #expect(try Frame.take(from: &buffer, limit: 16) == nil, "the second frame is incomplete")
        buffer.append(4)
        #expect(try Frame.take(from: &buffer, limit: 16) == [4])
        var huge = Frame.encode([UInt8](repeating: 0, count: 17))
        #expect(throws: TransportError.malformedMessage("announced length 17 exceeds 16")) { _ = try Frame.take(from: &huge, limit: 16) }
    }

    @Test func requestsDecodeOrSayWhyNot() throws {
        var stop = ControlRequest(.stop)
        stop.name = "demo"
        stop.grace = 0.5
        guard case .request(let decoded) = ControlRequest.decode([UInt8](try JSONEncoder().encode(stop))) else {
            Issue.record("a request of this version did not decode")
            return
        }
        #expect(decoded.command == .stop && decoded.name == "demo" && decoded.grace == 0.5)
        guard case .otherVersion("9.9.9") = ControlRequest.decode(Array(#"{"version":"9.9.9","command":"teleport"}"#.utf8)) else {
            Issue.record("another version's request was not named as such")
            return
        }
        for malformed in ["", "{", "[]", #"{"version":1}"#, #"{"version":"\#(ControlProtocol.version)","command":"explode"}"#] {
            guard case .malformed = ControlRequest.decode(Array(malformed.utf8)) else {
                Issue.record("'\(malformed)' was not refused as malformed")
                continue
            }
        }
    }

    @Test func aDataflowStatusIsOneOfFourStates() throws {
        #expect(DataflowStatus.State.running.isRunning && DataflowStatus.State.stopping.isRunning)
        #expect(!DataflowStatus.State.finished.isRunning && !DataflowStatus.State.failed.isRunning)
        #expect(throws: DecodingError.self) { _ = try JSONDecoder().decode(DataflowStatus.State.self, from: Data("\"exploded\"".utf8)) }
    }
}

@Suite struct DurationFormattingTests {
    /// A delay of 1e19 s made `apus run` trap converting it to Int; any value must format.
    @Test func everySecondsValueFormatsWithoutTrapping() {
        #expect(formatSeconds(10) == "10")
        #expect(formatSeconds(0.5) == "0.5")
        #expect(formatSeconds(1e19) == "1e+19")
        #expect(formatSeconds(-1e300) == "-1e+300")
        #expect(formatSeconds(.infinity) == "inf")
        #expect(seconds(1e19) == 1_000_000_000 * 1_000_000_000)
        #expect(seconds(-3) == 0)
    }
}
