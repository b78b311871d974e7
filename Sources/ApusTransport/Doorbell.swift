import CApusSys
import Synchronization

/// One futex word per consumer: producers ring it after queuing a sample, the consumer waits on it
/// for all of its inputs and control events at once.
///
/// Layout (8 bytes, on its own cache line): `sequence` (the futex word, bumped by every ring) and
/// `sleeping` (set by the consumer before it sleeps). A producer makes the wake system call only
/// when the consumer sleeps; the consumer sets `sleeping` and re-reads `sequence` before sleeping,
/// so a ring between its last check and its sleep is never lost.
public struct Doorbell: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    static let size = 64

    init(at base: UnsafeMutableRawPointer) {
        self.base = base
    }

    private var sequence: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(base, 0) }
    private var sleeping: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(base, 4) }

    /// Signals the consumer, after the work it should see has been published; wakes it only if it
    /// sleeps. While the consumer is awake this touches no shared line but the `sleeping` flag,
    /// which stays in both caches unmodified.
    ///
    /// Correctness is Dekker's: the producer publishes work, fences, reads `sleeping`; the consumer
    /// sets `sleeping`, fences, looks for work. At least one of them sees the other's write, so
    /// either the consumer finds the work or the producer bumps `sequence` and wakes it (and a
    /// bump before its futex wait makes that wait return at once).
    @inline(__always)
    public func ring() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        wakeIfSleeping()
    }

    /// The fence of `ring()`, once for several consumers queued to; then `wakeIfSleeping()` each.
    @inline(__always)
    static func fence() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// `ring()` without its fence, after `Doorbell.fence()`.
    @inline(__always)
    func wakeIfSleeping() {
        if sleeping.pointee.load(ordering: .relaxed) != 0 { wake() }
    }

    @inline(never)
    private func wake() {
        sequence.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        _ = apussys_futex_wake(futexWord(sequence), Int32.max)
    }

    /// Waits until `ready()` is true or `deadline` (monotonic ns; nil = no limit) passes.
    /// Spins first for the time `spin` allows, then sleeps on the futex. Returns whether ready.
    ///
    /// The spin looks at `spinningOn`, which may check less than `ready` (what arrives often) to
    /// look more often; `ready` decides before sleeping, so nothing it covers is missed, at worst
    /// seen once the spin is over.
    func wait(until deadline: UInt64?, spin: inout AdaptiveSpin, spinningOn: () -> Bool, ready: () -> Bool) -> Bool {
        if ready() { return true }
        let start = monotonicNanoseconds()
        // A wait the spin saw through ends at the spin's last clock reading, so no clock read
        // stands between the work arriving and the caller taking it.
        if let lastReading = spin.spin(until: deadline, since: start, spinningOn) {
            spin.record(waitNanoseconds: lastReading - start)
            return true
        }
        let outcome = sleepUnlessReady(until: deadline, ready: ready)
        // Timeouts count too: a node that keeps waiting on an idle input must stop spinning.
        spin.record(waitNanoseconds: monotonicNanoseconds() - start)
        return outcome
    }

    private func sleepUnlessReady(until deadline: UInt64?, ready: () -> Bool) -> Bool {
        while true {
            let seen = sequence.pointee.load(ordering: .sequentiallyConsistent)
            if ready() { return true }
            sleeping.pointee.store(1, ordering: .sequentiallyConsistent)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            if sequence.pointee.load(ordering: .sequentiallyConsistent) != seen || ready() {
                sleeping.pointee.store(0, ordering: .relaxed)
                if ready() { return true }
                continue
            }
            var timeout: Int64 = -1
            if let deadline {
                let now = monotonicNanoseconds()
                if now >= deadline {
                    sleeping.pointee.store(0, ordering: .relaxed)
                    return ready()
                }
                timeout = Int64(deadline - now)
            }
            _ = apussys_futex_wait(futexWord(sequence), seen, timeout)
            sleeping.pointee.store(0, ordering: .relaxed)
        }
    }
}

