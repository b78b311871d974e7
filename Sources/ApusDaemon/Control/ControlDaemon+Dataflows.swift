// The `apus run` processes the daemon runs dataflows in: their output, events and exits.
import ApusDataflow
import ApusTransport
import CApusSys
import Foundation
import Glibc

extension ControlDaemon {
    func readOutput(of managed: Managed, _ stream: Managed.Stream) {
        let fd = managed.pipes[stream.rawValue]
        var lines: [String] = []
        let open = drainPipe(fd, into: &managed.splitters[stream.rawValue]) { lines.append($0) }
        if !open {
            close(fd)
            managed.pipes[stream.rawValue] = -1
        }
        if stream == .events {
            for event in lines.compactMap(RunEvent.init(line:)) {
                switch event {
                case .restarted: managed.status.restarts += 1
                }
            }
        } else {
            record(lines, of: managed)
            if let part = managed.part { for line in lines { part.line(stream == .stderr, line) } }
        }
    }

    func record(_ lines: [String], of managed: Managed) {
        guard !lines.isEmpty else { return }
        writeAll(managed.log, lines.joined(separator: "\n") + "\n")
        for client in clients where client.fd >= 0 && client.following?.id == managed.status.id {
            let selected = lines.compactMap { select($0, client.following?.node) }
            guard !selected.isEmpty else { continue }
            var response = ControlResponse(ok: true)
            response.lines = selected
            reply(client, response)
        }
    }

    func reapChildren() {
        for managed in dataflows where managed.isRunning {
            var signaled: Int32 = 0
            var value: Int32 = 0
            guard apussys_reap(managed.status.pid, 0, &signaled, &value) == managed.status.pid else { continue }
            // What it printed last is still in the pipes: read it before reporting the end.
            for stream in Managed.Stream.allCases where managed.pipes[stream.rawValue] >= 0 { readOutput(of: managed, stream) }
            managed.status.exitStatus = signaled != 0 ? 128 + value : value
            managed.status.status = managed.status.exitStatus == 0 ? .finished : .failed
            managed.status.endedAt = Date().timeIntervalSince1970
            managed.killAt = nil
            for fd in managed.pipes where fd >= 0 { close(fd) }
            managed.pipes = managed.pipes.map { _ in -1 }
            close(managed.log)
            managed.part?.ended(managed.status.exitStatus ?? 1)
            for client in clients where client.fd >= 0 && client.following?.id == managed.status.id { end(client, managed) }
        }
    }
}
