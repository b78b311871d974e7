import CApusSys
import Glibc

/// CLOCK_MONOTONIC for stamping samples, read through the CPU's time-stamp counter.
///
/// A `clock_gettime` costs as much as the rest of a hand-off's protocol, and a publish needs one
/// for the sample's timestamp and its arrival order. Where the kernel itself keeps time with the
/// counter (clocksource `tsc`: it checked that the counter runs at a constant rate and agrees
/// across CPUs), this clock reads the counter instead (cheaper; docs/performance.md), and
/// converts it along a line anchored to CLOCK_MONOTONIC. It re-anchors once the line is a window
/// old (under a millisecond), so a stamp stays within nanoseconds of `clock_gettime` and remains
/// comparable with it in any process, as `apus.h` promises. Elsewhere it reads CLOCK_MONOTONIC.
///
/// Stamps never go backwards: a new anchor starts no lower than the old line, and the line's slope
/// then takes any lead back within one window. The rate comes from two readings at least a
/// second apart once the clock has run that long, so it follows the kernel's own adjustments.
///
/// Not thread-safe: each publisher keeps its own, used under its owner's send lock.
struct StampClock {
    /// Whether the kernel keeps time with the time-stamp counter, so reading it directly is sound.
    static let counterIsClock: Bool = {
        #if arch(x86_64)
            guard let file = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r") else { return false }
            defer { fclose(file) }
            var name = [UInt8](repeating: 0, count: 32)
            let count = fread(&name, 1, name.count, file)
            return name.prefix(count) == Array("tsc\n".utf8)[...]
        #else
            return false
        #endif
    }()

    /// Counter ticks between re-anchorings, at most (about 0.9 ms at 2.4 GHz).
    static let maximumWindow: UInt64 = 1 << 21
    /// Ticks the rate must be measured over before the line is used; until then stamps are
    /// CLOCK_MONOTONIC readings.
    static let minimumBaseline: UInt64 = 1 << 14
    /// Past this baseline (about 1.8 s) the rate is measured from a newer reading.
    static let maximumBaseline: UInt64 = 1 << 32

    private let usesCounter: Bool
    private let maximumBaseline: UInt64
    private var anchorTicks: UInt64 = 0
    private var anchorNanoseconds: UInt64 = 0
    /// Ticks past the anchor the line is used for; 0 until a rate is known.
    private var window: UInt64 = 0
    /// The line's slope: nanoseconds per tick, 32.32 fixed point.
    private var slope: UInt64 = 0
    /// The readings the rate is measured from.
    private var base: (ticks: UInt64, nanoseconds: UInt64)?
    private var nextBase: (ticks: UInt64, nanoseconds: UInt64)?

    init(usesCounter: Bool = StampClock.counterIsClock, maximumBaseline: UInt64 = StampClock.maximumBaseline) {
        self.usesCounter = usesCounter
        self.maximumBaseline = maximumBaseline
    }

    /// Whether stamps come from the counter now (for tests).
    var readsCounter: Bool { window > 0 }

    /// Monotonic nanoseconds, on CLOCK_MONOTONIC's scale.
    @inline(__always)
    mutating func now() -> UInt64 {
        if let stamp = nowOnLine() { return stamp }
        return reanchor()
    }

    /// `now()` while the line holds, without a call; nil when it is due to be re-anchored (or the
    /// counter is not used), and `now()` must be asked.
    @inline(__always)
    func nowOnLine() -> UInt64? {
        let elapsed = apussys_cycle_counter() &- anchorTicks
        // `elapsed` < 2^21 and `slope` < 2^34 (the counter runs faster than 0.25 GHz): no overflow.
        return elapsed < window ? anchorNanoseconds &+ (elapsed &* slope) >> 32 : nil
    }

    @inline(never)
    private mutating func reanchor() -> UInt64 {
        guard usesCounter else { return monotonicNanoseconds() }
        let (ticks, nanoseconds) = Self.reading()
        guard let base, ticks > base.ticks else {
            // No rate yet, or the counter went back (this thread moved to a CPU whose counter
            // lags a little): start measuring from here.
            (self.base, nextBase, window) = ((ticks, nanoseconds), nil, 0)
            return nanoseconds
        }
        let baseline = ticks - base.ticks
        guard baseline >= Self.minimumBaseline, nanoseconds > base.nanoseconds else { return nanoseconds }
        // Nanoseconds per tick in 32.32, in 128 bits: after a long idle spell the difference is large.
        let elapsed = nanoseconds - base.nanoseconds
        guard elapsed >> 32 < baseline else { return nanoseconds }
        let measured = baseline.dividingFullWidth((high: elapsed >> 32, low: elapsed << 32)).quotient

        // The old line may run a little ahead of the clock: start no lower than where it got to.
        var start = nanoseconds
        if window > 0, ticks > anchorTicks {
            start = max(start, anchorNanoseconds &+ (min(ticks - anchorTicks, window) &* slope) >> 32)
        }
        window = min(Self.maximumWindow, baseline >> 4)
        // Aim to meet the clock at the window's end, so a lead is taken back, not carried on.
        let lead = ((start - nanoseconds) << 32) / window
        slope = max(measured / 2, measured - min(lead, measured))
        (anchorTicks, anchorNanoseconds) = (ticks, start)

        if baseline > maximumBaseline {
            if let next = nextBase, ticks - next.ticks >= maximumBaseline / 4 { self.base = next }
            nextBase = (ticks, nanoseconds)
        } else if nextBase == nil, baseline > maximumBaseline / 2 {
            nextBase = (ticks, nanoseconds)
        }
        return start
    }

    /// CLOCK_MONOTONIC and the counter at the same moment: the counter is read on both sides of
    /// the clock, and the tightest of three tries gives the midpoint.
    private static func reading() -> (ticks: UInt64, nanoseconds: UInt64) {
        var best: (span: UInt64, ticks: UInt64, nanoseconds: UInt64) = (.max, 0, 0)
        for _ in 0..<3 {
            let before = apussys_cycle_counter()
            let nanoseconds = monotonicNanoseconds()
            let after = apussys_cycle_counter()
            if after >= before, after - before < best.span {
                best = (after - before, before + (after - before) / 2, nanoseconds)
            }
        }
        return best.span == .max ? (apussys_cycle_counter(), monotonicNanoseconds()) : (best.ticks, best.nanoseconds)
    }
}
