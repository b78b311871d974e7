// `apus daemon --machine NAME`: this machine's part in dataflows started on other machines. It
// announces the machine (and its labels) over DDS; when a run asks, it has the daemon start a
// part (an `apus run` of the dataflow restricted to this machine's nodes and bridges, listed by
// `apus list` here as NAME@MACHINE), sends back every line the part prints and its end, and has
// the daemon stop it when asked. A part dies with the daemon (its parent-death signal), so the
// other machines see its bridges' liveliness go.
import ApusDataflow
import ApusNetwork
import CApusSys
import Foundation
import Glibc
import Synchronization

public final class MachineAgent: @unchecked Sendable {
    let machine: String
    let labels: [String: String]
    let domain: UInt32
    let log: @Sendable (String) -> Void

    /// A part the daemon runs: the file written for it, and where its output goes. Its lines
    /// come on the daemon's thread, one at a time.
    final class Part: @unchecked Sendable {
        let run: String
        let file: String
        let output: DDSWriter
        var sequence: UInt64 = 0

        init(run: String, file: String, output: DDSWriter) {
            self.run = run
            self.file = file
            self.output = output
        }
    }

    /// Parts that ended, with their status, from the daemon's thread to the agent's.
    final class Ends: Sendable {
        private let ended = Mutex<[(Part, Int32)]>([])

        func append(_ part: Part, _ status: Int32) { ended.withLock { $0.append((part, status)) } }

        func take() -> [(Part, Int32)] {
            ended.withLock { ended in
                let taken = ended
                ended = []
                return taken
            }
        }
    }

    public init(machine: String, labels: [String: String] = [:], domain: UInt32, log: @escaping @Sendable (String) -> Void) {
        self.machine = machine
        self.labels = labels
        self.domain = domain
        self.log = log
    }

    /// Serves until `shouldStop` says so (once the daemon has stopped every part), handing the
    /// parts to run and stop to the daemon through `mailbox`.
    public func serve(mailbox: ControlDaemon.Mailbox, shouldStop: () -> Bool) throws(DDSError) {
        let participant = try DDSParticipant(domain: domain)
        let presence = try DDSWriter(participant, topic: Federation.directoryTopic, delivery: .newest(1))
        let requests = try DDSReader(participant, topic: Federation.requestTopic(machine), delivery: .newest(256))
        let instance = "\(getpid())-" + String(UInt64.random(in: 1...UInt64.max), radix: 16)
        try presence.write(
            seq: 0, timestamp: 0, header: [],
            data: Federation.Presence(machine: machine, labels: labels, instance: instance, version: ControlProtocol.version)
                .encoded())
        log(
            "machine '\(machine)'\(labels.isEmpty ? "" : " with labels \(MachineSplit.describe(labels))") announced on DDS domain \(domain) as daemon \(instance)"
        )
        let directory = try DDSReader(participant, topic: Federation.directoryTopic, delivery: .newest(1024))
        var others = Set<String>()
        var runs = Set<String>()
        let ends = Ends()
        func finish() {
            for (part, status) in ends.take() {
                try? end(part.output, seq: part.sequence, status: status)
                _ = part.output.waitForAcknowledgements(timeoutNanoseconds: 5_000_000_000)
                if !part.file.isEmpty { unlink(part.file) }
                log("run \(part.run): its part ended with status \(status)")
            }
        }
        while !shouldStop() {
            _ = try requests.take(timeoutNanoseconds: 50_000_000) { message throws(DDSError) in
                guard let request = Federation.Request(message.data) else {
                    log("ignored a malformed request of \(message.data.count) bytes")
                    return
                }
                switch request.kind {
                case .start:
                    // A run's request stays on the network while the run lasts: one for the
                    // daemon this one replaced (it was restarted) is not for it.
                    guard request.instance == instance else {
                        log("run \(request.run): ignored a start request for another daemon of machine '\(machine)' (\(request.instance))")
                        return
                    }
                    guard runs.insert(request.run).inserted else { return }
                    try start(request, participant: participant, mailbox: mailbox, ends: ends)
                case .stop:
                    mailbox.post { $0.stopPart(run: request.run) }
                }
            }
            finish()
            _ = try directory.take(timeoutNanoseconds: 0) { message in
                guard let other = Federation.Presence(message.data), other.machine == machine, other.instance != instance,
                    others.insert(other.instance).inserted
                else { return }
                log("another daemon announces machine '\(machine)' too (\(other.instance)): runs that need it fail until one stops")
            }
        }
        finish()
    }

    /// What a start request asks of a machine: the file its part's dataflow is written to, how
    /// many of the dataflow's nodes run there (for `apus list`), and the arguments of the part's
    /// `apus run`.
    @_spi(Fuzzing) public struct PartPlan: Equatable, Sendable {
        public var folder: String
        public var file: String
        public var nodes: Int
        public var arguments: [String]
        public var name: String
    }

