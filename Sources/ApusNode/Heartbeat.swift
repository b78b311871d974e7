// The heartbeat of a node with `health_check_timeout`: `apus run` kills a node it has not heard
// from for that long. The node says it is alive every quarter of it (APUS_HEALTH_CHECK_TIMEOUT, in
// seconds), from `next` (whose waits it caps, so an idle node still beats) and from each send;
// a node stuck in its own code says nothing, and is killed.
import ApusTransport
import Glibc
import Synchronization

final class Heartbeat: Sendable {
    let interval: UInt64
    private let last = Atomic<UInt64>(0)

    static func fromEnvironment() -> Heartbeat? {
        guard let text = getenv("APUS_HEALTH_CHECK_TIMEOUT").map({ String(cString: $0) }), let seconds = Double(text), seconds > 0,
            seconds < 1e6
        else { return nil }
        return Heartbeat(interval: max(UInt64(seconds * 1e9 / 4), 1_000_000))
    }

    init(interval: UInt64) {
        self.interval = interval
        last.store(monotonicNanoseconds(), ordering: .relaxed)
    }

    /// When the next beat is due.
    var due: UInt64 { last.load(ordering: .relaxed) &+ interval }

    /// Whether a beat is due at `now`; claims it if so (one thread sends it).
    func claim(now: UInt64) -> Bool {
        let previous = last.load(ordering: .relaxed)
        guard now &- previous >= interval else { return false }
        return last.compareExchange(expected: previous, desired: now, ordering: .relaxed).exchanged
    }
}

extension Node {
    /// Tells the daemon the node is alive, if a beat is due. Never throws: a daemon that is gone
    /// is noticed by whatever the node does next.
    func beatIfDue() {
        guard let heartbeat, heartbeat.claim(now: monotonicNanoseconds()) else { return }
        _ = controlLock.locked { () -> Bool in (try? channel.send(.alive)) != nil }
    }
}
