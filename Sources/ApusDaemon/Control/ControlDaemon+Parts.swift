// A machine's parts of runs started on other machines, run by this daemon like its own dataflows
// (so `apus list`, `apus logs` and `apus stop` on this machine show and reach them): the machine's
// agent, on its own thread, hands the loop what to start and stop through the mailbox; the loop
// hands back each line and the end.
import ApusTransport
import Foundation
import Glibc
import Synchronization

/// One part to run: `apus run FILE ARGUMENTS...` in `directory`, named `name` here (`nodes` of
/// the dataflow's nodes are this machine's), and what to call with each line it prints and with
/// its exit status (on the daemon's thread).
public struct MachinePart: Sendable {
    public var run: String
    public var name: String
    public var nodes: Int
    public var file: String
    public var arguments: [String]
    public var directory: String
    public var line: @Sendable (_ standardError: Bool, _ text: String) -> Void
    public var ended: @Sendable (Int32) -> Void

    public init(
        run: String, name: String, nodes: Int, file: String, arguments: [String], directory: String,
        line: @escaping @Sendable (Bool, String) -> Void, ended: @escaping @Sendable (Int32) -> Void
    ) {
        self.run = run
        self.name = name
        self.nodes = nodes
        self.file = file
        self.arguments = arguments
        self.directory = directory
        self.line = line
        self.ended = ended
    }
}

extension ControlDaemon {
    /// Closures for the loop, from any thread; the loop runs them when its pipe is readable.
    public final class Mailbox: Sendable {
        private let pipe: WakePipe
        private let work = Mutex<[@Sendable (ControlDaemon) -> Void]>([])

        /// The pipe the loop polls.
        var fd: Int32 { pipe.fd }

        init() throws(ControlError) {
            pipe = try WakePipe()
        }

        public func post(_ item: @escaping @Sendable (ControlDaemon) -> Void) {
            work.withLock { $0.append(item) }
            pipe.ring()
        }

        func take() -> [@Sendable (ControlDaemon) -> Void] {
            pipe.drain()
            return work.withLock { work in
                let taken = work
                work = []
                return taken
            }
        }
    }

    /// Starts `part` (its end is reported at once when it cannot start).
    public func startPart(_ part: MachinePart) {
        guard !shuttingDown else {
            part.line(true, "apus: the daemon is shutting down")
            part.ended(1)
            return
        }
        switch launch(
            file: part.file, name: part.name, nodes: part.nodes, arguments: part.arguments, environment: currentEnvironment(),
            directory: part.directory)
        {
        case .success(let managed):
            managed.part = part
            writeAll(1, "apus daemon: run \(part.run): started its part '\(part.name)' (pid \(managed.status.pid))\n")
        case .failure(let problem):
            part.line(true, "apus: \(problem)")
            part.ended(1)
        }
    }

    /// Stops run `run`'s part, as `apus stop` would.
    public func stopPart(run: String) {
        for managed in dataflows where managed.part?.run == run { stop(managed, grace: 10) }
    }
}
