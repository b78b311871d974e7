// `apus run` of a dataflow whose nodes name other machines: finds each machine's daemon over DDS
// before anything starts, asks each to start its part, prints what the parts print (prefixed
// with the machine), asks them to stop when the run stops, and reports how each ended.
import ApusNetwork
import Foundation
import Glibc
import Synchronization

public final class MachineCoordinator: @unchecked Sendable {
    let run: String
    let participant: DDSParticipant
    let print: @Sendable (String) -> Void
    /// The machines asked to start a part (`start`).
    private(set) var machines: [String] = []
    private var requests: [String: DDSWriter] = [:]
    /// Each machine's daemon that `findDaemons` found (its presence's instance): start requests
    /// are for it alone.
    private var instances: [String: String] = [:]
    /// Per machine: its part's exit status once it ended, or why it is lost.
    private let outcomes = Mutex<[String: Result<Int32, DDSError>]>([:])
    /// Told when a part ends with a failure (it could not start, or its nodes failed) or its
    /// machine is lost: the run's part here stops then, rather than wait for what will not come.
    let failures: StopRequest?
    /// How long after a machine is lost the run here is stopped: time for its stand-ins to fail.
    static let lostMachineStopDelay: DispatchTimeInterval = .seconds(2)

    public init(run: String, domain: UInt32, failures: StopRequest? = nil, print: @escaping @Sendable (String) -> Void)
        throws(DDSError)
    {
        self.run = run
        self.print = print
        self.failures = failures
        participant = try DDSParticipant(domain: domain)
    }

    /// What `findDaemons` found: each machine's labels, and the machines that more than one
    /// daemon announces (asked to start a part, each would run it).
    public struct Directory: Sendable {
        public var labels: [String: [String: String]] = [:]
        public var instances: [String: Set<String>] = [:]
        /// Each machine's daemon's Apus version.
        public var versions: [String: String] = [:]

        public init() {}

        public var duplicated: Set<String> { Set(instances.filter { $0.value.count > 1 }.keys) }

        /// Why the daemons of `machines` cannot run a part for this Apus, if one runs another
        /// version (requests and bridges are only understood between equal versions); nil if all
        /// can.
        public func versionProblem(_ machines: [String], here: String = ControlProtocol.version) -> String? {
            guard let other = machines.first(where: { versions[$0] != here }) else { return nil }
            let theirs = versions[other].map { $0.isEmpty ? "an older apus" : "apus \($0)" } ?? "an unknown apus"
            return "machine '\(other)' runs \(theirs) and this is apus \(here): run one version on every machine"
        }
    }

