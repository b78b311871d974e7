import Glibc
import Synchronization

/// Atomics that live in shared memory, addressed by offset from a mapping's base.
/// Offsets come from this process's own layout arithmetic, never from shared memory.
@inline(__always)
func atomic64(_ base: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
    (base + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
}

@inline(__always)
func atomic32(_ base: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
    (base + offset).assumingMemoryBound(to: Atomic<UInt32>.self)
}

/// The same 32-bit word as a plain pointer, for the futex system call.
@inline(__always)
func futexWord(_ atomic: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<UInt32> {
    UnsafeMutableRawPointer(atomic).assumingMemoryBound(to: UInt32.self)
}

@inline(__always)
func roundUp(_ value: Int, to multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC), the clock of every deadline and timestamp.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// CLOCK_REALTIME in nanoseconds: the wall clock, which machines keep in step and files record.
public func wallClockNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// The smallest power of two ≥ `value` (1 for 0 and 1).
@inline(__always)
func nextPowerOfTwo(_ value: Int) -> Int {
    value <= 1 ? 1 : 1 << (Int.bitWidth - (value - 1).leadingZeroBitCount)
}
