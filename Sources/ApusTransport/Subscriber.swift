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
/// holds no references, so handing it on copies a few words and counts nothing.
public struct ReceivedSample: @unchecked Sendable {
    public let input: Int
    public let elementType: ElementType
    /// When it was sent (monotonic ns).
    public let timestamp: UInt64
    /// Valid until `Subscriber.release`; the mapping is read-only, so writing through it faults.
    public let payload: UnsafeRawBufferPointer
    /// The encoded shape and parameters, in the slot (bounded by the pool's metadata capacity).
    let metadataArea: UnsafeRawBufferPointer
    let hold: SlotHold

    /// The whole metadata, decoded from the slot (valid until `Subscriber.release`). Encoded
    /// metadata a faulty producer wrote is an error; its reading stays inside the slot's area.
    public func metadata() throws(TransportError) -> SampleMetadata {
        try MetadataCodec.decode(metadataArea, elementType: elementType, timestamp: timestamp)
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
    public let inputs: [InputBinding]
    // Mutable state is used by the one receiving thread and never through overlapping accesses,
    // so it skips the runtime exclusivity checks, which cost a measurable share of a hand-off.
    /// Every pool mapped so far, by producer and index. Pools stay mapped as long as the subscriber
    /// lives, so received samples can point into them without reference counting.
    @exclusivity(unchecked) private var pools: [Int: [Int: MappedPool]] = [:]
    @exclusivity(unchecked) private var spin = AdaptiveSpin()
    /// Per input: its ring, binding, the pool it used last (consecutive samples almost always
    /// share it) and whether its closing was reported. Held outside any array or class so the
    /// hand-off path runs without reference counting (the inbox, which owns the rings' memory,
    /// lives as long as `self`).
    private let state: UnsafeMutableBufferPointer<InputState>
    private let controlWord: UnsafeMutablePointer<Atomic<UInt32>>

    private struct InputState {
        let ring: InputRing
        let binding: InputBinding
        var lastPoolIndex = -1
        var lastPool: PoolView?
        var closedReported = false
    }
    /// The control count last handed out; atomic because `controlPending` may be read from a
    /// sending thread while another receives.
    private let controlSeen = Atomic<UInt32>(0)
    private let resolvePool: (_ producer: Int, _ index: Int) throws(TransportError) -> MappedPool

    /// `resolvePool` is called for a pool this consumer has not mapped yet; it must obtain it from
    /// the control channel (producers announce pools before using them) or throw.
    public init(
        inbox: Inbox, inputs: [InputBinding],
        resolvePool: @escaping (_ producer: Int, _ index: Int) throws(TransportError) -> MappedPool
    ) throws(TransportError) {
        guard inputs.count == inbox.rings.count else {
            throw .corrupted("\(inputs.count) input bindings for \(inbox.rings.count) rings")
        }
        self.inbox = inbox
        self.inputs = inputs
        self.state = .allocate(capacity: inputs.count)
        _ = self.state.initialize(from: zip(inbox.rings, inputs).map { InputState(ring: $0, binding: $1) })
        self.controlWord = inbox.controlCounter
        self.resolvePool = resolvePool
    }

    deinit {
        state.deinitialize().deallocate()
    }

    /// Makes a producer's pool known ahead of its first sample.
    public func add(_ pool: MappedPool, producer: Int) {
        pools[producer, default: [:]][pool.index] = pool
    }

    /// The next event, waiting up to `timeoutNanoseconds` (nil: no limit); nil on timeout.
    public func receive(timeoutNanoseconds: UInt64?) throws(TransportError) -> InboxEvent? {
        if let event = try poll() { return event }
        if timeoutNanoseconds == 0 { return nil }
        if spin.spinBriefly(timeoutNanoseconds: timeoutNanoseconds, { hasWork }), let event = try poll() { return event }
        let deadline = timeoutNanoseconds.map { monotonicNanoseconds() &+ $0 }
        while true {
            let ready = inbox.doorbell.wait(until: deadline, spin: &spin) { hasWork }
            if !ready { return nil }
            if let event = try poll() { return event }
        }
    }

    /// Releases a received sample; its slot returns to the pool when no edge holds it.
    @inline(__always)
    public func release(_ sample: ReceivedSample) {
        sample.hold.release()
    }

    /// True when control was posted since the last `.control` event; cheap enough for every send.
    public var controlPending: Bool { inbox.controlPosted != controlSeen.load(ordering: .relaxed) }

    /// Consumes a pending control notice outside `receive` (the caller then reads the socket).
    public func acknowledgeControl() {
        controlSeen.store(inbox.controlPosted, ordering: .relaxed)
    }

    /// Samples queued on each input (metrics).
    public var queued: [Int] { inbox.rings.map(\.queued) }

    /// What the spin loop polls: kept free of reference counting and exclusivity checks.
    @inline(__always)
    private var hasWork: Bool {
        if controlWord.pointee.load(ordering: .acquiring) != controlSeen.load(ordering: .relaxed) { return true }
        for index in 0..<state.count {
            let ring = state[index].ring
            if ring.hasEntry { return true }
            if ring.isProducerClosed, !state[index].closedReported { return true }
        }
        return false
    }

    /// Takes the oldest-arrived entry across all rings, or reports a drained closed input.
    private func poll() throws(TransportError) -> InboxEvent? {
        let posted = controlWord.pointee.load(ordering: .acquiring)
        if posted != controlSeen.load(ordering: .relaxed) {
            controlSeen.store(posted, ordering: .relaxed)
            return .control
        }
        while true {
            var best = -1
            var position: UInt64 = 0
            var entry = RingEntry(descriptor: 0, arrival: 0, timestamp: 0, length: 0, metadataLength: 0, elementType: 0)
            for index in 0..<state.count {
                guard let head = state[index].ring.peek() else { continue }
                if best < 0 || head.entry.arrival < entry.arrival {
                    (best, position, entry) = (index, head.position, head.entry)
                }
            }
            guard best >= 0 else { break }
            // The payload's line is in the producer's cache: start fetching it now, so that it
            // travels while the entry is taken and checked rather than after.
            prefetchPayload(input: best, descriptor: entry.descriptor)
            guard state[best].ring.take(at: position) else { continue }
            return .sample(try open(entry, input: best))
        }
        for index in 0..<state.count where !state[index].closedReported && state[index].ring.isProducerClosed {
            // Re-check emptiness after seeing the flag: the producer queues before closing.
            guard !state[index].ring.hasEntry else { return try poll() }
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
        let bit = state[input].binding.bit
        let pool: PoolView
        if state[input].lastPoolIndex == poolIndex, let last = state[input].lastPool {
            pool = last
        } else {
            pool = try mappedPool(poolIndex, input: input)
            state[input].lastPoolIndex = poolIndex
            state[input].lastPool = pool
        }
        guard slot < pool.layout.slotCount else {
            throw .corrupted("input \(input): descriptor names slot \(slot) of a pool of \(pool.layout.slotCount)")
        }
        pool.prefetchHolders(slot)  // released soon: fetch the line while the sample is used
        let hold = pool.hold(slot, bit: bit)
        do {
            let (elementType, metadataArea, payload) = try pool.sample(in: slot, entry)
            return ReceivedSample(
                input: input, elementType: elementType, timestamp: entry.timestamp, payload: payload,
                metadataArea: metadataArea, hold: hold)
        } catch {
            hold.release()
            throw error
        }
    }

    /// The pool an input's sample names, mapped if it is new. The input's holder bit must be one
    /// of the pool's: releasing addresses the holder word by it.
    private func mappedPool(_ poolIndex: Int, input: Int) throws(TransportError) -> PoolView {
        let (producer, bit) = (state[input].binding.producer, state[input].binding.bit)
        let view: PoolView
        if let known = pools[producer]?[poolIndex] {
            view = known.view
        } else {
            guard poolIndex < 1 << 16 else { throw .corrupted("input \(input): descriptor names pool \(poolIndex)") }
            let pool = try resolvePool(producer, poolIndex)
            add(pool, producer: producer)
            view = pool.view
        }
        guard bit >= 1, bit < view.layout.holderWords * 64 else {
            throw .corrupted("input \(input): holder bit \(bit) is not one of pool \(poolIndex)'s \(view.layout.holderWords * 64)")
        }
        return view
    }
}

/// What the daemon does when a node dies, so nothing it held or was sent is lost or leaked.
public enum Reclamation {
    /// A consumer died: stop its producer from feeding this edge, and release every sample the edge
    /// held or had queued. Safe to repeat and to race with the producer.
    public static func releaseEdge(_ ring: InputRing, bit: Int, pools: [PoolView]) {
        ring.setFlag(InputRing.consumerGone)
        reclaim(ring, bit: bit, pools: pools)
    }

    /// Empties the ring and clears the edge's bit on every slot: whatever was queued or held.
    static func reclaim(_ ring: InputRing, bit: Int, pools: [PoolView]) {
        ring.drain { _ in }
        for pool in pools { pool.releaseEverywhere(bit: bit) }
    }

    /// A producer died or finished: its consumer drains what is queued, then sees the input closed.
    public static func closeEdge(_ inbox: Inbox, ring: Int) {
        inbox.rings[ring].setFlag(InputRing.producerClosed)
        inbox.doorbell.ring()
    }
}