    /// Waits up to `timeoutSeconds` for the daemons of every machine `named`, and for each label
    /// set of `labelled` one whose machine has them (or this machine has them: `here`), and
    /// returns every daemon found. The error names those missing.
    public func findDaemons(
        named: [String], labelled: [[String: String]] = [], here: [String: String] = [:], timeoutSeconds: Double
    ) throws(DDSError) -> Directory {
        let reader = try DDSReader(participant, topic: Federation.directoryTopic, delivery: .newest(1024))
        var found = Directory()
        func take(waiting nanoseconds: Int64) throws(DDSError) {
            _ = try reader.take(timeoutNanoseconds: nanoseconds) { message in
                guard let presence = Federation.Presence(message.data) else { return }
                found.labels[presence.machine] = presence.labels
                found.instances[presence.machine, default: []].insert(presence.instance)
                found.versions[presence.machine] = presence.version
            }
        }
        func complete() -> Bool {
            named.allSatisfy { found.labels[$0] != nil }
                && labelled.allSatisfy { wanted in
                    MachineSplit.has(here, wanted) || found.labels.values.contains { MachineSplit.has($0, wanted) }
                }
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        repeat { try take(waiting: 10_000_000) } while !complete() && Date() < deadline
        let missing = named.filter { found.labels[$0] == nil }
        guard missing.isEmpty else {
            throw DDSError(
                "no daemon for machine\(missing.count == 1 ? "" : "s") \(missing.map { "'\($0)'" }.joined(separator: ", ")) on DDS (waited \(timeoutSeconds) s): start `apus daemon --machine NAME` there, on the same DDS domain"
            )
        }
        // A second daemon of a machine found is announced at about the same moment: wait a little.
        try take(waiting: 100_000_000)
        instances = found.instances.compactMapValues { $0.count == 1 ? $0.first : nil }
        return found
    }

    /// Asks every machine of `machines` to start its part of run `name`, the dataflow in `file` (its text
    /// `yaml`, with the nodes `placements` places by their labels), in the folder `folders` names
    /// for it (its nodes' `working_dir`), recorded into `record` on this machine (`--record`; empty:
    /// not recorded), and follows what each prints.
    public func start(
        machines: [String], name: String, file: String, yaml: String, local: String, placements: [String: String],
        folders: [String: String], record: String = ""
    ) throws(DDSError) {
        self.machines = machines
        for machine in machines {
            let output = try DDSReader(
                participant, topic: Federation.outputTopic(run: run, machine: machine), delivery: .everyMessage(buffered: 1 << 16))
            Thread.detachNewThread { [self] in follow(machine, output) }
            let writer = try DDSWriter(participant, topic: Federation.requestTopic(machine), delivery: .newest(16))
            requests[machine] = writer
            let deadline = Date().addingTimeInterval(10)
            while writer.matchedReaders == 0, Date() < deadline { usleep(5_000) }
            let request = Federation.Request(
                kind: .start, run: run, local: local, yaml: yaml, file: file, folder: folders[machine] ?? "",
                placements: MachineSplit.placementArguments(placements).joined(separator: "\n"), name: name, record: record,
                instance: instances[machine] ?? "")
            try writer.write(seq: 0, timestamp: 0, header: [], data: request.encoded())
        }
    }

    /// Asks every part still running to stop (STOP to its nodes, as Ctrl-C would).
    public func stop() {
        for (machine, writer) in requests where outcome(machine) == nil {
            try? writer.write(seq: 1, timestamp: 0, header: [], data: Federation.Request(kind: .stop, run: run).encoded())
        }
    }

    func outcome(_ machine: String) -> Result<Int32, DDSError>? {
        outcomes.withLock { $0[machine] }
    }

    /// Waits for every part to end (up to `timeoutSeconds`), and returns per machine how it
    /// ended: its status, or why it is lost.
    public func wait(timeoutSeconds: Double) -> [(machine: String, outcome: Result<Int32, DDSError>)] {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while machines.contains(where: { outcome($0) == nil }), Date() < deadline { usleep(20_000) }
        return machines.map { machine in
            (machine, outcome(machine) ?? .failure(DDSError("did not end within \(Int(timeoutSeconds)) s of the run's end")))
        }
    }

    /// Prints what `machine`'s part prints, `[node] line` as `[machine/node] line`, until it ends
    /// or its daemon's liveliness is lost.
    func follow(_ machine: String, _ reader: DDSReader) {
        var seenAlive = false
        var expected: UInt64 = 0
        while outcome(machine) == nil {
            do {
                _ = try reader.take(timeoutNanoseconds: 100_000_000) { message in
                    if message.seq == BridgeMessage.closedSequence {
                        let status = message.data.count == 4 ? Int32(littleEndian: message.data.loadUnaligned(as: Int32.self)) : 1
                        record(machine, .success(status))
                        return
                    }
                    guard message.seq >= expected else { return }
                    expected = message.seq + 1
                    let line = String(decoding: message.data, as: UTF8.self)
                    print(line.hasPrefix("[") ? "[\(machine)/" + line.dropFirst() : "[\(machine)] \(line)")
                }
            } catch {
                record(machine, .failure(error))
            }
            let writers = reader.writers
            if writers.alive > 0 { seenAlive = true }
            if seenAlive, writers.alive == 0, outcome(machine) == nil {
                record(machine, .failure(DDSError("lost: its daemon stopped answering (DDS liveliness)")))
            }
        }
    }

    func record(_ machine: String, _ result: Result<Int32, DDSError>) {
        let first = outcomes.withLock { outcomes in
            guard outcomes[machine] == nil else { return false }
            outcomes[machine] = result
            return true
        }
        guard first, let failures else { return }
        switch result {
        case .success(let status) where status != 0:
            failures.request("machine '\(machine)': its part exited with status \(status)")
        case .failure(let error):
            // Lost: its stand-ins here see it within the same lease and fail, so that their
            // consumers get NODE_FAILED; what still runs here (a node that only sent to it) stops
            // after them.
            DispatchQueue.global().asyncAfter(deadline: .now() + Self.lostMachineStopDelay) {
                failures.request("machine '\(machine)': \(error)")
            }
        default:
            break
        }
    }
}
