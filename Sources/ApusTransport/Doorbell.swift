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

    /// Signals the consumer; wakes it only if it sleeps.
    public func ring() {
        sequence.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if sleeping.pointee.load(ordering: .sequentiallyConsistent) != 0 {
            _ = apus_futex_wake(base.assumingMemoryBound(to: UInt32.self), Int32.max)
        }
    }

    /// Waits until `ready()` is true or `deadline` (monotonic ns; nil = no limit) passes.
    /// Spins first for the time `spin` allows, then sleeps on the futex. Returns whether ready.
    func wait(until deadline: UInt64?, spin: inout AdaptiveSpin, ready: () -> Bool) -> Bool {
        if ready() { return true }
        if spin.spin(until: deadline, ready) { return true }
        while true {
            let seen = sequence.pointee.load(ordering: .sequentiallyConsistent)
            if ready() { return true }
            sleeping.pointee.store(1, ordering: .sequentiallyConsistent)
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
            _ = apus_futex_wait(base.assumingMemoryBound(to: UInt32.self), seen, timeout)
            sleeping.pointee.store(0, ordering: .relaxed)
        }
    }
}

/// A spin budget that grows when spinning pays off (the producer runs on another CPU and answers
/// within microseconds) and shrinks to nothing when it does not (both share one CPU, where
/// spinning only delays the producer).
public struct AdaptiveSpin: Sendable {
    public static let maximumNanoseconds: UInt64 = 50_000
    static let probeNanoseconds: UInt64 = 2_000
    public private(set) var budgetNanoseconds: UInt64
    private var waitsWithoutSpinning: UInt32 = 0

    public init(budgetNanoseconds: UInt64 = 10_000) {
        self.budgetNanoseconds = min(budgetNanoseconds, Self.maximumNanoseconds)
    }

    mutating func spin(until deadline: UInt64?, _ ready: () -> Bool) -> Bool {
        var budget = budgetNanoseconds
        if budget == 0 {
            // Probe now and then, in case the processes moved to different CPUs.
            waitsWithoutSpinning &+= 1
            guard waitsWithoutSpinning % 32 == 0 else { return false }
            budget = Self.probeNanoseconds
        }
        let start = monotonicNanoseconds()
        var end = start + budget
        if let deadline { end = min(end, deadline) }
        var checks = 0
        while true {
            if ready() {
                budgetNanoseconds = min(max(budget * 2, Self.probeNanoseconds), Self.maximumNanoseconds)
                return true
            }
            checks += 1
            if checks & 63 == 0, monotonicNanoseconds() >= end { break }
        }
        budgetNanoseconds /= 2
        if budgetNanoseconds < 1_000 { budgetNanoseconds = 0 }
        return false
    }
}
