// The background daemon of `apus up`: runs several dataflows at once, each in an `apus run`
// process of its own (so one dataflow's failure cannot take the others down, and each gets the
// whole tested run engine: builds, wiring, supervision, restarts, the stop ladder), keeps their
// output, and answers the CLI over its control socket. One thread, one poll loop.
import ApusDataflow
import ApusTransport
import CApusSys
import Foundation
import Glibc

public final class ControlDaemon {
    private let paths: ControlPaths
    /// The `apus` executable that runs each dataflow.
    private let executable: String
    private var listener: Int32 = -1
    private var signals: Int32 = -1
    private var lock: Int32 = -1
    private var clients: [Client] = []
    private var dataflows: [Managed] = []
    /// Set by `down` (or SIGTERM): no new dataflows; exit once the running ones have ended.
    private var shuttingDown = false
    private var downClients: [Client] = []

    /// Seconds a client has to send a complete request.
    static let requestTimeout: UInt64 = 10_000_000_000
    /// Output a slow client may have pending before it is dropped.
    static let maximumPending = 8 << 20

    final class Client {
        var fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        var deadline: UInt64?
        /// Streaming a dataflow's lines (logs --follow, start --attach), filtered by node.
        var following: (id: String, node: String?)?
        var closeWhenFlushed = false

        init(fd: Int32, deadline: UInt64) {
            self.fd = fd
            self.deadline = deadline
        }
    }

    final class Managed {
        var status: DataflowStatus
        var stdout: Int32
        var stderr: Int32
        var splitters = [LineSplitter(), LineSplitter()]
        let log: Int32
        var killAt: UInt64?

        init(status: DataflowStatus, stdout: Int32, stderr: Int32, log: Int32) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
            self.log = log
        }

