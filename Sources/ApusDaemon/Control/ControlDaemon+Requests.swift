// What the daemon does for each request: ping, list, start, stop, logs, down.
import ApusDataflow
import ApusTransport
import CApusSys
import Foundation
import Glibc

extension ControlDaemon {
    func handle(_ request: ControlRequest, from client: Client) {
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
                reply(
                    client,
                    ControlResponse(
                        ok: false,
                        error: "dataflow '\(managed.status.name)' (\(managed.status.id)) has already ended: \(managed.status.status)"))
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
                reply(
                    client,
                    ControlResponse(
                        ok: false,
                        error:
                            "\(running.count) dataflow\(running.count == 1 ? " is" : "s are") running (\(names)): stop \(running.count == 1 ? "it" : "them") first, or `apus down --force`"
                    ))
                return
            }
            downClients.append(client)
            client.deadline = nil
            beginShutdown()
        }
    }

    func find(_ name: String?, for client: Client) -> Managed? {
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

    func start(_ request: ControlRequest, for client: Client) {
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
            reply(
                client,
                ControlResponse(
                    ok: false,
                    error: (problems + ["\(file): \(problems.count) error\(problems.count == 1 ? "" : "s"); nothing was started"]).joined(
                        separator: "\n")))
            return
        }
        let base = String(file.split(separator: "/").last ?? "dataflow")
        let name = request.name ?? String(base.hasSuffix(".yml") || base.hasSuffix(".yaml") ? base[..<base.lastIndex(of: ".")!] : base[...])
        guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }) else {
            reply(client, ControlResponse(ok: false, error: "'\(name)' is not a dataflow name: use letters, digits, _ . - (at most 64)"))
            return
        }
        if let running = dataflows.first(where: { $0.isRunning && $0.status.name == name }) {
            reply(
                client,
                ControlResponse(ok: false, error: "a dataflow named '\(name)' is running (id \(running.status.id)); give another --name"))
            return
        }
        var arguments = ["--name=\(name)"]
        if let machine = request.machine { arguments.append("--machine=\(machine)") }
        if let domain = request.ddsDomain { arguments.append("--dds-domain=\(domain)") }
        for label in request.labels ?? [] { arguments.append("--label=\(label)") }
        if let timeout = request.discoveryTimeout { arguments.append("--discovery-timeout=\(timeout)") }
        let directory = String(file[..<file.lastIndex(of: "/")!])
        let managed: Managed
        switch launch(
            file: file, name: name, nodes: descriptor.nodes.count, arguments: arguments,
            environment: request.environment ?? currentEnvironment(), directory: directory.isEmpty ? "/" : directory)
        {
        case .success(let launched): managed = launched
        case .failure(let problem):
            reply(client, ControlResponse(ok: false, error: problem.description))
            return
        }
        let status = managed.status
        var response = ControlResponse(ok: true)
        response.dataflow = status
        reply(client, response)
        if request.follow == true {
            client.following = (status.id, nil)
            client.deadline = nil
        }
    }

    /// Runs `apus run FILE ARGUMENTS...` in `directory` as a dataflow of this daemon, its output
    /// kept in its log; the error says why it could not start.
    func launch(
        file: String, name: String, nodes: Int, arguments: [String], environment: [String], directory: String
    ) -> Result<Managed, ControlError> {
        var id = ""
        repeat { id = String(UInt32.random(in: 0...UInt32.max), radix: 16).leftPadded(8) } while dataflows.contains { $0.status.id == id }
        let logPath = "\(paths.runs)/\(id).log"
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { return .failure(.system("cannot create \(logPath)", errno)) }
        var events: [Int32] = [-1, -1]
        let piped = apussys_pipe(&events)
        guard piped == 0 else {
            close(log)
            return .failure(.system("cannot start the dataflow: pipe", -piped))
        }
        let child: ChildProcess
        do {
            // Its events (restarts) come on a pipe of their own, as its fd 3.
            child = try ChildProcess.spawn(
                [executable, "run", file, "--no-color", "--events-fd", "3"] + arguments, environment: environment, directory: directory,
                control: events[1])
        } catch {
            close(log)
            close(events[0])
            close(events[1])
            return .failure(.refused("cannot start the dataflow: \(error)"))
        }
        close(events[1])
        _ = fcntl(events[0], F_SETFL, fcntl(events[0], F_GETFL) | O_NONBLOCK)
        let status = DataflowStatus(
            id: id, name: name, file: file, status: .running, nodes: nodes, startedAt: Date().timeIntervalSince1970, endedAt: nil,
            restarts: 0, exitStatus: nil, pid: child.pid)
        let managed = Managed(status: status, stdout: child.stdout, stderr: child.stderr, events: events[0], log: log)
        dataflows.append(managed)
        return .success(managed)
    }

    func stop(_ managed: Managed, grace: Double) {
        guard managed.status.status == .running else { return }
        managed.status.status = .stopping
        kill(managed.status.pid, SIGINT)
        managed.killAt = monotonicNanoseconds() &+ UInt64(max(0, min(grace, 3600)) * 1e9)
    }

    func sendLogs(of managed: Managed, node: String?, follow: Bool, to client: Client) {
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

    /// The line as a follower of `node` sees it: the node's own lines without their prefix. A
    /// node of another machine prints `[MACHINE/NODE] `: `NODE` or `MACHINE/NODE` selects it.
    func select(_ line: String, _ node: String?) -> String? {
        guard let node else { return line }
        guard line.hasPrefix("["), let close = line.firstIndex(of: "]"), line[close...].hasPrefix("] ") else { return nil }
        let name = line[line.index(after: line.startIndex)..<close]
        guard name == node || (!node.contains("/") && name.hasSuffix("/" + node)) else { return nil }
        return String(line[line.index(close, offsetBy: 2)...])
    }

    func end(_ client: Client, _ managed: Managed) {
        var response = ControlResponse(ok: true)
        response.end = true
        response.exitStatus = managed.status.exitStatus
        response.dataflow = managed.status
        reply(client, response)
        client.following = nil
        client.closeWhenFlushed = true
        flush(client)
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
