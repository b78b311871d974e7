import CApusSys
import Synchronization

/// Which producer feeds an input, and the holder bit of that edge in the producer's pools.
public struct InputBinding: Sendable, Equatable {
    /// Any key naming the producer; inputs fed by the same producer share its mapped pools.
    public var producer: Int
    public var bit: Int

    public init(producer: Int, bit: Int) {
        self.producer = producer
        self.bit = bit
    }
}

/// A received sample: a read-only view into the producer's pool, held until released.
///
/// It points into a pool the subscriber keeps mapped, so it must not outlive its subscriber. It
/// holds no references and is packed into 31 bytes, so that an `InboxEvent?` carrying it comes back
/// from `Subscriber.receive` in four registers, not through memory: this is on every hand-off.
public struct ReceivedSample: @unchecked Sendable {
    /// The payload's first byte, in the read-only mapping of the producer's pool. The encoded
    /// shape and parameters end just before it (`PoolView`).
    let base: UnsafeRawPointer
    /// When it was sent (monotonic ns).
    public let timestamp: UInt64
    /// Payload bytes (at most 2^40) | metadata bytes (at most 2^20) << 42.
    let lengths: UInt64
    /// Slot (below 2^20, `PoolLayout.maxSlotCount`) | input (below 2^12, `InboxLayout`) << 20.
    let place: UInt32
    /// The pool, by the number its subscriber gave it when mapping it.
    let pool: UInt16
    let rawElementType: UInt8

    init(
        payload base: UnsafeRawPointer, length: UInt64, metadataLength: UInt32, timestamp: UInt64,
        elementType: UInt8, input: Int, pool: UInt16, slot: Int
    ) {
        self.base = base
        self.timestamp = timestamp
        self.lengths = length | UInt64(metadataLength) << 42
        self.place = UInt32(truncatingIfNeeded: slot) | UInt32(truncatingIfNeeded: input) << 20
        self.pool = pool
        self.rawElementType = elementType
    }

    /// The input (ring) it arrived on.
    public var input: Int { Int(truncatingIfNeeded: place >> 20) }
    var slot: Int { Int(truncatingIfNeeded: place & 0xF_FFFF) }

    /// Checked when the sample was received.
    public var elementType: ElementType { ElementType(rawValue: rawElementType)! }

    /// Valid until `Subscriber.release`; the mapping is read-only, so writing through it faults.
    public var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: Int(truncatingIfNeeded: lengths & (1 << 42 - 1)))
    }

    /// The whole metadata, decoded from the slot (valid until `Subscriber.release`). Encoded
    /// metadata a faulty producer wrote is an error; its reading stays inside the slot's area.
    public func metadata() throws(TransportError) -> SampleMetadata {
        let count = Int(truncatingIfNeeded: lengths >> 42)
        return try MetadataCodec.decode(
            UnsafeRawBufferPointer(start: base - count, count: count),
            elementType: elementType, timestamp: timestamp)
    }
}

public enum InboxEvent: @unchecked Sendable {
    case sample(ReceivedSample)
    /// The producer of this input is gone and everything it queued has been received.
    case inputClosed(input: Int)
    /// The daemon posted control messages (`Inbox.postControl`): read them from the control socket.
    case control
}

/// The consumer side of a node: waits on its doorbell and takes samples from all of its inputs in
/// the order they arrived.
public final class Subscriber: @unchecked Sendable {
    public let inbox: Inbox
    /// Never changes: `release` reads an input's holder bit here, from any thread.
    public let inputs: [InputBinding]
    // Mutable state is used by the one receiving thread and never through overlapping accesses,
    // so it skips the runtime exclusivity checks, which cost a measurable share of a hand-off.
    /// Every pool mapped so far, by producer and index: the number it has in `poolTable`. Pools stay
    /// mapped as long as the subscriber lives, so received samples can point into them without
    /// reference counting.
    @exclusivity(unchecked) private var pools: [Int: [Int: UInt16]] = [:]
    @exclusivity(unchecked) private var mapped: [MappedPool] = []
    /// The views of `mapped`, by number, in chunks that never move: a received sample names its
    /// pool by number, and may be released from any thread while this one maps another pool.
    /// An entry is written before any sample naming it is handed out, and never changes.
    private let poolTable: UnsafeMutablePointer<UnsafeMutablePointer<PoolView>?>
    private static let poolChunk = 32
    /// Pools one subscriber can map: a sample names its pool in 16 bits.
    static let maximumPools = 1 << 16
    @exclusivity(unchecked) private var spin = AdaptiveSpin()