/// How a consumer waits for what it receives: a node's `wait` key (APUS_WAIT).
public enum WaitPolicy: String, Sendable, CaseIterable {
    /// Spins for about as long as recent waits took (up to `AdaptiveSpin.maximumNanoseconds`),
    /// then sleeps.
    case adaptive
    /// Spins up to `AdaptiveSpin.maximumNanoseconds` before every sleep, whatever the waits were:
    /// a peer that answers within that is never waited for asleep (no wake-up, tens of
    /// microseconds on a VM, per hop). Costs up to that much CPU per message when messages
    /// arrive further apart; an idle node spins once and sleeps.
    case spin
    /// Sleeps at once: no CPU spent waiting, a wake-up for every message not already there.
    case sleep
}

/// A spin budget sized from how long recent waits took, as adaptive mutexes do. A wait short enough
/// to have been spun through (the producer runs on another CPU and answers within microseconds)
/// grows the budget to cover it; a long wait (an idle input, or a producer sharing this CPU, which
/// spinning would only delay) halves it, down to zero, so an idle node does not burn CPU. Under
/// `WaitPolicy.spin` or `.sleep` the budget is fixed at the maximum or zero.
public struct AdaptiveSpin: Sendable {
    public static let maximumNanoseconds: UInt64 = 200_000
    /// Looks `spinBriefly` takes (about a microsecond, paced), for a timeout of at least `quickSpinBound`.
    static let quickChecks = 96
    static let quickSpinBound: UInt64 = 20_000
    public private(set) var budgetNanoseconds: UInt64
    public let policy: WaitPolicy

    public init(budgetNanoseconds: UInt64 = 10_000) {
        self.budgetNanoseconds = min(budgetNanoseconds, Self.maximumNanoseconds)
        policy = .adaptive
    }

    public init(policy: WaitPolicy) {
        self.policy = policy
        switch policy {
        case .adaptive: budgetNanoseconds = 10_000
        case .spin: budgetNanoseconds = Self.maximumNanoseconds
        case .sleep: budgetNanoseconds = 0
        }
    }

    /// Records how long a whole wait took (spinning and sleeping).
    mutating func record(waitNanoseconds: UInt64) {
        guard policy == .adaptive else { return }
        if waitNanoseconds <= Self.maximumNanoseconds {
            budgetNanoseconds = min(Self.maximumNanoseconds, max(budgetNanoseconds, waitNanoseconds * 2))
        } else {
            budgetNanoseconds /= 2
            if budgetNanoseconds < 1_000 { budgetNanoseconds = 0 }
        }
    }

    /// Looks for work `quickChecks` times without reading the clock, when the budget allows spinning:
    /// a sender on the other CPU usually answers within a microsecond, and a clock read costs as
    /// much as a hand-off. True when `ready` became true.
    ///
    /// Every spin paces its looks (`apussys_spin_pace`): a consumer looking as fast as it can at
    /// the line a producer is writing delays the hand-off it waits for.
    func spinBriefly(timeoutNanoseconds: UInt64?, _ ready: () -> Bool) -> Bool {
        guard budgetNanoseconds > 0, (timeoutNanoseconds ?? .max) >= Self.quickSpinBound else { return false }
        for _ in 0..<Self.quickChecks {
            if ready() { return true }
            apussys_spin_pace()
        }
        return false
    }

    /// Spins for the current budget from `start` (monotonic ns, read by the caller). When `ready`
    /// became true meanwhile, returns the last clock reading taken (every 64 looks, so it lags the
    /// end of the wait by well under a microsecond); nil when the budget ran out.
    func spin(until deadline: UInt64?, since start: UInt64, _ ready: () -> Bool) -> UInt64? {
        guard budgetNanoseconds > 0 else { return nil }
        var end = start + budgetNanoseconds
        if let deadline { end = min(end, deadline) }
        var checks = 0
        var lastReading = start
        while true {
            if ready() { return lastReading }
            apussys_spin_pace()
            checks += 1
            if checks & 63 == 0 {
                lastReading = monotonicNanoseconds()
                if lastReading >= end { return nil }
            }
        }
    }
}
