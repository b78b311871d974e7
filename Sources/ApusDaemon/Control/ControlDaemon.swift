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
    /// The signals the daemon reads from its signalfd.
    public static let watchedSignals = [SIGINT, SIGTERM, SIGHUP, SIGCHLD]
    let paths: ControlPaths
    /// The `apus` executable that runs each dataflow.
    let executable: String
    var listener: Int32 = -1
    var signals: SignalWatch?
    var lock: Int32 = -1
    var clients: [Client] = []
    var dataflows: [Managed] = []
    /// Set by `down` (or SIGTERM): no new dataflows; exit once the running ones have ended.
    var shuttingDown = false
    var downClients: [Client] = []
    /// Work other threads hand the loop (a machine's parts of runs started elsewhere).
    public let mailbox: Mailbox

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
        /// The pipes read from its `apus run` process, by `Stream`; -1 once closed.
        enum Stream: Int, CaseIterable { case stdout, stderr, events }

        var status: DataflowStatus
        var pipes: [Int32]
        var splitters = [LineSplitter](repeating: LineSplitter(), count: Stream.allCases.count)
        let log: Int32
        var killAt: UInt64?
        /// For a part of a run started on another machine: who is told each line and the end.
        var part: MachinePart?

        init(status: DataflowStatus, stdout: Int32, stderr: Int32, events: Int32, log: Int32) {
            self.status = status
            self.pipes = [stdout, stderr, events]
            self.log = log
        }

        var isRunning: Bool { status.status.isRunning }
    }

    public init(paths: ControlPaths, executable: String) throws(ControlError) {
        self.paths = paths
        self.executable = executable
        mailbox = try Mailbox()
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
        let failure = loop()
        unlink(paths.socket)
        close(listener)
        close(lock)
        if let failure {
            writeAll(2, "apus daemon (pid \(getpid())): \(failure); stopping\n")
            return 1
        }
        writeAll(1, "apus daemon (pid \(getpid())) stopped\n")
        return 0
    }

    func start() throws(ControlError) {
        signal(SIGPIPE, SIG_IGN)
        try paths.prepare()
        var address: UnixAddress
        do {
            address = try UnixAddress(paths.socket)
        } catch {
            throw .refused("\(error); set XDG_RUNTIME_DIR to a shorter folder")
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
        let previous = umask(0o177)
        let bound = address.withSockaddr { bind(listener, $0, $1) }
        umask(previous)
        guard bound == 0 else { throw .system("cannot bind \(paths.socket)", errno) }
        guard chmod(paths.socket, 0o600) == 0, listen(listener, 64) == 0 else { throw .system("cannot listen on \(paths.socket)", errno) }
        do {
            signals = try SignalWatch(Self.watchedSignals)
        } catch {
            throw .system("signalfd", error.errno)
        }
    }

    // MARK: Loop

    private enum Source {
        case signals, listener
        case client(Client)
        case output(Managed, Managed.Stream)
        case mailbox
    }

    /// Serves until shut down; returns why it could not go on, if it could not.
    func loop() -> String? {
        while !(shuttingDown && !dataflows.contains(where: \.isRunning) && clients.allSatisfy { $0.output.isEmpty }) {
            var entries: [pollfd] = []
            var sources: [Source] = []
            func watch(_ fd: Int32, _ events: Int32, _ source: Source) {
                entries.append(pollfd(fd: fd, events: Int16(events), revents: 0))
                sources.append(source)
            }
            watch(signals?.fd ?? -1, POLLIN, .signals)
            watch(mailbox.fd, POLLIN, .mailbox)
            if !shuttingDown { watch(listener, POLLIN, .listener) }
            for client in clients { watch(client.fd, POLLIN | (client.output.isEmpty ? 0 : POLLOUT), .client(client)) }
            for managed in dataflows {
                for stream in Managed.Stream.allCases where managed.pipes[stream.rawValue] >= 0 {
                    watch(managed.pipes[stream.rawValue], POLLIN, .output(managed, stream))
                }
            }
            let now = monotonicNanoseconds()
            let deadlines = clients.compactMap(\.deadline) + dataflows.compactMap(\.killAt)
            let timeout = deadlines.min().map { Int32(clamping: ($0 > now ? $0 - now : 0) / 1_000_000 + 1) } ?? -1
            guard poll(&entries, nfds_t(entries.count), timeout) >= 0 || errno == EINTR else {
                return "poll failed: \(String(cString: strerror(errno)))"
            }
            for (entry, source) in zip(entries, sources) where entry.revents != 0 {
                switch source {
                case .signals: handleSignals()
                case .listener: accept()
                case .client(let client): serve(client, entry.revents)
                case .output(let managed, let stream): readOutput(of: managed, stream)
                case .mailbox: for work in mailbox.take() { work(self) }
                }
            }
            expireDeadlines()
            clients.removeAll { $0.fd < 0 }
        }
        for client in downClients where client.fd >= 0 {
            writeAll(client.fd, ControlResponse(ok: true).frame)
        }
        return nil
    }

    func handleSignals() {
        while let number = signals?.next() {
            switch number {
            case SIGCHLD: reapChildren()
            case SIGINT, SIGTERM: beginShutdown()
            default: break
            }
        }
    }

    func expireDeadlines() {
        let now = monotonicNanoseconds()
        for client in clients where client.fd >= 0 {
            if let deadline = client.deadline, deadline <= now { drop(client) }
        }
        for managed in dataflows where managed.isRunning {
            if let killAt = managed.killAt, killAt <= now {
                // SIGUSR1 makes `apus run` kill its nodes at once. (A second SIGINT would do it too,
                // but with no grace it would come while the first is pending, and merge with it.)
                kill(managed.status.pid, SIGUSR1)
                managed.killAt = nil
            }
        }
    }

    func beginShutdown() {
        shuttingDown = true
        for managed in dataflows where managed.status.status == .running { stop(managed, grace: 10) }
    }
}
