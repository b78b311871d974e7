import ApusDataflow
import ApusTransport
import Glibc

/// One node of a running dataflow, across restarts: its process, control channel, pipes, inbox,
/// the pools it announced, and how it ended.
final class NodeRuntime {
    enum State: Equatable {
        /// Not spawned yet, or waiting for a restart at the given time (monotonic ns).
        case waiting(until: UInt64)
        /// Spawned; has not said hello.
        case spawned
        /// Setup sent; has not announced ready.
        case connected
        /// Ready; waits for `start` (or has it).
        case ready
        /// Gone for good.
        case finished
    }

    /// How a node came into the run.
    enum Origin {
        /// From the dataflow file.
        case planned
        /// `apus node add`: spawned and supervised like the others.
        case added
        /// An inspector's consumer (`apus topic`): its process is the inspector's, never
        /// signalled; it leaves when its socket closes.
        case attached
    }

    let index: Int
    let plan: RunPlan.NodePlan
    let origin: Origin
    /// A node that joined: its producers feed its inputs (from when it is ready until it leaves).
    var wired = false
    /// A node that joined and left: its edges are gone from its producers, its holder bits free.
    var unwired = false
    /// An inspector's process, from its hello (shown by `apus top`; never signalled).
    var attachedPID: Int32 = 0
    /// `apus node remove` asked it to leave: it is not restarted, and its end is no failure.
    var removing = false
    var id: String { plan.descriptor.id }
    var state: State = .waiting(until: 0)
    var pid: pid_t = 0
    var channel: ControlChannel?
    var stdout: Int32 = -1
    var stderr: Int32 = -1
    var stdoutLines = LineSplitter()
    var stderrLines = LineSplitter()
    var stderrTail: [String] = []
    var log: Int32 = -1
    /// Bytes in its current log file (max_log_size rotates it).
    var logBytes = 0
    var inbox: Inbox
    /// Pools this node's current incarnation announced, in order.
    var pools: [MappedPool] = []
    /// The index of the current incarnation's first pool: a restarted node's pools get new
    /// indexes, and its old ones are let go (consumers that used them have them mapped).
    var poolIndexBase = 0
    /// The daemon's publisher of this node's stdout lines (`send_stdout_as`).
    var stdoutPublisher: Publisher?
    /// Rings of the current inbox whose producer finished, or that the node closed.
    var closedRings: Set<Int> = []
    /// Rings the node closed on their `input_timeout`.
    var timedOutRings: Set<Int> = []
    /// The inbox of the incarnation before the current one: its producers may still count into
    /// it until they have switched to the new one, so it is kept until the next restart.
    var retiredInbox: Inbox?
    /// Per ring: the drops and skips counted in the inboxes of incarnations before that one.
    lazy var earlierDropped = [UInt64](repeating: 0, count: plan.streams.count)
    lazy var earlierSkipped = [UInt64](repeating: 0, count: plan.streams.count)
    /// Per ring: messages that were queued for the node when it died (in every incarnation).
    lazy var lostQueued = [Int](repeating: 0, count: plan.streams.count)
    var stopSent = false

    /// True when the node has stream inputs and every one of them has closed.
    var allInputsClosed: Bool { !plan.streams.isEmpty && closedRings.count == plan.streams.count }
    var restarts = 0
    /// Restarts since the first one of the current `restart_window` (all of them without one).
    var restartsInWindow = 0
    var restartWindowStart: UInt64?
    /// When the node last said something on its control socket (health_check_timeout).
    var lastHeard: UInt64 = 0
    var nextRestartDelay: Double
    /// Set when the node ended badly (the run then exits 1).
    var failure: String?
    /// Why the stop ladder had to signal it, if it did.
    var ladderReason: String?
    var startedAt: UInt64 = 0
    /// When to SIGKILL this node's process group, if it must go before the stop ladder's end.
    var killAt: UInt64?

    init(index: Int, plan: RunPlan.NodePlan, inbox: Inbox, origin: Origin = .planned) {
        self.index = index
        self.plan = plan
        self.origin = origin
        self.inbox = inbox
        nextRestartDelay = plan.descriptor.restartDelay ?? 0
    }

    var isAlive: Bool { pid > 0 }

    /// Whether its inputs' holder bits are taken in their producers' pools.
    var holdsBits: Bool { origin == .planned || !unwired }

    func remember(stderrLine line: String) {
        stderrTail.append(line)
        if stderrTail.count > 20 { stderrTail.removeFirst(stderrTail.count - 20) }
    }

    /// Closes the process's pipes and channel (after its exit has been handled).
    func detach() {
        if stdout >= 0 { close(stdout) }
        if stderr >= 0 { close(stderr) }
        stdout = -1
        stderr = -1
        channel = nil
        pid = 0
        killAt = nil
    }
}