    /// How `receive` waits (the node's `wait` key); set before receiving.
    public var waitPolicy: WaitPolicy {
        get { spin.policy }
        set { spin = AdaptiveSpin(policy: newValue) }
    }
    /// Per input: its ring, binding, the pool it used last (consecutive samples almost always
    /// share it) and whether its closing was reported. Held outside any array or class so the
    /// hand-off path runs without reference counting (the inbox, which owns the rings' memory,
    /// lives as long as `self`).
    private let state: UnsafeMutableBufferPointer<InputState>
    private let controlWord: UnsafeMutablePointer<Atomic<UInt32>>

    private struct InputState {
        let ring: InputRing
        let binding: InputBinding
        /// -1 until the first sample; `lastPool` and `lastPoolNumber` are set with it.
        var lastPoolIndex = -1
        var lastPool: PoolView?
        var lastPoolNumber: UInt16 = 0
        var closedReported = false
        /// Closed by the consumer (`closeInput`): what still arrives is released and counted as dropped.
        var discarding = false
    }
    /// The control count last handed out by `receive`: only the receiving thread writes it, so a
    /// waiting receiver always wakes for control, whoever reads the socket first.
    private let controlSeen = Atomic<UInt32>(0)
    /// The control count a sending thread last acknowledged (`controlPending`): kept apart from
    /// `controlSeen`, so that a sender reading the socket never hides a notice from the receiver.
    private let controlSeenBySender = Atomic<UInt32>(0)
    private let resolvePool: (_ producer: Int, _ index: Int) throws(TransportError) -> MappedPool

    /// `resolvePool` is called for a pool this consumer has not mapped yet; it must obtain it from
    /// the control channel (producers announce pools before using them) or throw.
    public init(
        inbox: Inbox, inputs: [InputBinding],
        resolvePool: @escaping (_ producer: Int, _ index: Int) throws(TransportError) -> MappedPool
    ) throws(TransportError) {
        guard inputs.count == inbox.rings.count else {
            throw .invalidArgument("\(inputs.count) input bindings for \(inbox.rings.count) rings")
        }
        self.inbox = inbox
        self.inputs = inputs
        self.state = .allocate(capacity: inputs.count)
        _ = self.state.initialize(from: zip(inbox.rings, inputs).map { InputState(ring: $0, binding: $1) })
        self.poolTable = .allocate(capacity: Self.maximumPools / Self.poolChunk)
        self.poolTable.initialize(repeating: nil, count: Self.maximumPools / Self.poolChunk)
        self.controlWord = inbox.controlCounter
        self.resolvePool = resolvePool
    }

    deinit {
        state.deinitialize().deallocate()
        for chunk in 0..<Self.maximumPools / Self.poolChunk {
            guard let entries = poolTable[chunk] else { break }
            entries.deinitialize(count: min(Self.poolChunk, mapped.count - chunk * Self.poolChunk)).deallocate()
        }
        poolTable.deallocate()
    }

    /// Makes a producer's pool known ahead of its first sample. A pool already known is kept.
    public func add(_ pool: MappedPool, producer: Int) throws(TransportError) {
        _ = try number(of: pool, producer: producer)
    }

    /// The number of a mapped pool in `poolTable`, given when it is first seen.
    private func number(of pool: MappedPool, producer: Int) throws(TransportError) -> UInt16 {
        if let known = pools[producer]?[pool.index] { return known }
        let number = mapped.count
        guard number < Self.maximumPools else {
            throw .corrupted("producer \(producer) pool \(pool.index): this consumer has mapped \(number) pools, its limit")
        }
        let (chunk, entry) = number.quotientAndRemainder(dividingBy: Self.poolChunk)
        if poolTable[chunk] == nil { poolTable[chunk] = .allocate(capacity: Self.poolChunk) }
        (poolTable[chunk]! + entry).initialize(to: pool.view)
        mapped.append(pool)
        pools[producer, default: [:]][pool.index] = UInt16(number)
        return UInt16(number)
    }