        var isRunning: Bool { status.status == "running" || status.status == "stopping" }
    }

    public init(paths: ControlPaths, executable: String) {
        self.paths = paths
        self.executable = executable
    }

    /// Listens and serves until `down`; returns the process exit code.
    public func run() -> Int32 {
        do {
            try start()
        } catch {
            writeAll(2, "apus daemon: \(error)\n")
            return 1
        }
        writeAll(1, "apus daemon \(ControlProtocol.version) (pid \(getpid())) listening on \(paths.socket)\n")
        loop()
        unlink(paths.socket)
        close(listener)
        close(lock)
        writeAll(1, "apus daemon (pid \(getpid())) stopped\n")
        return 0
    }

    private func start() throws(ControlError) {
        signal(SIGPIPE, SIG_IGN)
        try paths.prepare()
        guard paths.socket.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw .refused("the socket path \(paths.socket) is too long for a Unix socket; set XDG_RUNTIME_DIR to a shorter folder")
        }
        lock = open(paths.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw .system("cannot open \(paths.lock)", errno) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw .refused("another apus daemon is running (it holds \(paths.lock))")
        }
        // The lock is ours, so a socket file left here belongs to a daemon that died: replace it.
        unlink(paths.socket)
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard listener >= 0 else { throw .system("socket", errno) }
        var address = unixAddress(paths.socket)
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(previous)
        guard bound == 0 else { throw .system("cannot bind \(paths.socket)", errno) }
        guard chmod(paths.socket, 0o600) == 0, listen(listener, 64) == 0 else { throw .system("cannot listen on \(paths.socket)", errno) }
        signals = [SIGINT, SIGTERM, SIGCHLD, SIGHUP].withUnsafeBufferPointer { apussys_signalfd($0.baseAddress, Int32($0.count)) }
        guard signals >= 0 else { throw .system("signalfd", -signals) }
    }

    // MARK: Loop

    private enum Source {
        case signals, listener, client(Client), output(Managed, Int)
    }

    private func loop() {
        while !(shuttingDown && !dataflows.contains(where: \.isRunning) && clients.allSatisfy { $0.output.isEmpty }) {
            var entries: [pollfd] = []
            var sources: [Source] = []
            func watch(_ fd: Int32, _ events: Int32, _ source: Source) {
                entries.append(pollfd(fd: fd, events: Int16(events), revents: 0))
                sources.append(source)
            }
            watch(signals, POLLIN, .signals)
            if !shuttingDown { watch(listener, POLLIN, .listener) }
            for client in clients { watch(client.fd, POLLIN | (client.output.isEmpty ? 0 : POLLOUT), .client(client)) }
            for managed in dataflows {
                if managed.stdout >= 0 { watch(managed.stdout, POLLIN, .output(managed, 0)) }
                if managed.stderr >= 0 { watch(managed.stderr, POLLIN, .output(managed, 1)) }
            }
            let now = monotonicNanoseconds()
            let deadlines = clients.compactMap(\.deadline) + dataflows.compactMap(\.killAt)
            let timeout = deadlines.min().map { Int32(clamping: ($0 > now ? $0 - now : 0) / 1_000_000 + 1) } ?? -1
            guard poll(&entries, nfds_t(entries.count), timeout) >= 0 || errno == EINTR else { return }
            for (entry, source) in zip(entries, sources) where entry.revents != 0 {
                switch source {
                case .signals: handleSignals()
                case .listener: accept()
                case .client(let client): serve(client, entry.revents)
                case .output(let managed, let stream): readOutput(of: managed, stream)
                }
            }
            expireDeadlines()
            clients.removeAll { $0.fd < 0 }
        }
        for client in downClients where client.fd >= 0 {
            writeAll(client.fd, frame(ControlResponse(ok: true)))
        }
    }

    private func handleSignals() {
        while true {
            let number = apussys_signalfd_read(signals)
            guard number > 0 else { return }
            switch number {
            case SIGCHLD: reapChildren()
            case SIGINT, SIGTERM: beginShutdown()
            default: break
            }
        }
    }

    private func expireDeadlines() {
        let now = monotonicNanoseconds()
        for client in clients where client.fd >= 0 {
            if let deadline = client.deadline, deadline <= now { drop(client) }
        }
        for managed in dataflows where managed.isRunning {
            if let killAt = managed.killAt, killAt <= now {
                // A second SIGINT makes `apus run` kill its nodes at once.
                kill(managed.status.pid, SIGINT)
                managed.killAt = nil
            }
        }
    }

    private func beginShutdown() {
        shuttingDown = true
        for managed in dataflows where managed.status.status == "running" { stop(managed, grace: 10) }
    }

    // MARK: Clients

    private func accept() {
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

    private func serve(_ client: Client, _ events: Int16) {
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

    private func handleFrames(of client: Client) {
        while client.fd >= 0, !client.closeWhenFlushed, client.input.count >= 4 {
            let length = Int(client.input[0]) << 24 | Int(client.input[1]) << 16 | Int(client.input[2]) << 8 | Int(client.input[3])
            guard length <= ControlProtocol.maximumFrame else {
                refuse(client, "a request of \(length) bytes is over the limit of \(ControlProtocol.maximumFrame) bytes")
                return
            }
            guard client.input.count >= 4 + length else { return }
            let body = Data(client.input[4..<(4 + length)])
            client.input.removeFirst(4 + length)
            client.deadline = nil
            let request: ControlRequest
            do {
                request = try JSONDecoder().decode(ControlRequest.self, from: body)
            } catch {
                struct Version: Decodable { var version: String }
                if let version = try? JSONDecoder().decode(Version.self, from: body), version.version != ControlProtocol.version {
                    refuse(client, versionMismatch(version.version))
                } else {
                    refuse(client, "malformed request (\(body.count) bytes): not a JSON request of apus \(ControlProtocol.version)")
                }
                return
            }
            guard request.version == ControlProtocol.version else {
                refuse(client, versionMismatch(request.version))
                return
            }
            handle(request, from: client)
            if client.following == nil { client.deadline = monotonicNanoseconds() &+ Self.requestTimeout }
        }
    }

    private func versionMismatch(_ version: String) -> String {
        "version mismatch: this client is apus \(version), the daemon at \(paths.socket) is apus \(ControlProtocol.version) "
            + "(pid \(getpid())); stop it with `apus down` from apus \(ControlProtocol.version), then `apus up` with the new apus"
    }

    private func refuse(_ client: Client, _ message: String) {
        reply(client, ControlResponse(ok: false, error: message))
        client.closeWhenFlushed = true
        client.input = []
    }

    private func reply(_ client: Client, _ response: ControlResponse) {
        guard client.fd >= 0 else { return }
        client.output += frame(response)
        flush(client)
    }

    private func flush(_ client: Client) {
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

    private func drop(_ client: Client) {
        guard client.fd >= 0 else { return }
        close(client.fd)
        client.fd = -1
    }

    // MARK: Requests

    private func handle(_ request: ControlRequest, from client: Client) {
        switch request.command {
        case .ping:
            var response = ControlResponse(ok: true)
            response.pid = getpid()
            reply(client, response)
        case .list:
            var response = ControlResponse(ok: true)
            response.dataflows = dataflows.map(\.status)
            reply(client, response)
        case .start:
            start(request, for: client)
        case .stop:
            guard let managed = find(request.name, for: client) else { return }
            guard managed.isRunning else {
                reply(client, ControlResponse(ok: false, error: "dataflow '\(managed.status.name)' (\(managed.status.id)) has already ended: \(managed.status.status)"))
                return
            }
            stop(managed, grace: request.grace ?? 10)
            var response = ControlResponse(ok: true)
            response.dataflow = managed.status
            reply(client, response)
        case .logs:
            guard let managed = find(request.name, for: client) else { return }
            sendLogs(of: managed, node: request.node, follow: request.follow ?? false, to: client)
        case .down:
            let running = dataflows.filter(\.isRunning)
            if !running.isEmpty, request.force != true {
                let names = running.map { "'\($0.status.name)'" }.joined(separator: ", ")
                reply(client, ControlResponse(ok: false, error: "\(running.count) dataflow\(running.count == 1 ? " is" : "s are") running (\(names)): stop \(running.count == 1 ? "it" : "them") first, or `apus down --force`"))
                return
            }
            downClients.append(client)
            client.deadline = nil
            beginShutdown()
        }
    }

    private func find(_ name: String?, for client: Client) -> Managed? {
        guard let name else {
            reply(client, ControlResponse(ok: false, error: "name a dataflow (its name or id)"))
            return nil
        }
        if let match = dataflows.first(where: { $0.status.id == name }) ?? dataflows.last(where: { $0.status.name == name }) {
            return match
        }
        let known = dataflows.map { "\($0.status.name) (\($0.status.id))" }.joined(separator: ", ")
        reply(client, ControlResponse(ok: false, error: "no dataflow named '\(name)' (dataflows: \(known.isEmpty ? "none" : known))"))
        return nil
    }

    private func start(_ request: ControlRequest, for client: Client) {
        guard !shuttingDown else {
            reply(client, ControlResponse(ok: false, error: "the daemon is shutting down"))
            return
        }
        guard let file = request.file, file.hasPrefix("/") else {
            reply(client, ControlResponse(ok: false, error: "start needs the dataflow file as an absolute path"))
            return
        }
        let descriptor: DataflowDescriptor
        do {
            descriptor = try DataflowLoader().load(file: file)
        } catch {
            let problems = error.diagnostics.map(\.description)
            reply(client, ControlResponse(ok: false, error: (problems + ["\(file): \(problems.count) error\(problems.count == 1 ? "" : "s"); nothing was started"]).joined(separator: "\n")))
            return
        }
        let base = String(file.split(separator: "/").last ?? "dataflow")
        let name = request.name ?? String(base.hasSuffix(".yml") || base.hasSuffix(".yaml") ? base[..<base.lastIndex(of: ".")!] : base[...])
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }) else {
            reply(client, ControlResponse(ok: false, error: "'\(name)' is not a dataflow name: use letters, digits, _ . - (at most 64)"))
            return
        }
        if let running = dataflows.first(where: { $0.isRunning && $0.status.name == name }) {
            reply(client, ControlResponse(ok: false, error: "a dataflow named '\(name)' is running (id \(running.status.id)); give another --name"))
            return
        }
        var id = ""
        repeat { id = String(UInt32.random(in: 0...UInt32.max), radix: 16).leftPadded(8) } while dataflows.contains { $0.status.id == id }
        let logPath = "\(paths.runs)/\(id).log"
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            reply(client, ControlResponse(ok: false, error: "cannot create \(logPath): \(String(cString: strerror(errno)))"))
            return
        }
        let directory = String(file[..<file.lastIndex(of: "/")!])
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn([executable, "run", file, "--no-color"], environment: request.environment ?? currentEnvironment(),
                                           directory: directory.isEmpty ? "/" : directory)
        } catch {
            close(log)
            reply(client, ControlResponse(ok: false, error: "cannot start the dataflow: \(error)"))
            return
        }
        let status = DataflowStatus(
            id: id, name: name, file: file, status: "running", nodes: descriptor.nodes.count, startedAt: Date().timeIntervalSince1970,
            endedAt: nil, restarts: 0, exitStatus: nil, pid: child.pid)
        let managed = Managed(status: status, stdout: child.stdout, stderr: child.stderr, log: log)
        dataflows.append(managed)
        var response = ControlResponse(ok: true)
        response.dataflow = status
        reply(client, response)
        if request.follow == true { client.following = (id, nil); client.deadline = nil }
    }

    private func stop(_ managed: Managed, grace: Double) {
        guard managed.status.status == "running" else { return }
        managed.status.status = "stopping"
        kill(managed.status.pid, SIGINT)
        managed.killAt = monotonicNanoseconds() &+ UInt64(max(0, min(grace, 3600)) * 1e9)
    }

    private func sendLogs(of managed: Managed, node: String?, follow: Bool, to client: Client) {
        var lines: [String] = []
        if let text = readTextFile("\(paths.runs)/\(managed.status.id).log") {
            lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }
        var response = ControlResponse(ok: true)
        response.dataflow = managed.status
        reply(client, response)
        let selected = lines.compactMap { select($0, node) }
        for start in stride(from: 0, to: selected.count, by: 2000) {
            var chunk = ControlResponse(ok: true)
            chunk.lines = Array(selected[start..<min(selected.count, start + 2000)])
            reply(client, chunk)
        }
        if follow, managed.isRunning {
            client.following = (managed.status.id, node)
            client.deadline = nil
        } else {
            end(client, managed)
        }
    }

    /// The line as a follower of `node` sees it: the node's own lines without their prefix.
    private func select(_ line: String, _ node: String?) -> String? {
        guard let node else { return line }
        let prefix = "[\(node)] "
        return line.hasPrefix(prefix) ? String(line.dropFirst(prefix.count)) : nil
    }

    private func end(_ client: Client, _ managed: Managed) {
        var response = ControlResponse(ok: true)
        response.end = true
        response.exitStatus = managed.status.exitStatus
        response.dataflow = managed.status
        reply(client, response)
        client.following = nil
        client.closeWhenFlushed = true
        flush(client)
    }

    // MARK: Dataflow processes

    private func readOutput(of managed: Managed, _ stream: Int) {
        let fd = stream == 0 ? managed.stdout : managed.stderr
        var lines: [String] = []
        let open = drainPipe(fd, into: &managed.splitters[stream]) { lines.append($0) }
        if !open {
            close(fd)
            if stream == 0 { managed.stdout = -1 } else { managed.stderr = -1 }
        }
        record(lines, of: managed)
    }

    private func record(_ lines: [String], of managed: Managed) {
        guard !lines.isEmpty else { return }
        var bytes: [UInt8] = []
        for line in lines {
            bytes += Array(line.utf8) + [10]
            if line.hasPrefix("apus: node '"), line.contains("; restarting (") { managed.status.restarts += 1 }
        }
        writeAll(managed.log, bytes)
        for client in clients where client.fd >= 0 && client.following?.id == managed.status.id {
            let selected = lines.compactMap { select($0, client.following?.node) }
            guard !selected.isEmpty else { continue }
            var response = ControlResponse(ok: true)
            response.lines = selected
            reply(client, response)
        }
    }

    private func reapChildren() {
        for managed in dataflows where managed.isRunning {
            var signaled: Int32 = 0
            var value: Int32 = 0
            guard apussys_reap(managed.status.pid, 0, &signaled, &value) == managed.status.pid else { continue }
            // What it printed last is still in the pipes: read it before reporting the end.
            for stream in [0, 1] where (stream == 0 ? managed.stdout : managed.stderr) >= 0 { readOutput(of: managed, stream) }
            managed.status.exitStatus = signaled != 0 ? 128 + value : value
            managed.status.status = managed.status.exitStatus == 0 ? "finished" : "failed"
            managed.status.endedAt = Date().timeIntervalSince1970
            managed.killAt = nil
            for fd in [managed.stdout, managed.stderr] where fd >= 0 { close(fd) }
            managed.stdout = -1
            managed.stderr = -1
            close(managed.log)
            for client in clients where client.fd >= 0 && client.following?.id == managed.status.id { end(client, managed) }
        }
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
