// `apus daemon --machine NAME`: this machine's part in dataflows started on other machines. It
// announces the machine over DDS, starts a part when a run asks (an `apus run` of the dataflow
// restricted to this machine's nodes and bridges), sends back every line the part prints and
// its end, and stops it when asked. A part dies with the daemon (its parent-death signal), so
// the other machines see its bridges' liveliness go.
import ApusNetwork
import CApusSys
import Foundation
import Glibc

public final class MachineAgent: @unchecked Sendable {
    let machine: String
    let domain: UInt32
    let executable: String
    let log: @Sendable (String) -> Void

    /// A running part: its `apus run` process, the file it runs, and where its output goes.
    final class Part {
        let run: String
        let child: ChildProcess
        let file: String
        let output: DDSWriter
        var pipes: [Int32]
        var splitters = [LineSplitter(), LineSplitter()]
        var sequence: UInt64 = 0

        init(run: String, child: ChildProcess, file: String, output: DDSWriter) {
            self.run = run
            self.child = child
            self.file = file
            self.output = output
            pipes = [child.stdout, child.stderr]
        }
    }

    public init(machine: String, domain: UInt32, executable: String, log: @escaping @Sendable (String) -> Void) {
        self.machine = machine
        self.domain = domain
        self.executable = executable
        self.log = log
    }

    /// Serves until `shouldStop` says so; then stops the parts still running.
    public func serve(shouldStop: () -> Bool) throws(DDSError) {
        let participant = try DDSParticipant(domain: domain)
        let presence = try DDSWriter(participant, topic: Federation.presenceTopic(machine), delivery: .newest(1))
        let requests = try DDSReader(participant, topic: Federation.requestTopic(machine), delivery: .newest(256))
        try presence.write(seq: 0, timestamp: 0, header: [], data: Array("apus daemon on \(machine)".utf8))
        log("machine '\(machine)' announced on DDS domain \(domain)")
        var parts: [Part] = []
        while !shouldStop() {
            _ = try requests.take(timeoutNanoseconds: 50_000_000) { message throws(DDSError) in
                guard let request = Federation.Request(message.data) else {
                    log("ignored a malformed request of \(message.data.count) bytes")
                    return
                }
                switch request.kind {
                case .start:
                    guard !parts.contains(where: { $0.run == request.run }) else { return }
                    if let part = try start(request, participant: participant) { parts.append(part) }
                case .stop:
                    for part in parts where part.run == request.run { kill(-part.child.pid, SIGINT) }
                }
            }
            parts.removeAll { forward($0) }
        }
        for part in parts { kill(-part.child.pid, SIGINT) }
        while !parts.isEmpty {
            usleep(20_000)
            parts.removeAll { forward($0) }
        }
    }

    /// Starts run `request.run`'s part on this machine: the dataflow written into the folder its
    /// nodes' `working_dir` names, else next to where it is on the machine that started it (so
    /// its relative paths mean the same), run by `apus run`.
    func start(_ request: Federation.Request, participant: DDSParticipant) throws(DDSError) -> Part? {
        let output = try DDSWriter(
            participant, topic: Federation.outputTopic(run: request.run, machine: machine), delivery: .newest(1 << 16))
        let folder = request.folder.isEmpty ? (request.file as NSString).deletingLastPathComponent : request.folder
        let file = folder + "/.\((request.file as NSString).lastPathComponent).\(request.run).\(machine).yml"
        func fail(_ text: String) throws(DDSError) -> Part? {
            log("run \(request.run): \(text)")
            try send(output, seq: 0, stream: .stderr, "apus: machine '\(machine)': \(text)")
            try end(output, seq: 1, status: 1)
            return nil
        }
        guard FileManager.default.createFile(atPath: file, contents: Data(request.yaml.utf8)) else {
            return try fail("cannot write the dataflow into \(folder) (it must exist on this machine too)")
        }
        let arguments = [
            executable, "run", file, "--no-color", "--machine-part", machine, "--local-machine", request.local, "--network-run",
            request.run, "--dds-domain", String(domain),
        ]
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        do {
            let child = try ChildProcess.spawn(arguments, environment: environment, directory: folder)
            log("run \(request.run): started its part (pid \(child.pid))")
            return Part(run: request.run, child: child, file: file, output: output)
        } catch {
            unlink(file)
            return try fail("\(error)")
        }
    }

    /// Sends what `part` printed; when it has ended, its status. True once it has ended.
    func forward(_ part: Part) -> Bool {
        for stream in 0..<2 where part.pipes[stream] >= 0 {
            var lines: [String] = []
            if !drainPipe(part.pipes[stream], into: &part.splitters[stream], { lines.append($0) }) {
                close(part.pipes[stream])
                part.pipes[stream] = -1
            }
            for line in lines {
                try? send(part.output, seq: part.sequence, stream: stream == 0 ? .stdout : .stderr, line)
                part.sequence += 1
            }
        }
        var signaled: Int32 = 0
        var value: Int32 = 0
        guard part.pipes.allSatisfy({ $0 < 0 }), apussys_reap(part.child.pid, 0, &signaled, &value) == part.child.pid else { return false }
        let status = signaled != 0 ? 128 + value : value
        try? end(part.output, seq: part.sequence, status: status)
        _ = part.output.waitForAcknowledgements(timeoutNanoseconds: 5_000_000_000)
        unlink(part.file)
        log("run \(part.run): its part ended with status \(status)")
        return true
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