    @inline(__always)
    private func poolView(_ number: UInt16) -> PoolView {
        let (chunk, entry) = Int(number).quotientAndRemainder(dividingBy: Self.poolChunk)
        return poolTable[chunk].unsafelyUnwrapped[entry]
    }

    /// The next event, waiting up to `timeoutNanoseconds` (nil: no limit); nil on timeout.
    public func receive(timeoutNanoseconds: UInt64?) throws(TransportError) -> InboxEvent? {
        if let event = try poll() { return event }
        if timeoutNanoseconds == 0 { return nil }
        if spin.spinBriefly(timeoutNanoseconds: timeoutNanoseconds, { hasArrivals }), let event = try poll() { return event }
        let deadline = timeoutNanoseconds.map { monotonicNanoseconds() &+ $0 }
        while true {
            let ready = inbox.doorbell.wait(until: deadline, spin: &spin, spinningOn: { hasArrivals }) { hasWork }
            if !ready { return nil }
            if let event = try poll() { return event }
        }
    }

    /// Releases a received sample; its slot returns to the pool when no edge holds it. Safe from
    /// any thread, also while another receives: it reads only what never changes once handed out.
    @inline(__always)
    public func release(_ sample: ReceivedSample) {
        poolView(sample.pool).release(sample.slot, bit: inputs[sample.input].bit)
    }

    /// True when control was posted since a sender last acknowledged it; cheap enough for every send.
    public var controlPending: Bool { inbox.controlPosted != controlSeenBySender.load(ordering: .relaxed) }

    /// A sender's acknowledgement of the control posted so far (the caller then reads the socket).
    /// The receiver still gets its own `.control` event for it.
    public func acknowledgeControl() {
        controlSeenBySender.store(inbox.controlPosted, ordering: .relaxed)
    }

    /// Wakes the receiver with a `.control` event: for events a sending thread put aside for it.
    public func wakeReceiver() {
        inbox.postControl()
    }

    /// Samples queued on each input (metrics).
    public var queued: [Int] { inbox.rings.map(\.queued) }

    /// Whether a sample waits on `input`.
    public func hasQueued(input: Int) -> Bool {
        state[input].ring.hasEntry
    }

    /// Closes `input` on the consumer's side (its producer may still send): what is queued now
    /// and what arrives later is released and counted in the ring's drops; no `.inputClosed`
    /// comes for it any more. Receiving thread only.
    public func closeInput(_ input: Int) throws(TransportError) {
        state[input].discarding = true
        state[input].closedReported = true
        while let head = state[input].ring.peekArrival() {
            let entry = state[input].ring.read(at: head.position, arrival: head.arrival)
            guard state[input].ring.take(at: head.position) else { continue }
            discard(try open(entry, input: input))
        }
    }

