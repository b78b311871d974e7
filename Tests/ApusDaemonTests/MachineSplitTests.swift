import ApusDataflow
import ApusNetwork
import ApusTransport
import Testing

@_spi(Fuzzing) @testable import ApusDaemon

/// How each machine's part of a dataflow is made: its nodes, and bridges for the edges that cross.
@Suite struct MachineSplitTests {
    static let yaml = """
        nodes:
          - id: camera
            path: camera
            outputs: [frame, depth]
          - id: detector
            deploy: {machine: gpu, working_dir: /srv/flows}
            path: detector
            inputs:
              frame: {source: camera/frame, queue_policy: backpressure, queue_size: 4}
              depth: {source: camera/depth, queue_size: 2}
            outputs: [boxes]
          - id: viewer
            path: viewer
            inputs: {boxes: detector/boxes, frame: camera/frame, tick: apus/timer/millis/10}
          - id: logger
            _unstable_deploy: {machine: disk}
            path: logger
            wait: spin
            inputs: {frame: {source: camera/frame, queue_size: 8}}
        """

    func dataflow() throws -> DataflowDescriptor {
        try DataflowLoader(checksPaths: false).parse(yaml: Self.yaml, file: "split.yml", directory: "/flows")
    }

    @Test func deployNamesTheMachineAndItsFolder() throws {
        let flow = try dataflow()
        #expect(flow.nodes.map(\.deployment.machine) == [nil, "gpu", nil, "disk"])
        #expect(flow.nodes[1].deployment.workingDirectory == "/srv/flows")
        #expect(MachineSplit.remoteMachines(flow, local: "robot") == ["gpu", "disk"])
        #expect(MachineSplit.machine(of: flow.nodes[0], local: "robot") == "robot")
    }

