/// Where a producer output delivers: one ring of one consumer's inbox, and the holder bit that
/// marks the samples this edge holds or has queued.
public struct EdgeTarget: @unchecked Sendable {
    public let inbox: Inbox
    public let ring: Int
    /// 1-based (bit 0 is the producer's own); unique among the producer's edges.
    public let bit: Int

    public init(inbox: Inbox, ring: Int, bit: Int) {
        self.inbox = inbox
        self.ring = ring
        self.bit = bit
    }
}

/// A sample slot reserved by `Publisher.allocate`: fill its payload, then publish or discard it.
/// A slot reserved for a sample: fill its payload, then publish or discard it. It cannot be
/// copied, and publishing or discarding consumes it, so no sample is published twice.
public struct ReservedSample: ~Copyable, Sendable {
    /// Position in `Publisher.pools` (not the pool's index, which may start above 0).
    public let pool: Int
    public let slot: Int
    /// The payload's length: what `publish` sends (see `Publisher.resize`).
    public internal(set) var length: Int
}

public struct PublishReport: Sendable, Equatable {
    /// Rings the sample was queued on.
    public var delivered = 0
    /// Older samples evicted (and counted in their ring) to make room under `dropOldest`.
    public var evicted = 0
}

/// The producer side of a node: its pools and, per output, the edges it feeds.
///
/// Samples come from pools of growing size classes: a sample larger than every pool gets a new
/// pool sized for it (a power of two), which is announced to the consumers before its first use
/// and then reused, so large messages cost no fresh page faults after the first.
public final class Publisher: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var name: String
        /// The first pool: slot count, payload capacity and metadata capacity per sample.
        public var pool: PoolLayout
        /// Slots in each pool made for larger samples (at most; see `largePoolBudget`).
        public var largeSlotCount: Int
        /// Bytes a pool for large samples may take: huge samples get fewer slots (two at least),
        /// since every slot is pre-faulted memory.
        public var largePoolBudget: Int
        /// Bytes all pools together may take when a size class grows because consumers hold its
        /// samples; past it, `allocate` waits for a release.
        public var growthBudget: Int
        /// How long `allocate` waits for a release before it grows a full size class.
        public var growthWaitNanoseconds: UInt64
        public var maxSampleSize: Int
        /// How long `allocate` waits for a free slot before failing.
        public var allocationTimeoutNanoseconds: UInt64
        /// How long `publish` waits for room on a full `backpressure` input before failing.
        public var backpressureTimeoutNanoseconds: UInt64
        /// Index of the first pool. A restarted producer continues after its previous incarnation's
        /// pools, so descriptors still queued from before never name one of the new pools.
        public var firstPoolIndex: Int

        public init(
            name: String, pool: PoolLayout, largeSlotCount: Int = 4, maxSampleSize: Int = 1 << 30,
            allocationTimeoutNanoseconds: UInt64 = 5_000_000_000, backpressureTimeoutNanoseconds: UInt64 = 5_000_000_000,
            firstPoolIndex: Int = 0, largePoolBudget: Int = 64 << 20, growthBudget: Int = 512 << 20,
            growthWaitNanoseconds: UInt64 = 5_000_000
        ) {
            self.growthWaitNanoseconds = growthWaitNanoseconds
            self.largePoolBudget = largePoolBudget
            self.growthBudget = growthBudget
            self.firstPoolIndex = firstPoolIndex
            self.name = name
            self.pool = pool
            self.largeSlotCount = largeSlotCount
            self.maxSampleSize = maxSampleSize
            self.allocationTimeoutNanoseconds = allocationTimeoutNanoseconds
            self.backpressureTimeoutNanoseconds = backpressureTimeoutNanoseconds
        }
    }

    public let configuration: Configuration
    public internal(set) var pools: [SamplePool] = []
    public internal(set) var outputs: [[EdgeTarget]]
    let announce: (SamplePool) throws(TransportError) -> Void
    /// Set by the owner before the first publish (see `EdgeReplacementWait`).
    public var edgeReplacementWait: EdgeReplacementWait?

    // What the hand-off path reads, mirrored from `pools` and `outputs` into plain memory so that
    // allocating and publishing do no reference counting (the arrays keep the mappings alive).
    // Used under the owner's send lock and never through overlapping accesses, so it also skips
    // the runtime exclusivity checks, which cost a measurable share of a hand-off.
    @exclusivity(unchecked) var slots = UnsafeMutableBufferPointer<PoolSlots>(start: nil, count: 0)
    @exclusivity(unchecked) var edges = UnsafeMutableBufferPointer<Edge>(start: nil, count: 0)
    /// Output `o` feeds `edges[edgeStarts[o]..<edgeStarts[o + 1]]`.
    @exclusivity(unchecked) var edgeStarts = UnsafeMutableBufferPointer<Int>(start: nil, count: 0)
    /// Output `o`'s holder words: the bits of its live edges, in `holderMasks[o * holderWords...]`.
    /// Worked out when the edges change, so that publishing stores them as they are.
    @exclusivity(unchecked) var holderMasks = UnsafeMutableBufferPointer<UInt64>(start: nil, count: 0)
    /// Every pool's, since they all share the first pool's holder words.
    let holderWords: Int
    /// The longest sample the first pool, of the smallest class, takes: up to it `allocate` tries
    /// that pool before anything else.
    let smallestClassLimit: UInt
    /// The larger class `allocate` reserved in last: samples of `lower` + 1 to `upper` bytes are
    /// of that class (no class lies between), and its pool at `position` had a free slot.
    @exclusivity(unchecked) var lastLargeClass = (lower: UInt.max, upper: UInt(0), position: 0)
    /// The pool of the smallest class that had a free slot last (pool 0, or one it grew by).
    @exclusivity(unchecked) var lastSmallPosition = 0
    /// Stamps samples: CLOCK_MONOTONIC, read through the cycle counter where that is sound.
    @exclusivity(unchecked) var clock = StampClock()

    struct PoolSlots {
        let view: PoolView
        /// Where the next reservation starts looking.
        var cursor = 0
    }

    struct Edge {
        let ring: InputRing
        let doorbell: Doorbell
        let ringIndex: Int
        let bit: Int
        /// Where this producer appends next; only it moves the ring's tail.
        var tail: UInt64
        /// The last `head` read from the ring (see `InputRing.push`).
        var knownHead: UInt64 = 0
        /// Its consumer is gone and what was queued to it is reclaimed.
        var swept = false
        /// Set when its consumer is rung by `ringDeferred`, after the caller's own work, not by
        /// the publish: how many samples wait in the ring before it rings.
        var deferred: Int?

        init(_ target: EdgeTarget) {
            ring = target.inbox.rings[target.ring]
            doorbell = target.inbox.doorbell
            ringIndex = target.ring
            bit = target.bit
            tail = ring.appendPosition()
        }
    }

    /// `outputs[i]` lists the edges output `i` feeds. `announce` must make a new pool known to every
    /// consumer before this returns (it is called for the first pool too).
    public init(
        configuration: Configuration, outputs: [[EdgeTarget]],
        announce: @escaping (SamplePool) throws(TransportError) -> Void
    ) throws(TransportError) {
        let bits = outputs.joined().map(\.bit)
        guard bits.allSatisfy({ $0 >= 1 && $0 < configuration.pool.holderWords * 64 }), Set(bits).count == bits.count else {
            throw .invalidArgument("edge bits \(bits) do not fit \(configuration.pool.holderWords) holder words or repeat")
        }
        self.configuration = configuration
        self.outputs = outputs
        self.announce = announce
        holderWords = configuration.pool.holderWords
        smallestClassLimit = UInt(min(configuration.pool.payloadCapacity, configuration.maxSampleSize))
        holderMasks = .allocate(capacity: outputs.count * holderWords)
        edges = .allocate(capacity: bits.count)
        edgeStarts = .allocate(capacity: outputs.count + 1)
        var next = 0
        for (output, targets) in outputs.enumerated() {
            edgeStarts[output] = next
            for target in targets {
                (edges.baseAddress! + next).initialize(to: Edge(target))
                next += 1
            }
        }
        edgeStarts[outputs.count] = next
        updateHolderMasks()
        try addPool(configuration.pool)
    }

    deinit {
        slots.deallocate()
        edges.deallocate()
        edgeStarts.deallocate()
        holderMasks.deallocate()
    }

    /// Works out `holderMasks` from the edges that are not swept.
    func updateHolderMasks() {
        holderMasks.initialize(repeating: 0)
        for output in 0..<(edgeStarts.count - 1) {
            for position in edgeStarts[output]..<edgeStarts[output + 1] where !edges[position].swept {
                let bit = edges[position].bit
                holderMasks[output * holderWords + bit >> 6] |= 1 << UInt64(bit & 63)
            }
        }
    }

    func addPool(_ layout: PoolLayout) throws(TransportError) {
        let pool = try SamplePool(index: configuration.firstPoolIndex + pools.count, layout: layout, name: configuration.name)
        try announce(pool)
        pools.append(pool)
        let grown = UnsafeMutableBufferPointer<PoolSlots>.allocate(capacity: pools.count)
        _ = grown.initialize(from: slots)
        (grown.baseAddress! + slots.count).initialize(to: PoolSlots(view: pool.view))
        slots.deallocate()
        slots = grown
    }
}