    /// Releases a sample of an input the consumer closed, counting it as dropped.
    private func discard(_ sample: ReceivedSample) {
        release(sample)
        state[sample.input].ring.droppedCounter.pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// Whether `poll` has something: a sample, control, or a closed input to report.
    @inline(__always)
    private var hasWork: Bool {
        if hasArrivals { return true }
        for index in 0..<state.count where state[index].ring.isProducerClosed && !state[index].closedReported {
            return true
        }
        return false
    }

    /// What the spin loop polls: samples and control. A closed input is rare and in no hurry; the
    /// wait sees it before it sleeps (`hasWork`), and leaving it out makes each look shorter, so
    /// the spin sees a sample sooner. Kept free of reference counting and exclusivity checks.
    @inline(__always)
    private var hasArrivals: Bool {
        if controlWord.pointee.load(ordering: .acquiring) != controlSeen.load(ordering: .relaxed) { return true }
        for index in 0..<state.count where state[index].ring.hasEntry { return true }
        return false
    }

    /// Control first, then the oldest-arrived sample across all rings, then a drained closed input.
    @inline(__always)
    private func poll() throws(TransportError) -> InboxEvent? {
        let posted = controlWord.pointee.load(ordering: .acquiring)
        if posted != controlSeen.load(ordering: .relaxed) {
            controlSeen.store(posted, ordering: .relaxed)
            return .control
        }
        if let sample = try takeOldest() { return .sample(sample) }
        return try closedInput()
    }

    /// Takes the oldest-arrived entry across all rings, if any. Inlined into `receive`: this and
    /// what it calls are the whole way from seeing a sample to handing it over.
    @inline(__always)
    private func takeOldest() throws(TransportError) -> ReceivedSample? {
        while true {
            // Only each head's stamp and arrival time are compared; the chosen entry is read after.
            var best = -1
            var position: UInt64 = 0
            var arrival: UInt64 = 0
            for index in 0..<state.count {
                guard let head = state[index].ring.peekArrival() else { continue }
                if best < 0 || head.arrival < arrival {
                    (best, position, arrival) = (index, head.position, head.arrival)
                }
            }
            guard best >= 0 else { return nil }
            let entry = state[best].ring.read(at: position, arrival: arrival)
            // The payload's line is in the producer's cache: start fetching it now, so that it
            // travels while the entry is taken and checked rather than after.
            prefetchPayload(input: best, descriptor: entry.descriptor)
            guard state[best].ring.take(at: position) else { continue }
            // Every latencySampling-th position of the ring: no counter of its own to keep.
            if position & (InputRing.latencySampling - 1) == 0 { sampleLatency(input: best, sent: entry.timestamp) }
            let sample = try open(entry, input: best)
            guard !state[best].discarding else {
                discard(sample)
                continue
            }
            return sample
        }
    }

    /// One latency sample for `apus top` (kept out of line: one take in `latencySampling`).
    @inline(never)
    private func sampleLatency(input: Int, sent: UInt64) {
        let now = monotonicNanoseconds()
        if sent > 0, now > sent { state[input].ring.recordLatency(now - sent) }
    }

    /// A closed input whose queue is drained, reported once (rare: kept out of line).
    @inline(never)
    private func closedInput() throws(TransportError) -> InboxEvent? {
        for index in 0..<state.count where !state[index].closedReported && state[index].ring.isProducerClosed {
            // Re-check after seeing the flag: the producer queues before closing.
            if let sample = try takeOldest() { return .sample(sample) }
            state[index].closedReported = true
            return .inputClosed(input: index)
        }
        return nil
    }

    /// Starts fetching the payload a descriptor names, when it is in the pool the input used last
    /// (a hint: a stale or hostile descriptor costs nothing, and `open` checks it anyway).
    @inline(__always)
    private func prefetchPayload(input: Int, descriptor: UInt64) {
        let (poolIndex, slot) = RingEntry.location(of: descriptor)
        if state[input].lastPoolIndex == poolIndex, let pool = state[input].lastPool, slot < pool.layout.slotCount {
            apussys_prefetch(pool.slotBase(slot) + pool.layout.payloadOffset)
        }
    }

    @inline(__always)
    private func open(_ entry: RingEntry, input: Int) throws(TransportError) -> ReceivedSample {
        let (poolIndex, slot) = RingEntry.location(of: entry.descriptor)
        if state[input].lastPoolIndex != poolIndex {
            (state[input].lastPool, state[input].lastPoolNumber) = try mappedPool(poolIndex, input: input)
            state[input].lastPoolIndex = poolIndex
        }
        let pool = state[input].lastPool.unsafelyUnwrapped
        guard slot < pool.layout.slotCount else {
            throw .corrupted("input \(input): descriptor names slot \(slot) of a pool of \(pool.layout.slotCount)")
        }
        pool.prefetchHolders(slot)  // released soon: fetch the line while the sample is used
        do {
            return ReceivedSample(
                payload: try pool.payload(in: slot, entry), length: entry.length, metadataLength: entry.metadataLength,
                timestamp: entry.timestamp, elementType: entry.elementType, input: input,
                pool: state[input].lastPoolNumber, slot: slot)
        } catch {
            pool.release(slot, bit: state[input].binding.bit)
            throw error
        }
    }

    /// The pool an input's sample names and its number, mapped if it is new. The input's holder
    /// bit must be one of the pool's: releasing addresses the holder word by it.
    private func mappedPool(_ poolIndex: Int, input: Int) throws(TransportError) -> (PoolView, UInt16) {
        let (producer, bit) = (state[input].binding.producer, state[input].binding.bit)
        let number: UInt16
        if let known = pools[producer]?[poolIndex] {
            number = known
        } else {
            guard poolIndex < 1 << 16 else { throw .corrupted("input \(input): descriptor names pool \(poolIndex)") }
            number = try self.number(of: try resolvePool(producer, poolIndex), producer: producer)
        }
        let view = poolView(number)
        guard bit >= 1, bit < view.layout.holderWords * 64 else {
            throw .corrupted("input \(input): holder bit \(bit) is not one of pool \(poolIndex)'s \(view.layout.holderWords * 64)")
        }
        return (view, number)
    }
}

/// What the daemon does when a node dies, so nothing it held or was sent is lost or leaked.
public enum Reclamation {
    /// A consumer died: stop its producer from feeding this edge, and release every sample the edge
    /// held or had queued. Safe to repeat and to race with the producer.
    /// Returns how many samples were queued for it and are now lost.
    @discardableResult
    public static func releaseEdge(_ ring: InputRing, bit: Int, pools: [PoolView]) -> Int {
        ring.setFlag(InputRing.consumerGone)
        return reclaim(ring, bit: bit, pools: pools)
    }