    @Test func theStartingMachineSendsWhatOthersReadAndStandsInForWhatItReads() throws {
        let part = MachineSplit.part(of: try dataflow(), machine: "robot", local: "robot", run: "r1", domain: 3, executable: "/bin/apus")
        #expect(part.nodes.map(\.id) == ["camera", "viewer", "apus-bridge-out", "detector"])
        let out = part.nodes[2]
        // camera/frame: backpressure on gpu, so every message, depth the largest queue (8, disk's).
        #expect(out.inputs.map(\.source) == [.output(node: "camera", output: "frame"), .output(node: "camera", output: "depth")])
        #expect(out.inputs.allSatisfy { $0.queuePolicy == .backpressure })
        #expect(out.args == ["bridge-out", "--run", "r1", "--domain", "3", "--topic", "out0=all:8:gpu,disk", "--topic", "out1=last:2:gpu"])
        // The viewer reads detector/boxes through a stand-in with the detector's id.
        let standIn = part.nodes[3]
        #expect(standIn.outputs == ["boxes"])
        #expect(
            standIn.args == [
                "bridge-in", "--run", "r1", "--domain", "3", "--machine", "gpu", "--here", "robot", "--topic", "boxes=last:10",
            ])
        // The bridges sleep while they wait: spinning, they take the CPUs the hop itself needs
        // (DDS's threads, the nodes on either side). docs/performance.md, "Across machines".
        #expect(out.wait == .sleep && standIn.wait == .sleep)
        // So does a node that reads only from other machines, unless its `wait` says otherwise;
        // one that also reads from this machine (the viewer) waits as it would.
        #expect(part.nodes[0].wait == nil && part.nodes[1].wait == nil)
        let gpu = MachineSplit.part(of: try dataflow(), machine: "gpu", local: "robot", run: "r1", domain: 0, executable: "/bin/apus")
        #expect(gpu.nodes[0].id == "detector" && gpu.nodes[0].wait == .sleep)
        let disk = MachineSplit.part(of: try dataflow(), machine: "disk", local: "robot", run: "r1", domain: 0, executable: "/bin/apus")
        #expect(disk.nodes[0].id == "logger" && disk.nodes[0].wait == .spin)
    }

    @Test func aRemoteMachineRunsItsNodesWithStandInsForTheStartingMachine() throws {
        let part = MachineSplit.part(of: try dataflow(), machine: "gpu", local: "robot", run: "r1", domain: 0, executable: "/bin/apus")
        #expect(part.nodes.map(\.id) == ["detector", "apus-bridge-out", "camera"])
        #expect(part.nodes[1].args.suffix(2) == ["--topic", "out0=last:10:robot"])
        #expect(part.nodes[2].outputs == ["frame", "depth"])
        #expect(part.nodes[2].args.suffix(4) == ["--topic", "frame=all:8", "--topic", "depth=last:2"])
        let disk = MachineSplit.part(of: try dataflow(), machine: "disk", local: "robot", run: "r1", domain: 0, executable: "/bin/apus")
        #expect(disk.nodes.map(\.id) == ["logger", "camera"])
        #expect(disk.nodes[1].outputs == ["frame"])
    }

    /// The node whose outputs other machines read writes their messages to DDS itself: the
    /// variable says which outputs, their delivery, the machines that read them, and the
    /// bridge-out whose ring numbers the messages. A node that sends nothing across gets none,
    /// and a value already in the node's `env` is replaced, not doubled.
    @Test func theSendingNodeIsToldWhichOfItsOutputsOtherMachinesRead() throws {
        var flow = try dataflow()
        flow.nodes[0].env = [EnvVariable(name: RemoteOutputsVariable.name, value: .string("stale"))]
        let part = MachineSplit.part(of: flow, machine: "robot", local: "robot", run: "r1", domain: 3, executable: "/bin/apus")
        let camera = part.nodes[0].env.filter { $0.name == RemoteOutputsVariable.name }
        #expect(camera.map(\.value) == [.string("r1 3 apus-bridge-out frame=all:8:gpu,disk depth=last:2:gpu")])
        #expect(!part.nodes[1].env.contains { $0.name == RemoteOutputsVariable.name })
        let parsed = try RemoteOutputsVariable("r1 3 apus-bridge-out frame=all:8:gpu,disk depth=last:2:gpu")
        #expect(parsed.run == "r1" && parsed.domain == 3 && parsed.bridge == "apus-bridge-out")
        #expect(
            parsed.topics == [
                BridgeTopic(id: "frame", delivery: .everyMessage(buffered: 8), machines: ["gpu", "disk"]),
                BridgeTopic(id: "depth", delivery: .newest(2), machines: ["gpu"]),
            ])
        #expect(parsed.description == "r1 3 apus-bridge-out frame=all:8:gpu,disk depth=last:2:gpu")
        let gpu = MachineSplit.part(of: try dataflow(), machine: "gpu", local: "robot", run: "r1", domain: 0, executable: "/bin/apus")
        #expect(gpu.nodes[0].env.map(\.value) == [.string("r1 0 apus-bridge-out boxes=last:10:robot")])
    }

    /// The variable comes from the environment and the topics from the command line: anything
    /// malformed is an error that quotes it.
    @Test func malformedRemoteOutputsAndTopicsAreErrorsThatQuoteThem() {
        for text in ["", "r1", "r1 x apus-bridge-out a=all:1:B", "r1 0 apus-bridge-out", "r1 0 b a=some:1:B", "r1 0 b a=all:0:B"] {
            #expect(throws: DDSError.self, "\(text)") { try RemoteOutputsVariable(text) }
        }
        for text in ["a", "=all:1", "a=all", "a=all:x", "a=all:-1", "a=last:1:B:C", "a=every:1"] {
            #expect(throws: DDSError.self, "\(text)") { try BridgeTopic(text) }
        }
        let error = #expect(throws: DDSError.self) { try BridgeTopic("a=all:x") }
        #expect(error.map { "\($0)" }?.contains("'a=all:x'") == true)
    }

    @Test func topicNamesKeepToWhatDDSAllowsAndStayDistinct() {
        let names = [["a-b", "c"], ["a_hb", "c"], ["a.b", "c"], ["a/b", "c"], ["a", "b/c"], ["é"]].map(BridgeMessage.topicName)
        #expect(names == ["a_hb/c", "a__hb/c", "a_pb/c", "a_sb/c", "a/b_sc", "_ue9_"])
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "/") } })
    }

    @Test func headersRoundTripAndHostileOnesAreErrors() throws {
        let metadata = SampleMetadata(
            elementType: .float32, shape: [2, 3], timestamp: 7, parameters: [("i", .int(5)), ("name", .string("cam"))])
        let header = BridgeMessage.header(metadata)
        let back = try header.withUnsafeBytes { try BridgeMessage.metadata(header: $0, timestamp: 7) }
        #expect(back == metadata)
        for hostile: [UInt8] in [[], [200], [9, 1], [9, 255, 255, 255, 255], [9, 1, 0, 0, 0] + [UInt8](repeating: 0xff, count: 8)] {
            #expect(throws: (any Error).self) { try hostile.withUnsafeBytes { try BridgeMessage.metadata(header: $0, timestamp: 0) } }
        }
    }

    @Test func requestsFromTheNetworkAreCheckedBeforeUse() {
        let request = Federation.Request(kind: .start, run: "4f2a", local: "robot", yaml: "nodes: []", file: "/flows/a.yml")
        let bytes = request.encoded()
        #expect(bytes.withUnsafeBytes { Federation.Request($0) } == request)
        for hostile in [
            "", "null", "[]", "{\"kind\":\"start\"}", "{\"kind\":\"launch\",\"run\":\"1\"}", "{\"kind\":\"stop\",\"run\":\"../x\"}",
            "{\"kind\":\"start\",\"run\":\"1\",\"name\":\"../x\"}",
            "\u{ff}",
        ] {
            #expect(Array(hostile.utf8).withUnsafeBytes { Federation.Request($0) } == nil, "\(hostile)")
        }
    }

    @Test func aStartRequestIsPlannedAndOneNoRunWouldSendIsRefusedSayingWhy() throws {
        let yaml = """
            nodes:
              - {id: camera, path: camera, outputs: [frame]}
              - {id: detector, path: detector, deploy: {machine: B}, inputs: {frame: camera/frame}}
              - {id: sink, path: sink, deploy: {labels: {gpu: "true"}}, inputs: {frame: camera/frame}}
            """
        let request = Federation.Request(
            kind: .start, run: "4f2a", local: "robot", yaml: yaml, file: "/flows/a.yml", placements: "sink=B", name: "a",
            record: "/flows/a.mcap")
        let plan = try MachineAgent.plan(request, machine: "B", domain: 3)
        #expect(plan.file == "/flows/.a.yml.4f2a.B.yml")
        #expect(plan.nodes == 2)
        #expect(plan.name == "a@robot")
        #expect(
            plan.arguments == [
                "--machine-part", "B", "--local-machine", "robot", "--network-run", "4f2a", "--dds-domain", "3", "--placement", "sink=B",
                "--record", "/flows/a.mcap",
            ])
        var inFolder = request
        inFolder.folder = "/srv/apus"
        #expect(try MachineAgent.plan(inFolder, machine: "B", domain: 0).file == "/srv/apus/.a.yml.4f2a.B.yml")
        let hostile: [(WritableKeyPath<Federation.Request, String>, String, String)] = [
            (\.local, "--record", "'--record', is not a machine name"), (\.local, "", "'', is not a machine name"),
            (\.file, "a.yml", "must be absolute"), (\.folder, "srv", "must be absolute"),
            (\.placements, "sink=B\nnonsense", "not NODE=MACHINE lines"), (\.placements, "sink=-x y", "not NODE=MACHINE lines"),
            (\.placements, "=B", "not NODE=MACHINE lines"),
        ]
        for (field, value, reason) in hostile {
            var bad = request
            bad[keyPath: field] = value
            #expect(throws: PlacementError.self, "\(value)") { try MachineAgent.plan(bad, machine: "B", domain: 0) }
            do {
                _ = try MachineAgent.plan(bad, machine: "B", domain: 0)
            } catch {
                #expect(error.description.contains(reason), "\(error)")
            }
        }
    }

    @Test func creditsFromTheNetworkNeverOverflowTheSendersArithmetic() {
        #expect(BridgeMessage.mustWait(sent: 0, credit: nil, depth: 4))
        #expect(!BridgeMessage.mustWait(sent: 3, credit: 0, depth: 4))
        #expect(BridgeMessage.mustWait(sent: 4, credit: 0, depth: 4))
        #expect(!BridgeMessage.mustWait(sent: 4, credit: 1, depth: 4))
        // Hostile or stale: beyond what was sent, or near 2^64.
        #expect(!BridgeMessage.mustWait(sent: 10, credit: .max, depth: 4))
        #expect(!BridgeMessage.mustWait(sent: 10, credit: .max - 1, depth: .max))
        #expect(BridgeMessage.mustWait(sent: .max, credit: 0, depth: .max))
    }

    @Test func sendTimesCrossMachinesThroughTheWallClockAndNeverLandInTheFuture() {
        // Machine A booted long before B; their wall clocks agree.
        let a = BridgeMessage.Clocks(monotonic: 900_000_000_000_000, wall: 1_800_000_000_000_000_000)
        let b = BridgeMessage.Clocks(monotonic: 3_600_000_000_000, wall: a.wall + 2_000_000)  // 2 ms later
        let sent = a.monotonic - 5_000_000  // 5 ms ago on A
        let wall = BridgeMessage.wallClock(fromMonotonic: sent, now: a)
        #expect(wall == a.wall - 5_000_000)
        // On B: 7 ms old, in B's clock.
        #expect(BridgeMessage.monotonic(fromWallClock: wall, now: b) == b.monotonic - 7_000_000)
        // A sender whose clock is ahead, none (0), or one older than B's monotonic clock: arrival.
        #expect(BridgeMessage.monotonic(fromWallClock: b.wall + 1, now: b) == b.monotonic)
        #expect(BridgeMessage.monotonic(fromWallClock: 0, now: b) == b.monotonic)
        #expect(BridgeMessage.monotonic(fromWallClock: b.wall - b.monotonic, now: b) == b.monotonic)
        // Hostile or odd stamps never trap: from the future here, or older than the wall clock.
        #expect(BridgeMessage.wallClock(fromMonotonic: a.monotonic + 1, now: a) == a.wall)
        #expect(BridgeMessage.wallClock(fromMonotonic: 0, now: BridgeMessage.Clocks(monotonic: 10, wall: 5)) == 0)
        #expect(BridgeMessage.monotonic(fromWallClock: .max, now: b) == b.monotonic)
        // An output's stamps never go back, whatever each conversion's clock readings say.
        #expect(BridgeMessage.monotonic(fromWallClock: wall, notBefore: b.monotonic - 6_000_000, now: b) == b.monotonic - 6_000_000)
        #expect(BridgeMessage.monotonic(fromWallClock: wall, notBefore: b.monotonic - 8_000_000, now: b) == b.monotonic - 7_000_000)
        #expect(BridgeMessage.monotonic(fromWallClock: wall, notBefore: .max, now: b) == b.monotonic)
        // One machine: a round trip through the wall clock gives the stamp back.
        let now = BridgeMessage.Clocks.now()
        #expect(
            BridgeMessage.monotonic(fromWallClock: BridgeMessage.wallClock(fromMonotonic: now.monotonic - 1000, now: now), now: now)
                == now.monotonic - 1000)
    }

    @Test func aRunRefusesMachinesWhoseDaemonRunsAnotherVersion() {
        let presence = Federation.Presence(machine: "B", instance: "1-a", version: "9.9.9")
        #expect(presence.encoded().withUnsafeBytes { Federation.Presence($0) } == presence)
        // A daemon from before presences carried a version.
        let old = Array(#"{"machine":"B","labels":{},"instance":"1-a"}"#.utf8)
        #expect(old.withUnsafeBytes { Federation.Presence($0) }?.version == "")
        var directory = MachineCoordinator.Directory()
        directory.versions = ["B": ControlProtocol.version, "C": "9.9.9", "D": ""]
        #expect(directory.versionProblem(["B"]) == nil)
        #expect(
            directory.versionProblem(["B", "C"])
                == "machine 'C' runs apus 9.9.9 and this is apus \(ControlProtocol.version): run one version on every machine")
        #expect(directory.versionProblem(["D"])?.hasPrefix("machine 'D' runs an older apus and this is apus") == true)
        #expect(directory.versionProblem(["E"])?.hasPrefix("machine 'E' runs an unknown apus") == true)
    }

    @Test func machineNamesAreWhatDeployMachineAccepts() {
        for name in ["B", "gpu-box_2", "robot.local"] { #expect(Deployment.isMachineName(name), "\(name)") }
        for name in ["", ".hidden", "a b", "a/b", "--record", "é"] { #expect(!Deployment.isMachineName(name), "\(name)") }
    }

    @Test func labelsPlaceANodeHereFirstThenOnTheFirstMachineByNameThatHasThemAll() throws {
        let flow = try DataflowLoader(checksPaths: false).parse(
            yaml: """
                nodes:
                  - id: camera
                    path: camera
                    outputs: [frame]
                  - id: detector
                    deploy: {labels: {gpu: true, arch: arm64}}
                    path: detector
                    inputs: {frame: camera/frame}
                  - id: logger
                    deploy: {machine: disk, labels: {ssd: "yes"}}
                    path: logger
                    inputs: {frame: camera/frame}
                """, file: "labels.yml", directory: "/flows")
        #expect(flow.nodes[1].deployment.labels == ["gpu": "true", "arch": "arm64"])
        let daemons = [
            "zeta": ["gpu": "true", "arch": "arm64"], "beta": ["gpu": "true", "arch": "arm64", "ram": "64"], "alpha": ["gpu": "true"],
            "disk": ["ssd": "yes"],
        ]
        let placements = try MachineSplit.place(flow, here: "robot", labels: [:], daemons: daemons)
        #expect(placements == ["detector": "beta"])
        // This machine has them: the node stays here.
        #expect(
            try MachineSplit.place(flow, here: "robot", labels: ["gpu": "true", "arch": "arm64"], daemons: daemons) == ["detector": "robot"]
        )
        let placed = MachineSplit.placed(flow, placements)
        #expect(MachineSplit.remoteMachines(placed, local: "robot") == ["beta", "disk"])
        // The part a daemon runs is made from the same placements, carried as arguments.
        #expect(MachineSplit.placements(MachineSplit.placementArguments(placements)) == placements)

        // No machine has them; a named machine lacks them.
        #expect {
            try MachineSplit.place(flow, here: "robot", labels: [:], daemons: ["alpha": ["gpu": "true"], "disk": ["ssd": "yes"]])
        } throws: { error in
            "\(error)"
                == "node 'detector': no machine has labels {arch=arm64, gpu=true} (machines: 'robot' {}, 'alpha' {gpu=true}, 'disk' {ssd=yes})"
        }
        #expect {
            try MachineSplit.place(flow, here: "robot", labels: [:], daemons: ["beta": daemons["beta"]!, "disk": ["ssd": "no"]])
        } throws: { error in
            "\(error)" == "node 'logger': machine 'disk' has labels {ssd=no}, not all of {ssd=yes}"
        }
    }

    @Test func labelOptionsAndPresencesFromTheNetworkAreChecked() throws {
        #expect(
            try MachineSplit.labels(fromArguments: ["gpu=true", "arch=arm64", "a=b=c"].dropLast()) == ["gpu": "true", "arch": "arm64"])
        for bad in ["gpu", "=x", "gpu=", "a b=c", "x=\(String(repeating: "y", count: 65))", "a=b=c"] {
            #expect(throws: PlacementError.self, "\(bad)") { try MachineSplit.labels(fromArguments: [bad]) }
        }
        let presence = Federation.Presence(machine: "gpu", labels: ["arch": "arm64"], instance: "17-ab")
        #expect(presence.encoded().withUnsafeBytes { Federation.Presence($0) } == presence)
        for hostile in [
            "", "{}", "{\"machine\":\"\",\"labels\":{}}", "{\"machine\":\"a\",\"labels\":{\"x\":1},\"instance\":\"1\"}",
            "{\"machine\":\"a\",\"labels\":{}}", "[1]", "\u{ff}",
        ] {
            #expect(Array(hostile.utf8).withUnsafeBytes { Federation.Presence($0) } == nil, "\(hostile)")
        }
    }
}
