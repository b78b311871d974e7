import Glibc
import CApusSys
import Synchronization

/// What a producer does when an input's ring is full.
public enum RingPolicy: UInt8, Sendable {
    /// Evict the oldest queued sample, release it, and count it as dropped.
    case dropOldest = 0
    /// Wait for the consumer to make room, up to a timeout.
    case backpressure = 1
}

public struct InputRingLayout: Sendable, Equatable {
    public static let maxCapacity = 1 << 20
    public var capacity: Int
    public var policy: RingPolicy

    public init(capacity: Int, policy: RingPolicy) {
        self.capacity = capacity
        self.policy = policy
    }

    /// Counters through 160, then the latency histogram (`latencyBuckets` words) from 192.
    public static let headerSize = 192 + InputRing.latencyBuckets * 8
    static let entrySize = 64
    /// Entries in memory: `capacity` rounded up to a power of two, so that finding a position's
    /// entry is a mask, not a division, on the path the consumer polls.
    public var entryCount: Int { nextPowerOfTwo(capacity) }
    var size: Int { Self.headerSize + entryCount * Self.entrySize }
}

/// The shape of a consumer's inbox, agreed out of band like a `PoolLayout`.
///
/// Segment: the control counter (u32) at 0; the doorbell at 64; rings from 128. Ring: `head` u64 at 0 and
/// `tail` u64 at 64 (own cache lines), `dropped` u64 at 128, `flags` u32 at 136, `spaceSignal` u32
/// at 140 (futex), `producerWaiting` u32 at 144, `wakeAt` u32 at 148, `skipped` u64 at 152, then `entryCount` entries
/// of one cache line each:
/// `stamp` u64 at 0 (position + 1, stored last), `descriptor` u64 at 8 (pool << 32 | slot),
/// `arrival` u64 at 16, `timestamp` u64 at 24, `length` u64 at 32, `metadataLength` u32 at 40,
/// `elementType` u8 at 44.
public struct InboxLayout: Sendable, Equatable {
    public var rings: [InputRingLayout]

    public init(rings: [InputRingLayout]) {
        self.rings = rings
    }

    static let ringsOffset = 128
    var ringOffsets: [Int] {
        var offsets: [Int] = []
        var offset = Self.ringsOffset
        for ring in rings {
            offsets.append(offset)
            offset += ring.size
        }
        return offsets
    }

    public var size: Int { rings.reduce(Self.ringsOffset) { $0 + $1.size } }

    public func validate() throws(TransportError) {
        guard rings.count <= 4096, rings.allSatisfy({ (1...InputRingLayout.maxCapacity).contains($0.capacity) }) else {
            throw .corrupted("inbox layout out of range: \(rings.count) rings")
        }
    }

    /// Two integers per ring (capacity, policy), for sending a layout with the segment.
    public var encoded: [UInt64] { rings.flatMap { [UInt64($0.capacity), UInt64($0.policy.rawValue)] } }

    public init(encoded values: [UInt64]) throws(TransportError) {
        guard values.count % 2 == 0 else { throw .malformedMessage("inbox layout needs pairs, got \(values.count) integers") }
        var rings: [InputRingLayout] = []
        for index in stride(from: 0, to: values.count, by: 2) {
            guard values[index] <= UInt64(InputRingLayout.maxCapacity),
                let policy = RingPolicy(rawValue: UInt8(truncatingIfNeeded: values[index + 1])),
                values[index + 1] <= 1
            else {
                throw .malformedMessage("ring \(index / 2): capacity \(values[index]), policy \(values[index + 1])")
            }
            rings.append(InputRingLayout(capacity: Int(values[index]), policy: policy))
        }
        self.init(rings: rings)
        try validate()
    }
}

/// What travels through a ring for one sample: where it is and its header, so that a consumer
/// learns everything but the payload and its shape and parameters from the one cache line it polls.
struct RingEntry: Sendable {
    /// Pool index << 32 | slot.
    var descriptor: UInt64
    /// When it was sent (monotonic ns): the order across inputs.
    var arrival: UInt64
    var timestamp: UInt64
    var length: UInt64
    /// `metadataLength | elementType << 32`: one register, and one store on little-endian CPUs.
    var details: UInt64

    init(descriptor: UInt64, arrival: UInt64, timestamp: UInt64, length: UInt64, details: UInt64) {
        (self.descriptor, self.arrival, self.timestamp, self.length, self.details) = (descriptor, arrival, timestamp, length, details)
    }

