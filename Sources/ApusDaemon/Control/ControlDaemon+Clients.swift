// The daemon's clients: accepting, reading request frames, writing responses without blocking.
import ApusDataflow
import ApusTransport
import CApusSys
import Foundation
import Glibc

extension ControlDaemon {
    func accept() {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            // The folder (0700) and socket (0600) keep other users out; the peer's uid is checked too.
            guard apussys_peer_uid(fd) == Int32(bitPattern: getuid()) else {
                close(fd)
                continue
            }
            clients.append(Client(fd: fd, deadline: monotonicNanoseconds() &+ Self.requestTimeout))
        }
    }

    func serve(_ client: Client, _ events: Int16) {
        guard client.fd >= 0 else { return }
        if events & Int16(POLLOUT) != 0 { flush(client) }
        guard client.fd >= 0, events & Int16(POLLIN | POLLHUP | POLLERR) != 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while client.fd >= 0 {
            let count = read(client.fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            if count < 0, errno == EAGAIN { break }
            guard count > 0 else {  // closed by the client (a half-sent request is simply dropped)
                drop(client)
                return
            }
            guard !client.closeWhenFlushed else { continue }  // answered with an error: ignore the rest
            client.input += buffer[0..<count]
            handleFrames(of: client)
        }
    }

    func handleFrames(of client: Client) {
        while client.fd >= 0, !client.closeWhenFlushed {
            let frame: [UInt8]
            do {
                guard let complete = try Frame.take(from: &client.input, limit: ControlProtocol.maximumRequest) else { return }
                frame = complete
            } catch {
                refuse(client, "a request over the limit of \(ControlProtocol.maximumRequest) bytes (\(error))")
                return
            }
            client.deadline = nil
            switch ControlRequest.decode(frame) {
            case .request(let request):
                handle(request, from: client)
            case .otherVersion(let version):
                refuse(client, versionMismatch(version))
                return
            case .malformed:
                refuse(client, "malformed request (\(frame.count) bytes): not a JSON request of apus \(ControlProtocol.version)")
                return
            }
            if client.following == nil { client.deadline = monotonicNanoseconds() &+ Self.requestTimeout }
        }
    }

    func versionMismatch(_ version: String) -> String {
        "version mismatch: this client is apus \(version), the daemon at \(paths.socket) is apus \(ControlProtocol.version) "
            + "(pid \(getpid())); stop it with `apus down` from apus \(ControlProtocol.version), then `apus up` with the new apus"
    }

    /// Answers with an error and closes the connection once the answer is out.
    func refuse(_ client: Client, _ message: String) {
        client.closeWhenFlushed = true
        client.input = []
        reply(client, ControlResponse(ok: false, error: message))
    }

    func reply(_ client: Client, _ response: ControlResponse) {
        guard client.fd >= 0 else { return }
        client.output += response.frame
        flush(client)
    }

    func flush(_ client: Client) {
        while client.fd >= 0, !client.output.isEmpty {
            let written = client.output.withUnsafeBytes { write(client.fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            if written < 0, errno == EAGAIN {
                if client.output.count > Self.maximumPending { drop(client) }
                return
            }
            guard written > 0 else {
                drop(client)
                return
            }
            client.output.removeFirst(written)
        }
        if client.fd >= 0, client.output.isEmpty, client.closeWhenFlushed { drop(client) }
    }

    func drop(_ client: Client) {
        guard client.fd >= 0 else { return }
        close(client.fd)
        client.fd = -1
    }
}
