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
public struct ReceivedSample: @unchecked Sendable {
    public let input: Int
    public let metadata: SampleMetadata
    /// Valid until `Subscriber.release`; the mapping is read-only, so writing through it faults.
    public let payload: UnsafeRawBufferPointer
    let pool: MappedPool
    let slot: Int
    let bit: Int
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
    @exclusivity(unchecked) private var pools: [Int: [Int: MappedPool]] = [:]
    @exclusivity(unchecked) private var closedReported: [Bool]
    /// The pool each input used last: consecutive samples almost always share it.
    @exclusivity(unchecked) private var lastPool: [MappedPool?]
    @exclusivity(unchecked) private var spin = AdaptiveSpin()
    /// The rings and the control word, held outside any array or class so the spin loop polls them
    /// without reference counting (the inbox, which owns their memory, lives as long as `self`).
    private let ringList: UnsafeMutableBufferPointer<InputRing>
    private let controlWord: UnsafeMutablePointer<Atomic<UInt32>>
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
        self.ringList = .allocate(capacity: inbox.rings.count)
        _ = self.ringList.initialize(from: inbox.rings)
        self.controlWord = inbox.controlCounter
        self.closedReported = Array(repeating: false, count: inputs.count)
        self.lastPool = Array(repeating: nil, count: inputs.count)
        self.resolvePool = resolvePool
    }

    deinit {
        ringList.deallocate()
    }

    /// Makes a producer's pool known ahead of its first sample.
    public func add(_ pool: MappedPool, producer: Int) {
        pools[producer, default: [:]][pool.index] = pool
    }

    /// The next event, waiting up to `timeoutNanoseconds` (nil: no limit); nil on timeout.
    public func receive(timeoutNanoseconds: UInt64?) throws(TransportError) -> InboxEvent? {
        let deadline = timeoutNanoseconds.map { monotonicNanoseconds() &+ $0 }
        while true {
            if let event = try poll() { return event }
            let ready = inbox.doorbell.wait(until: deadline, spin: &spin) { hasWork }
            if !ready { return nil }
        }
    }

    /// Releases a received sample; its slot returns to the pool when no edge holds it.
    public func release(_ sample: ReceivedSample) {
        sample.pool.view.release(sample.slot, bit: sample.bit)
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
        for index in 0..<ringList.count {
            let ring = ringList[index]
            if ring.queued > 0 { return true }
            if ring.isProducerClosed, !closedReported[index] { return true }
        }
        return false
    }

    /// Takes the oldest-arrived entry across all rings, or reports a drained closed input.
    private func poll() throws(TransportError) -> InboxEvent? {
        let posted = inbox.controlPosted
        if posted != controlSeen.load(ordering: .relaxed) {
            controlSeen.store(posted, ordering: .relaxed)
            return .control
        }
        while true {
            var best: (ring: Int, position: UInt64, arrival: UInt64, descriptor: UInt64)?
            for (index, ring) in inbox.rings.enumerated() {
                guard let head = ring.peek() else { continue }
                if best == nil || head.arrival < best!.arrival {
                    best = (index, head.position, head.arrival, head.descriptor)
                }
            }
            guard let best else { break }
            guard inbox.rings[best.ring].take(at: best.position) else { continue }
            return .sample(try open(best.descriptor, input: best.ring))
        }
        for (index, ring) in inbox.rings.enumerated() where !closedReported[index] && ring.isProducerClosed {
            // Re-check emptiness after seeing the flag: the producer queues before closing.
            guard ring.queued == 0 else { return try poll() }
            closedReported[index] = true
            return .inputClosed(input: index)
        }
        return nil
    }

    private func open(_ descriptor: UInt64, input: Int) throws(TransportError) -> ReceivedSample {
        let binding = inputs[input]
        let poolIndex = Int(descriptor >> 32)
        let slot = Int(descriptor & 0xFFFF_FFFF)
        let pool: MappedPool
        if let last = lastPool[input], last.index == poolIndex {
            pool = last
        } else if let known = pools[binding.producer]?[poolIndex] {
            pool = known
        } else {
            guard poolIndex < 1 << 16 else { throw .corrupted("input \(input): descriptor names pool \(poolIndex)") }
            pool = try resolvePool(binding.producer, poolIndex)
            add(pool, producer: binding.producer)
        }
        lastPool[input] = pool
        guard slot < pool.view.layout.slotCount else {
            throw .corrupted("input \(input): descriptor names slot \(slot) of a pool of \(pool.view.layout.slotCount)")
        }
        do {
            let (metadata, payload) = try pool.view.sample(in: slot)
            return ReceivedSample(input: input, metadata: metadata, payload: payload, pool: pool, slot: slot, bit: binding.bit)
        } catch {
            pool.view.release(slot, bit: binding.bit)
            throw error
        }
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