    init(descriptor: UInt64, arrival: UInt64, timestamp: UInt64, length: UInt64, metadataLength: UInt32, elementType: UInt8) {
        self.init(
            descriptor: descriptor, arrival: arrival, timestamp: timestamp, length: length,
            details: UInt64(metadataLength) | UInt64(elementType) << 32)
    }

    /// Bytes of encoded shape and parameters in the slot's metadata area.
    var metadataLength: UInt32 { UInt32(truncatingIfNeeded: details) }
    var elementType: UInt8 { UInt8(truncatingIfNeeded: details >> 32) }

    /// Where each field lies in a ring's entry, after its `stamp` at 0 (see `InboxLayout`).
    enum Offset {
        static let descriptor = 8, arrival = 16, timestamp = 24, length = 32, metadataLength = 40, elementType = 44
    }

    /// The descriptor naming `slot` of pool `pool` (both below 2^32).
    @inline(__always)
    static func descriptor(pool: Int, slot: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: pool) << 32 | UInt64(truncatingIfNeeded: slot)
    }

    /// The pool index and slot a descriptor names, unchecked: it may come from a faulty producer.
    @inline(__always)
    static func location(of descriptor: UInt64) -> (pool: Int, slot: Int) {
        (Int(truncatingIfNeeded: descriptor >> 32), Int(truncatingIfNeeded: descriptor & 0xFFFF_FFFF))
    }
}

/// One edge: a ring of sample entries from one producer output to one consumer input.
///
/// Single producer, single consumer, except that both may advance `head`: the consumer to take a
/// sample, the producer to evict the oldest under `dropOldest`. Both do it by compare-and-swap on
/// a 64-bit position that never wraps, so exactly one of them owns each entry.
///
/// The producer stamps each entry with its position + 1 after filling it, and the consumer polls
/// the stamp of the entry at `head` in place: a hand-off moves the one cache line of the entry,
/// and `tail` (for metrics and a restarted producer) stays in the producer's cache.
public struct InputRing: @unchecked Sendable {
    public static let producerClosed: UInt32 = 1
    public static let consumerGone: UInt32 = 2
    /// The consumer died and is being restarted: on a `backpressure` ring what is queued stays,
    /// for the producer to move into the new inbox (`Publisher.replaceEdge`), and a producer
    /// that finds the ring full waits for that new inbox.
    public static let consumerRestarting: UInt32 = 4

    let base: UnsafeMutableRawPointer
    public let layout: InputRingLayout
    let entryMask: UInt64

    init(base: UnsafeMutableRawPointer, layout: InputRingLayout) {
        self.base = base
        self.layout = layout
        self.entryMask = UInt64(layout.entryCount - 1)
    }