    /// The plan of `request` on `machine`: the dataflow goes into the folder its nodes'
    /// `working_dir` names, else next to where it is on the machine that started it (so its
    /// relative paths mean the same). Requests come from the network: one whose names or paths
    /// no run would send is refused, saying what is wrong.
    @_spi(Fuzzing) public static func plan(_ request: Federation.Request, machine: String, domain: UInt32) throws(PlacementError)
        -> PartPlan
    {
        guard Deployment.isMachineName(request.local) else {
            throw PlacementError("the machine that started it, '\(request.local)', is not a machine name")
        }
        guard request.file.hasPrefix("/"), request.folder.isEmpty || request.folder.hasPrefix("/") else {
            throw PlacementError("the dataflow's path '\(request.file)' and folder '\(request.folder)' must be absolute")
        }
        let lines = request.placements.split(separator: "\n").map(String.init)
        let placements = MachineSplit.placements(lines)
        guard placements.count == lines.count, placements.allSatisfy({ !$0.key.isEmpty && Deployment.isMachineName($0.value) }) else {
            throw PlacementError("its placements are not NODE=MACHINE lines: \(lines)")
        }
        let folder = request.folder.isEmpty ? (request.file as NSString).deletingLastPathComponent : request.folder
        let file = folder + "/.\((request.file as NSString).lastPathComponent).\(request.run).\(machine).yml"
        let nodes =
            (try? DataflowLoader(checksPaths: false).parse(yaml: request.yaml, file: file, directory: folder)).map { dataflow in
                MachineSplit.placed(dataflow, placements).nodes.filter { MachineSplit.machine(of: $0, local: request.local) == machine }
                    .count
            } ?? 0
        let arguments =
            ["--machine-part", machine, "--local-machine", request.local, "--network-run", request.run, "--dds-domain", String(domain)]
            + MachineSplit.placementArguments(placements).flatMap { ["--placement", $0] }
            + (request.record.isEmpty ? [] : ["--record", request.record])
        let name = (request.name.isEmpty ? "dataflow" : request.name) + "@" + request.local
        return PartPlan(folder: folder, file: file, nodes: nodes, arguments: arguments, name: name)
    }

    /// Has the daemon start run `request.run`'s part on this machine, run by `apus run`; a
    /// request it cannot plan, or a folder it cannot write in, ends the part at once with the
    /// reason as its output.
    func start(
        _ request: Federation.Request, participant: DDSParticipant, mailbox: ControlDaemon.Mailbox, ends: Ends
    ) throws(DDSError) {
        let output = try DDSWriter(
            participant, topic: Federation.outputTopic(run: request.run, machine: machine), delivery: .newest(1 << 16))
        func refuse(_ part: Part, _ text: String) throws(DDSError) {
            log("run \(request.run): \(text)")
            try send(output, seq: 0, stream: .stderr, "apus: machine '\(machine)': \(text)")
            part.sequence = 1
            ends.append(part, 1)
        }
        let plan: PartPlan
        do {
            plan = try Self.plan(request, machine: machine, domain: domain)
        } catch {
            return try refuse(Part(run: request.run, file: "", output: output), "refused the request to start its part: \(error)")
        }
        let part = Part(run: request.run, file: plan.file, output: output)
        guard FileManager.default.createFile(atPath: plan.file, contents: Data(request.yaml.utf8)) else {
            return try refuse(part, "cannot write the dataflow into \(plan.folder) (it must exist on this machine too)")
        }
        mailbox.post { daemon in
            daemon.startPart(
                MachinePart(
                    run: request.run, name: plan.name, nodes: plan.nodes, file: plan.file, arguments: plan.arguments,
                    directory: plan.folder,
                    line: { standardError, text in
                        try? self.send(part.output, seq: part.sequence, stream: standardError ? .stderr : .stdout, text)
                        part.sequence += 1
                    },
                    ended: { status in ends.append(part, status) }))
        }
    }

    func send(_ writer: DDSWriter, seq: UInt64, stream: Federation.Stream, _ line: String) throws(DDSError) {
        try writer.write(seq: seq, timestamp: 0, header: [stream.rawValue], data: Array(line.utf8))
    }

    /// The part's end: the closed sequence number, its exit status as the payload (4 bytes).
    func end(_ writer: DDSWriter, seq: UInt64, status: Int32) throws(DDSError) {
        try writer.write(
            seq: BridgeMessage.closedSequence, timestamp: 0, header: [], data: withUnsafeBytes(of: status.littleEndian, Array.init))
    }
}