    /// A consumer died and is restarted: on a `backpressure` edge nothing queued may be lost, so
    /// the ring is only flagged. Its producer moves the queue into the new inbox (`move`), and
    /// one that finds the ring full waits for that inbox instead of timing out.
    public static func suspendEdge(_ ring: InputRing) {
        ring.setFlag(InputRing.consumerRestarting)
    }

    /// Moves what the dead consumer's ring `old` has queued to `new`, a fresh ring of the restarted
    /// consumer, in order, and clears `bit` on every other slot of `pools` (what the dead consumer
    /// held) except `keeping`, a sample the caller has yet to queue. Only whoever produces into
    /// both rings may call it: the producer, or the daemon once the producer has ended.
    ///
    /// Entries naming a pool not in `pools` (an earlier incarnation's of the producer, which the
    /// new consumer cannot map) and entries `new` has no room for are taken and counted in `new`
    /// as skipped. Returns how many were moved.
    @discardableResult
    public static func move(from old: InputRing, to new: InputRing, bit: Int, pools: [Int: PoolView], keeping: UInt64? = nil) -> Int {
        var kept = Set<UInt64>()
        if let keeping { kept.insert(keeping) }
        var tail = new.appendPosition()
        var knownHead = new.head.pointee.load(ordering: .acquiring)
        var moved = 0
        while let (position, arrival) = old.peekArrival() {
            let entry = old.read(at: position, arrival: arrival)
            guard old.take(at: position) else { continue }
            let (pool, slot) = RingEntry.location(of: entry.descriptor)
            if let view = pools[pool], slot < view.layout.slotCount, new.tryPush(entry, tail: &tail, knownHead: &knownHead) {
                kept.insert(entry.descriptor)
                moved += 1
            } else {
                new.skippedCounter.pointee.wrappingAdd(1, ordering: .relaxed)
            }
        }
        for (index, view) in pools {
            for slot in 0..<view.layout.slotCount where !kept.contains(RingEntry.descriptor(pool: index, slot: slot)) {
                view.release(slot, bit: bit)
            }
        }
        return moved
    }

    /// Empties the ring and clears the edge's bit on every slot: whatever was queued or held.
    /// Returns how many queued samples it took.
    @discardableResult
    static func reclaim(_ ring: InputRing, bit: Int, pools: [PoolView]) -> Int {
        let taken = ring.drain { _ in }
        for pool in pools { pool.releaseEverywhere(bit: bit) }
        return taken
    }

    /// A producer died or finished: its consumer drains what is queued, then sees the input closed.
    public static func closeEdge(_ inbox: Inbox, ring: Int) {
        inbox.rings[ring].setFlag(InputRing.producerClosed)
        inbox.doorbell.ring()
    }
}