    var head: UnsafeMutablePointer<Atomic<UInt64>> { atomic64(base, 0) }
    var tail: UnsafeMutablePointer<Atomic<UInt64>> { atomic64(base, 64) }
    var droppedCounter: UnsafeMutablePointer<Atomic<UInt64>> { atomic64(base, 128) }
    var flags: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(base, 136) }
    var spaceSignal: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(base, 140) }
    var producerWaiting: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(base, 144) }
    /// The low 32 bits of the `head` at which a producer waiting for space wants to be woken.
    var wakeAt: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(base, 148) }
    /// How long a producer facing a full ring looks for space before it sleeps.
    static var spaceSpinNanoseconds: UInt64 { 50_000 }
    var skippedCounter: UnsafeMutablePointer<Atomic<UInt64>> { atomic64(base, 152) }

    /// Latency from send to take, sampled by the consumer every `latencySampling` takes, in
    /// buckets by powers of two of microseconds: bucket 0 is under 1 µs, bucket b from 2^(b-1)
    /// to 2^b µs, the last everything above (for `apus top`; the consumer writes, anyone reads).
    public static let latencyBuckets = 24
    /// A power of two; computed, not stored, so the hot path reads no lazily made global.
    @inline(__always) public static var latencySampling: UInt64 { 16 }

    @inline(__always)
    func latencyCounter(_ bucket: Int) -> UnsafeMutablePointer<Atomic<UInt64>> { atomic64(base, 192 + bucket * 8) }

    /// Counts one sampled latency of `nanoseconds`.
    @inline(__always)
    public func recordLatency(_ nanoseconds: UInt64) {
        let microseconds = nanoseconds >> 10
        let bucket = min(microseconds == 0 ? 0 : 64 - microseconds.leadingZeroBitCount, Self.latencyBuckets - 1)
        latencyCounter(bucket).pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// The sampled latencies so far, per bucket.
    public var latencyHistogram: [UInt64] {
        (0..<Self.latencyBuckets).map { latencyCounter($0).pointee.load(ordering: .relaxed) }
    }

    @inline(__always)
    func entry(_ position: UInt64) -> UnsafeMutableRawPointer {
        base + (InputRingLayout.headerSize &+ Int(truncatingIfNeeded: position & entryMask) &* InputRingLayout.entrySize)
    }

    @inline(__always)
    func stamp(_ entry: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> { atomic64(entry, 0) }

    /// Samples queued since the ring was made (for metrics, as `queued`).
    public var enqueued: UInt64 { tail.pointee.load(ordering: .acquiring) }

    /// Samples waiting to be taken (for metrics: it reads `tail`, which the consumer never polls).
    public var queued: Int {
        let tail = tail.pointee.load(ordering: .acquiring)
        let head = head.pointee.load(ordering: .acquiring)
        return tail >= head ? Int(min(tail - head, UInt64(layout.capacity))) : 0
    }

    /// Whether the entry at `head` is filled.
    @inline(__always)
    var hasEntry: Bool { peekArrival() != nil }

    /// Samples evicted under `dropOldest` since the ring was made (and, for an input its consumer
    /// closed, what came after).
    public var dropped: UInt64 { droppedCounter.pointee.load(ordering: .relaxed) }

    /// Samples its producer did not queue, or took back, because the consumer was gone.
    public var skipped: UInt64 { skippedCounter.pointee.load(ordering: .relaxed) }

    public var isProducerClosed: Bool { flags.pointee.load(ordering: .acquiring) & Self.producerClosed != 0 }
    public var isConsumerGone: Bool { flags.pointee.load(ordering: .acquiring) & Self.consumerGone != 0 }
    public var isConsumerRestarting: Bool { flags.pointee.load(ordering: .acquiring) & Self.consumerRestarting != 0 }

    /// The oldest entry's position and arrival time, without taking it; nil when the ring is empty.
    @inline(__always)
    func peekArrival() -> (position: UInt64, arrival: UInt64)? {
        let position = head.pointee.load(ordering: .acquiring)
        let slot = entry(position)
        guard stamp(slot).pointee.load(ordering: .acquiring) == position &+ 1 else { return nil }
        return (position, slot.load(fromByteOffset: RingEntry.Offset.arrival, as: UInt64.self))
    }

    /// The descriptor of the entry at `position` (may be torn, like `read`'s).
    @inline(__always)
    func descriptor(at position: UInt64) -> UInt64 {
        entry(position).load(fromByteOffset: RingEntry.Offset.descriptor, as: UInt64.self)
    }

    /// The entry at `position`, which `peekArrival` saw stamped. What it reads may be torn by an
    /// eviction racing with it; `take` then fails, so use the entry only after `take` succeeded.
    @inline(__always)
    func read(at position: UInt64, arrival: UInt64) -> RingEntry {
        let slot = entry(position)
        return RingEntry(
            descriptor: slot.load(fromByteOffset: RingEntry.Offset.descriptor, as: UInt64.self),
            arrival: arrival,
            timestamp: slot.load(fromByteOffset: RingEntry.Offset.timestamp, as: UInt64.self),
            length: slot.load(fromByteOffset: RingEntry.Offset.length, as: UInt64.self),
            metadataLength: slot.load(fromByteOffset: RingEntry.Offset.metadataLength, as: UInt32.self),
            elementType: slot.load(fromByteOffset: RingEntry.Offset.elementType, as: UInt8.self))
    }

    /// Takes the entry at `position` if nobody else took it first.
    @inline(__always)
    func take(at position: UInt64) -> Bool {
        let (taken, _) = head.pointee.compareExchange(
            expected: position, desired: position + 1, ordering: .sequentiallyConsistent)
        if taken, layout.policy == .backpressure, producerWaiting.pointee.load(ordering: .sequentiallyConsistent) != 0 {
            // Once the ring is down to the producer's mark (see `waitForSpace`): a wake per take
            // would make a saturated edge a ping-pong of system calls.
            let short = UInt32(truncatingIfNeeded: position &+ 1) &- wakeAt.pointee.load(ordering: .relaxed)
            if Int32(bitPattern: short) >= 0 {
                spaceSignal.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
                _ = apussys_futex_wake(futexWord(spaceSignal), 1)
            }
        }
        return taken
    }

    /// Where a producer appends next. `tail` is stored after the entry's stamp, so a producer that
    /// died between the two left one stamped entry past `tail`; its successor must not overwrite it.
    func appendPosition() -> UInt64 {
        let position = tail.pointee.load(ordering: .acquiring)
        return stamp(entry(position)).pointee.load(ordering: .acquiring) == position &+ 1 ? position + 1 : position
    }

    /// Appends an entry at `tail` if the ring has room (producer only; it keeps the position it
    /// appends at). `knownHead` is the producer's last reading of `head`: heads only grow, so
    /// while it shows room there is room, and the consumer's cache line is left alone. When the
    /// ring is full, `knownHead` is `head` as just read.
    @inline(__always)
    func tryPush(_ sample: RingEntry, tail position: inout UInt64, knownHead: inout UInt64) -> Bool {
        if isFull(at: position, knownHead: &knownHead) { return false }
        let slot = entry(position)
        slot.storeBytes(of: sample.descriptor, toByteOffset: RingEntry.Offset.descriptor, as: UInt64.self)
        slot.storeBytes(of: sample.arrival, toByteOffset: RingEntry.Offset.arrival, as: UInt64.self)
        slot.storeBytes(of: sample.timestamp, toByteOffset: RingEntry.Offset.timestamp, as: UInt64.self)
        slot.storeBytes(of: sample.length, toByteOffset: RingEntry.Offset.length, as: UInt64.self)
        #if _endian(little)
            // `metadataLength` at 40 and `elementType` at 44 (and zeros in between to 48) at once.
            slot.storeBytes(of: sample.details, toByteOffset: RingEntry.Offset.metadataLength, as: UInt64.self)
        #else
            slot.storeBytes(of: sample.metadataLength, toByteOffset: RingEntry.Offset.metadataLength, as: UInt32.self)
            slot.storeBytes(of: sample.elementType, toByteOffset: RingEntry.Offset.elementType, as: UInt8.self)
        #endif
        stamp(slot).pointee.store(position &+ 1, ordering: .releasing)
        position &+= 1
        tail.pointee.store(position, ordering: .releasing)
        return true
    }

    /// Whether an entry appended at `position` would be queued without waiting: under
    /// `dropOldest` always (the oldest makes room), under `backpressure` while the ring is not
    /// full. Only the producer appends, so room seen stays until it does. `knownHead` as in
    /// `tryPush`.
    @inline(__always)
    func hasRoom(tail position: UInt64, knownHead: inout UInt64) -> Bool {
        layout.policy != .backpressure || !isFull(at: position, knownHead: &knownHead)
    }

    /// Whether the ring is full for an entry appended at `position`. `knownHead`, the head last
    /// read, is read again only when it says full: the consumer only moves it on.
    @inline(__always)
    func isFull(at position: UInt64, knownHead: inout UInt64) -> Bool {
        let capacity = UInt64(truncatingIfNeeded: layout.capacity)
        guard position &- knownHead >= capacity else { return false }
        knownHead = head.pointee.load(ordering: .acquiring)
        return position &- knownHead >= capacity
    }

    /// Appends an entry like `tryPush`, making room when full: under `dropOldest` evicts the
    /// oldest (handing its descriptor to `evicted`); under `backpressure` waits until `deadline`.
    /// Returns how many it evicted, or nil when the backpressure wait timed out, or the consumer
    /// is gone or restarting (nobody will make room in this ring).
    @inline(__always)
    func push(
        _ sample: RingEntry, deadline: UInt64, tail position: inout UInt64, knownHead: inout UInt64,
        evicted: (UInt64) -> Void
    ) -> Int? {
        var evictions = 0
        while !tryPush(sample, tail: &position, knownHead: &knownHead) {
            if layout.policy == .dropOldest {
                let oldest = knownHead
                let victim = descriptor(at: oldest)
                if take(at: oldest) {
                    droppedCounter.pointee.wrappingAdd(1, ordering: .relaxed)
                    evicted(victim)
                    evictions &+= 1
                }
                continue
            }
            guard waitForSpace(position: position, capacity: UInt64(layout.capacity), deadline: deadline) else { return nil }
        }
        return evictions
    }

    /// Waits until the consumer has taken enough of a full ring that half of it is free (one
    /// entry for a ring of one or two), or until `deadline`. Waking for every free entry would
    /// cost a system call per message on both sides once the consumer is the slower one; woken
    /// at half, the producer refills the ring in one go while the consumer works on the rest.
    private func waitForSpace(position: UInt64, capacity: UInt64, deadline: UInt64) -> Bool {
        // A consumer busy on another CPU frees an entry within microseconds, sooner than a sleep
        // and a wake-up take on a VM: look for a little while first.
        var checks = 0
        var now = monotonicNanoseconds()
        let spinEnd = min(deadline, now &+ Self.spaceSpinNanoseconds)
        while now < spinEnd {
            if position &- head.pointee.load(ordering: .acquiring) < capacity { return true }
            apussys_spin_pace()
            checks &+= 1
            if checks & 15 == 0 { now = monotonicNanoseconds() }
        }
        defer { producerWaiting.pointee.store(0, ordering: .relaxed) }
        let seen = spaceSignal.pointee.load(ordering: .sequentiallyConsistent)
        wakeAt.pointee.store(UInt32(truncatingIfNeeded: position &- capacity &+ max(1, capacity / 2)), ordering: .relaxed)
        producerWaiting.pointee.store(1, ordering: .sequentiallyConsistent)
        if position &- head.pointee.load(ordering: .sequentiallyConsistent) < capacity { return true }
        if flags.pointee.load(ordering: .acquiring) & (Self.consumerGone | Self.consumerRestarting) != 0 { return false }
        now = monotonicNanoseconds()
        guard now < deadline else { return false }
        _ = apussys_futex_wait(futexWord(spaceSignal), seen, Int64(deadline - now))
        return true
    }

    /// Takes every queued entry, handing each descriptor to `body` (for reclamation); returns
    /// how many it took.
    @discardableResult
    func drain(_ body: (UInt64) -> Void) -> Int {
        var taken = 0
        while let (position, _) = peekArrival() {
            let named = descriptor(at: position)
            if take(at: position) {
                body(named)
                taken += 1
            }
        }
        return taken
    }

    func setFlag(_ flag: UInt32) {
        flags.pointee.bitwiseOr(flag, ordering: .sequentiallyConsistent)
        // A producer blocked on a full ring must notice a consumer that is gone.
        spaceSignal.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        _ = apussys_futex_wake(futexWord(spaceSignal), Int32.max)
    }
}

/// A consumer's inbox: its doorbell and one ring per input, in one shared segment that the
/// consumer and each of its producers map read-write.
public final class Inbox: @unchecked Sendable {
    public let segment: SharedSegment
    public let layout: InboxLayout
    public let rings: [InputRing]
    public let doorbell: Doorbell

    /// Creates a fresh inbox (the daemon does, for each consumer).
    public convenience init(layout: InboxLayout, name: String) throws(TransportError) {
        try layout.validate()
        try self.init(segment: SharedSegment(name: "apus-inbox-\(name)", size: max(layout.size, 1)), layout: layout)
    }

    /// Maps an inbox received from another process (the descriptor is adopted).
    public convenience init(adopting fd: Int32, layout: InboxLayout) throws(TransportError) {
        do {
            try layout.validate()
        } catch {
            close(fd)
            throw error
        }
        try self.init(segment: SharedSegment(adopting: fd, size: layout.size, writable: true), layout: layout)
    }

    private init(segment: SharedSegment, layout: InboxLayout) {
        self.segment = segment
        self.layout = layout
        self.rings = zip(layout.rings, layout.ringOffsets).map { InputRing(base: segment.base + $1, layout: $0) }
        self.doorbell = Doorbell(at: segment.base + 64)
    }

    /// Bumped by the daemon each time it has sent the consumer control messages, so that control
    /// events arrive through the same doorbell as samples and a node waits on one thing.
    var controlCounter: UnsafeMutablePointer<Atomic<UInt32>> { atomic32(segment.base, 0) }

    /// Tells the consumer that control messages wait on its socket (send them first) and wakes it.
    public func postControl() {
        controlCounter.pointee.wrappingAdd(1, ordering: .releasing)
        doorbell.ring()
    }

    /// How many times control was posted; compare with the last value seen.
    public var controlPosted: UInt32 { controlCounter.pointee.load(ordering: .acquiring) }
}
