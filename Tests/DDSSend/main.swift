// A test tool that plays a broken or hostile host on the network: it publishes bytes as requests
// to a machine's daemon over DDS, where `apus run` would publish its start and stop requests.
//
//     apus-dds-send DOMAIN MACHINE FILE...
//
// Each file's bytes go as one request, once the daemon's reader has matched (within 10 s); it
// exits 0 when the daemon has acknowledged them all.
import ApusNetwork
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 3, let domain = UInt32(arguments[0]) else {
    FileHandle.standardError.write(Data("usage: apus-dds-send DOMAIN MACHINE FILE...\n".utf8))
    exit(2)
}
let machine = arguments[1]
do {
    let participant = try DDSParticipant(domain: domain)
    let writer = try DDSWriter(participant, topic: Federation.requestTopic(machine), delivery: .newest(16))
    let deadline = Date().addingTimeInterval(10)
    while writer.matchedReaders == 0 {
        guard Date() < deadline else { throw DDSError("no daemon for machine '\(machine)' on DDS domain \(domain) within 10 s") }
        usleep(5_000)
    }
    for (sequence, path) in arguments.dropFirst(2).enumerated() {
        guard let bytes = FileManager.default.contents(atPath: path) else { throw DDSError("cannot read \(path)") }
        try writer.write(seq: UInt64(sequence), timestamp: 0, header: [], data: Array(bytes))
    }
    guard writer.waitForAcknowledgements(timeoutNanoseconds: 10_000_000_000) else {
        throw DDSError("machine '\(machine)' did not acknowledge the requests within 10 s")
    }
    print("apus-dds-send: \(arguments.count - 2) requests sent to machine '\(machine)'")
} catch {
    FileHandle.standardError.write(Data("apus-dds-send: \(error)\n".utf8))
    exit(1)
}
