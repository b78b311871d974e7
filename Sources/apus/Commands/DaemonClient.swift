// What the daemon commands share: one request and its answer, streamed lines, pings.
import ApusDaemon
import ApusTransport
import ArgumentParser
import Foundation
import Glibc

let socketDiscussion = """
    The daemon's socket is $XDG_RUNTIME_DIR/apus/daemon.sock (or /tmp/apus-UID/daemon.sock when \
    XDG_RUNTIME_DIR is unset), in a folder only this user can enter.
    """

/// Connects, sends one request and returns the connection with the first response.
func exchange(_ request: ControlRequest, paths: ControlPaths) throws(ControlError) -> (ControlConnection, ControlResponse) {
    let connection = try ControlConnection.connect(paths.socket)
    try connection.send(request)
    guard let response = try connection.receive() else { throw .protocolViolation("the connection closed without an answer") }
    return (connection, response)
}

/// Sends one request and returns the first response, failing with the daemon's message.
func request(_ request: ControlRequest, paths: ControlPaths = ControlPaths()) throws -> (ControlConnection, ControlResponse) {
    do {
        let (connection, response) = try exchange(request, paths: paths)
        guard response.ok else {
            printError(
                response.version != ControlProtocol.version || response.error?.hasPrefix("version mismatch") == true
                    ? "apus: this apus is \(ControlProtocol.version) but the daemon is \(response.version): \(response.error ?? "")"
                    : "apus: \(response.error ?? "the daemon refused the request")")
            throw ExitCode(1)
        }
        return (connection, response)
    } catch let error as ControlError {
        printError("apus: \(error)")
        throw ExitCode(1)
    }
}

/// Prints streamed lines until the end frame; returns the dataflow's exit status. With
/// `interrupts`, each SIGINT it reports calls `interrupt` (which asks the daemon to stop).
func stream(_ connection: ControlConnection, interrupts: SignalWatch? = nil, interrupt: () -> Void = {}) throws -> Int32 {
    while true {
        var entries = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)]
        if let interrupts { entries.append(pollfd(fd: interrupts.fd, events: Int16(POLLIN), revents: 0)) }
        guard poll(&entries, nfds_t(entries.count), -1) > 0 else { continue }
        if let interrupts, entries.count > 1, entries[1].revents != 0 {
            while interrupts.next() != nil { interrupt() }
        }
        guard entries[0].revents != 0 else { continue }
        let response: ControlResponse?
        do {
            response = try connection.receive()
        } catch {
            printError("apus: \(error)")
            throw ExitCode(1)
        }
        guard let response else {
            printError("apus: the daemon closed the connection")
            throw ExitCode(1)
        }
        let lines = response.lines ?? []
        if !lines.isEmpty { writeAll(1, lines.joined(separator: "\n") + "\n") }
        if response.end == true { return response.exitStatus ?? 0 }
    }
}

func ping(_ paths: ControlPaths) throws(ControlError) -> ControlResponse {
    let (_, response) = try exchange(ControlRequest(.ping), paths: paths)
    guard response.ok else { throw .protocolViolation("no answer to ping") }
    return response
}
