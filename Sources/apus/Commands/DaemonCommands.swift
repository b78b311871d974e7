// Daemon mode: `apus up` starts a background daemon for this user; start, stop, list and logs
// manage dataflows in it; `apus down` stops it. See ApusDaemon/Control for the daemon itself.
import ApusDaemon
import ArgumentParser
import CApusSys
import Foundation
import Glibc

private let socketDiscussion = """
    The daemon's socket is $XDG_RUNTIME_DIR/apus/daemon.sock (or /tmp/apus-UID/daemon.sock when \
    XDG_RUNTIME_DIR is unset), in a folder only this user can enter.
    """

/// Connects, sends one request and returns the connection with the first response.
private func exchange(_ request: ControlRequest, paths: ControlPaths) throws(ControlError) -> (ControlConnection, ControlResponse) {
    let connection = try ControlConnection.connect(paths.socket)
    try connection.send(request)
    guard let response = try connection.receive() else { throw .protocolViolation("the connection closed without an answer") }
    return (connection, response)
}

/// Sends one request and returns the first response, failing with the daemon's message.
private func request(_ request: ControlRequest, paths: ControlPaths = ControlPaths()) throws -> (ControlConnection, ControlResponse) {
    do {
        let (connection, response) = try exchange(request, paths: paths)
        guard response.ok else {
            printError(response.version != ControlProtocol.version || response.error?.hasPrefix("version mismatch") == true
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

/// Prints streamed lines until the end frame; returns the dataflow's exit status.
private func stream(_ connection: ControlConnection, interrupt: (() -> Void)? = nil) throws -> Int32 {
    while true {
        if let interrupt, Interrupt.pending() { interrupt() }
        var entry = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 100) > 0 else { continue }
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

/// Ctrl-C while attached: noticed by the loop, which then asks the daemon to stop the dataflow.
private enum Interrupt {
    nonisolated(unsafe) static var count: Int32 = 0
    nonisolated(unsafe) static var seen: Int32 = 0

    static func install() {
        signal(SIGINT) { _ in Interrupt.count &+= 1 }
    }

    static func pending() -> Bool {
        guard count != seen else { return false }
        seen = count
        return true
    }
}

struct Up: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the background daemon that `apus start` runs dataflows in.",
        discussion: socketDiscussion + " Says so when one is running already; replaces a socket left by a daemon that died.")

    func run() throws {
        let paths = ControlPaths()
        if let response = try? ping(paths) {
            print("an apus daemon is already running (pid \(response.pid ?? 0), apus \(response.version)); socket \(paths.socket)")
            return
        }
        do {
            try paths.prepare()
        } catch {
            printError("apus up: \(error)")
            throw ExitCode(1)
        }
        guard let executable = Installation.executablePath() else {
            printError("apus up: cannot find this apus executable (/proc/self/exe)")
            throw ExitCode(1)
        }
        let log = open(paths.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            printError("apus up: cannot open \(paths.log): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), strdup("daemon"), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let pid = apussys_spawn_detached(executable, argv, envp, log)
        for pointer in argv + envp { free(pointer) }
        close(log)
        guard pid > 0 else {
            printError("apus up: cannot start the daemon: \(String(cString: strerror(-pid)))")
            throw ExitCode(1)
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let response = try? ping(paths) {
                print("apus daemon \(response.version) running (pid \(response.pid ?? pid)); socket \(paths.socket)")
                return
            }
            if kill(pid, 0) != 0 { break }
            usleep(20_000)
        }
        let tail = (try? String(contentsOfFile: paths.log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        printError("apus up: the daemon did not come up; the end of \(paths.log):\n\(tail)")
        throw ExitCode(1)
    }
}

private func ping(_ paths: ControlPaths) throws(ControlError) -> ControlResponse {
    let (_, response) = try exchange(ControlRequest(.ping), paths: paths)
    guard response.ok else { throw .protocolViolation("no answer to ping") }
    return response
}

struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the background daemon.",
        discussion: "Refuses while dataflows run, unless --force: then they are stopped first (STOP, then killed after their grace period).")

    @Flag(help: "Stop running dataflows first.")
    var force = false

    func run() throws {
        let paths = ControlPaths()
        var down = ControlRequest(.down)
        down.force = force
        do {
            let connection = try ControlConnection.connect(paths.socket)
            try connection.send(down)
            // The answer comes once the daemon's dataflows have ended; then it exits.
            if let response = try connection.receive(), !response.ok {
                printError("apus down: \(response.error ?? "refused")")
                throw ExitCode(1)
            }
        } catch let error as ControlError {
            if case .noDaemon = error {
                print("no apus daemon is running")
                return
            }
            printError("apus down: \(error)")
            throw ExitCode(1)
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? ping(paths)) != nil { usleep(20_000) }
        print("apus daemon stopped")
    }
}

struct Start: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a dataflow in the background daemon (see `apus up`).",
        discussion: """
            The daemon runs it as `apus run FILE` would, with this shell's environment, and keeps its \
            output for `apus logs`. --attach prints that output until the dataflow ends and exits with \
            its status; Ctrl-C then stops the dataflow.
            """)

    @Argument(help: "The dataflow file.", completion: .file(extensions: ["yml", "yaml"]))
    var file: String

    @Option(help: "The dataflow's name (default: the file's name without .yml).")
    var name: String?

    @Flag(help: "Print the dataflow's output until it ends.")
    var attach = false

    func run() throws {
        let path = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        var start = ControlRequest(.start)
        start.file = URL(fileURLWithPath: path).standardizedFileURL.path
        start.name = name
        start.follow = attach
        start.environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let (connection, response) = try request(start)
        guard let dataflow = response.dataflow else { return }
        guard attach else {
            print("started \(dataflow.name) (id \(dataflow.id)), \(dataflow.nodes) node\(dataflow.nodes == 1 ? "" : "s"); `apus logs \(dataflow.name) --follow` shows its output")
            return
        }
        Interrupt.install()
        let status = try stream(connection) {
            var stop = ControlRequest(.stop)
            stop.name = dataflow.id
            _ = try? request(stop)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a dataflow running in the daemon, and wait until it has ended.",
        discussion: "Its nodes get STOP; those still running after the grace period are killed.")

    @Argument(help: "The dataflow's name or id (see `apus list`).")
    var dataflow: String

    @Option(help: ArgumentHelp("Time nodes get to exit after STOP before they are killed.", valueName: "duration"))
    var grace = "10s"

    func validate() throws {
        if parseDuration(grace) == nil { throw ValidationError("--grace: '\(grace)' is not a duration (write e.g. 500ms, 10s, 2m)") }
    }

    func run() throws {
        var stop = ControlRequest(.stop)
        stop.name = dataflow
        stop.grace = parseDuration(grace)
        let (_, response) = try request(stop)
        guard let id = response.dataflow?.id else { return }
        let deadline = Date().addingTimeInterval((parseDuration(grace) ?? 10) + 30)
        while Date() < deadline {
            let (_, listed) = try request(ControlRequest(.list))
            if let current = listed.dataflows?.first(where: { $0.id == id }), current.status != "running", current.status != "stopping" {
                print("stopped \(current.name) (id \(id)): \(current.status), exit status \(current.exitStatus ?? 0)")
                return
            }
            usleep(50_000)
        }
        printError("apus stop: dataflow \(dataflow) is still stopping")
        throw ExitCode(1)
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the daemon's dataflows: running and ended.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let (_, response) = try request(ControlRequest(.list))
        let dataflows = response.dataflows ?? []
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(dataflows), as: UTF8.self))
            return
        }
        guard !dataflows.isEmpty else {
            print("no dataflows")
            return
        }
        let now = Date().timeIntervalSince1970
        var rows = [["NAME", "ID", "STATUS", "NODES", "UPTIME", "RESTARTS"]]
        for dataflow in dataflows {
            let status = dataflow.exitStatus.map { "\(dataflow.status) (\($0))" } ?? dataflow.status
            rows.append([dataflow.name, dataflow.id, status, "\(dataflow.nodes)",
                         formatUptime((dataflow.endedAt ?? now) - dataflow.startedAt), "\(dataflow.restarts)"])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
        }
    }
}

private func formatUptime(_ seconds: Double) -> String {
    let whole = Int(max(0, seconds))
    if whole < 60 { return "\(whole)s" }
    if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
    return "\(whole / 3600)h\(whole % 3600 / 60)m"
}

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a dataflow's output (all nodes, or one), from the daemon.",
        discussion: "With --follow keeps printing new lines until the dataflow ends.")

    @Argument(help: "The dataflow's name or id.")
    var dataflow: String

    @Argument(help: "Only this node's lines (without their [node] prefix).")
    var node: String?

    @Flag(name: .shortAndLong, help: "Keep printing new lines until the dataflow ends.")
    var follow = false

    func run() throws {
        var logs = ControlRequest(.logs)
        logs.name = dataflow
        logs.node = node
        logs.follow = follow
        let (connection, _) = try request(logs)
        _ = try stream(connection)
    }
}

struct DaemonServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon", abstract: "Run the daemon in the foreground (`apus up` starts it in the background).",
        shouldDisplay: false)

    func run() throws {
        guard let executable = Installation.executablePath() else {
            printError("apus daemon: cannot find this apus executable")
            throw ExitCode(1)
        }
        let code = ControlDaemon(paths: ControlPaths(), executable: executable).run()
        if code != 0 { throw ExitCode(code) }
    }
}
