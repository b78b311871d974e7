// What `apus topic` commands share: a consumer of their own in a running dataflow, and Ctrl-C.
import ApusDaemon
@_spi(Inspection) import ApusNode
import ApusTransport
import ArgumentParser
import Foundation
import Glibc
import Synchronization

/// Set by SIGINT and SIGTERM, so that an inspector finishes (prints its summary, leaves the run
/// cleanly) instead of dying mid-line.
private let interrupted = Atomic<Bool>(false)

/// An inspector attached to a running dataflow: its consumer's inputs take the named outputs
/// through `drop_oldest` queues, so a slow inspector never slows a producer.
///
/// It polls rather than waits on its doorbell: a producer then never has to wake it (no system
/// call on the producer's side), and it takes what came in batches instead of waking, or
/// spinning, for each message, which on a small machine would take a CPU from the dataflow.
/// Between looks it sleeps for as long as lets a few dozen messages come (at least 0.5 ms, at
/// most 50 ms): what is queued holds pool slots of the producer, so the fewer the better, while
/// each look costs a wake-up. Its queue is for the hiccups: one that overflows drops (counted,
/// and reported).
final class Inspector {
    let run: RunFinder.Found
    let node: Node
    let sources: [String]
    let queueSize: Int
    private var interval: useconds_t = 5_000
    /// Messages taken since the inspector last slept.
    private var taken = 0
    private var closed = Set<String>()
    /// The dataflow stopped, or closed every input: nothing more will come.
    private(set) var isOver = false

    /// Waits on its doorbell instead of polling: a recorder on `backpressure` queues, which its
    /// producers wait for when they are full.
    let waits: Bool

    /// Attaches to `sources` (NODE/OUTPUT) of `run` with queues of `queueSize` (`backpressure`
    /// ones, that the inspector then waits on, for a recorder).
    init(_ run: RunFinder.Found, name: String, sources: [String], queueSize: Int, backpressure: Bool = false) throws {
        self.run = run
        self.sources = sources
        self.queueSize = queueSize
        waits = backpressure
        let (channel, id) = try RunFinder.ask(
            run.socket, "attach",
            json: AttachRequest(name: name, sources: sources, queueSize: queueSize, backpressure: backpressure))
        node = try Node(inspecting: channel, id: id)
        for signal in [SIGINT, SIGTERM] {
            Glibc.signal(signal) { _ in interrupted.store(true, ordering: .relaxed) }
        }
    }

    /// Sleeps until the next look, adapting the interval to what the last one found.
    private func sleep() {
        if taken > 64 {
            interval = max(interval / 2, 500)
        } else if taken < 16 {
            interval = min(interval * 2, 50_000)
        }
        taken = 0
        usleep(interval)
    }

    var wasInterrupted: Bool { interrupted.load(ordering: .relaxed) }

    /// The next message, or nil when the inspection is over: interrupted, past `deadline`
    /// (monotonic ns), or the dataflow stopping or closing every input.
    func next(until deadline: UInt64?) throws -> Input? {
        while !wasInterrupted && !isOver {
            if let deadline, monotonicNanoseconds() >= deadline { return nil }
            switch try node.next(timeout: waits ? .milliseconds(100) : .zero) {
            case .input(let input)?:
                taken += 1
                return input
            case .inputClosed(let id)?:
                closed.insert(id)
                if closed.count == sources.count { isOver = true }
            case .stop?: isOver = true
            case .error(let text)?: printError("apus: \(text)")
            case .nodeFailed?: continue
            case nil: if !waits { sleep() }
            }
        }
        return nil
    }

    /// Says what the inspector dropped, if anything: nothing is lost without a word.
    func reportDrops() {
        for (source, dropped) in node.droppedPerInput.sorted(by: { $0.key < $1.key }) where dropped > 0 {
            printError(
                "apus: \(source): this inspector dropped \(dropped) message\(dropped == 1 ? "" : "s") "
                    + "(its drop_oldest queue of \(queueSize) was full; the producer and other consumers lost nothing)")
        }
    }
}

/// `NODE/OUTPUT`, checked for shape.
func topicArgument(_ text: String) throws -> String {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ValidationError("'\(text)' is not an output: write NODE/OUTPUT, as in a dataflow's inputs (apus topic list shows them)")
    }
    return text
}

/// `--duration` as a deadline.
func deadline(after seconds: Double?) -> UInt64? {
    seconds.map { monotonicNanoseconds() &+ UInt64(max($0, 0) * 1e9) }
}
