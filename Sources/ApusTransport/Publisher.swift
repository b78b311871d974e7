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
    public let length: Int
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
            firstPoolIndex: Int = 0, largePoolBudget: Int = 256 << 20, growthBudget: Int = 512 << 20,
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
    public private(set) var pools: [SamplePool] = []
    public private(set) var outputs: [[EdgeTarget]]
    private let announce: (SamplePool) throws(TransportError) -> Void

    // What the hand-off path reads, mirrored from `pools` and `outputs` into plain memory so that
    // allocating and publishing do no reference counting (the arrays keep the mappings alive).
    // Used under the owner's send lock and never through overlapping accesses, so it also skips
    // the runtime exclusivity checks, which cost a measurable share of a hand-off.
    @exclusivity(unchecked) private var slots = UnsafeMutableBufferPointer<PoolSlots>(start: nil, count: 0)
    @exclusivity(unchecked) private var edges = UnsafeMutableBufferPointer<Edge>(start: nil, count: 0)
    /// Output `o` feeds `edges[edgeStarts[o]..<edgeStarts[o + 1]]`.
    @exclusivity(unchecked) private var edgeStarts = UnsafeMutableBufferPointer<Int>(start: nil, count: 0)
    /// Output `o`'s holder words: the bits of its live edges, in `holderMasks[o * holderWords...]`.
    /// Worked out when the edges change, so that publishing stores them as they are.
    @exclusivity(unchecked) private var holderMasks = UnsafeMutableBufferPointer<UInt64>(start: nil, count: 0)
    /// Every pool's, since they all share the first pool's holder words.
    private let holderWords: Int
    /// The longest sample the first pool, of the smallest class, takes: up to it `allocate` tries
    /// that pool before anything else.
    private let smallestClassLimit: UInt
    /// The larger class `allocate` reserved in last: samples of `lower` + 1 to `upper` bytes are
    /// of that class (no class lies between), and its pool at `position` had a free slot.
    @exclusivity(unchecked) private var lastLargeClass = (lower: UInt.max, upper: UInt(0), position: 0)
    /// Stamps samples: CLOCK_MONOTONIC, read through the cycle counter where that is sound.
    @exclusivity(unchecked) private var clock = StampClock()

    private struct PoolSlots {
        let view: PoolView
        /// Where the next reservation starts looking.
        var cursor = 0
    }

    private struct Edge {
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
    private func updateHolderMasks() {
        holderMasks.initialize(repeating: 0)
        for output in 0..<(edgeStarts.count - 1) {
            for position in edgeStarts[output]..<edgeStarts[output + 1] where !edges[position].swept {
                let bit = edges[position].bit
                holderMasks[output * holderWords + bit >> 6] |= 1 << UInt64(bit & 63)
            }
        }
    }

    private func addPool(_ layout: PoolLayout) throws(TransportError) {
        let pool = try SamplePool(index: configuration.firstPoolIndex + pools.count, layout: layout, name: configuration.name)
        try announce(pool)
        pools.append(pool)
        let grown = UnsafeMutableBufferPointer<PoolSlots>.allocate(capacity: pools.count)
        _ = grown.initialize(from: slots)
        (grown.baseAddress! + slots.count).initialize(to: PoolSlots(view: pool.view))
        slots.deallocate()
        slots = grown
    }

    /// Reserves a sample of `length` payload bytes. When every slot of its size class is held (a
    /// consumer keeps many samples), the class grows by another pool within `growthBudget`, so
    /// one slow consumer does not hold up the others; past the budget it waits, bounded.
    @inline(__always)
    public func allocate(_ length: Int) throws(TransportError) -> ReservedSample {
        // Pool 0 is of the smallest class: pools added later are larger, or more of a full class.
        let size = UInt(bitPattern: length)
        if size <= smallestClassLimit {
            if let slot = slots[0].view.tryReserve(from: &slots[0].cursor) { return ReservedSample(pool: 0, slot: slot, length: length) }
        } else if size > lastLargeClass.lower, size <= lastLargeClass.upper {
            // Large samples mostly come in one size: the class found last time, without the search.
            let position = lastLargeClass.position
            if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                return ReservedSample(pool: position, slot: slot, length: length)
            }
        }
        return try allocateSlowly(length)
    }

    @inline(never)
    private func allocateSlowly(_ length: Int) throws(TransportError) -> ReservedSample {
        guard length >= 0, length <= configuration.maxSampleSize else {
            throw .sampleTooLarge(length: length, maximum: configuration.maxSampleSize)
        }
        // The smallest class that fits; larger classes are not borrowed, so big pools stay free for big samples.
        var first = -1
        for position in 0..<slots.count where slots[position].view.layout.payloadCapacity >= length {
            if first < 0 || slots[position].view.layout.payloadCapacity < slots[first].view.layout.payloadCapacity { first = position }
        }
        guard first >= 0 else {
            var layout = configuration.pool
            layout.payloadCapacity = min(nextPowerOfTwo(length), max(configuration.maxSampleSize, length))
            layout.slotCount = max(2, min(configuration.largeSlotCount, configuration.largePoolBudget / max(layout.payloadCapacity, 1)))
            try addPool(layout)
            return try reserve(in: [pools.count - 1], length: length)
        }
        let capacity = slots[first].view.layout.payloadCapacity
        for position in first..<slots.count where slots[position].view.layout.payloadCapacity == capacity {
            if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                if capacity > configuration.pool.payloadCapacity { rememberLargeClass(capacity, at: position) }
                return ReservedSample(pool: position, slot: slot, length: length)
            }
        }
        // Every slot of the class is held or queued.
        let positions = pools.indices.filter { pools[$0].layout.payloadCapacity == capacity }
        let layout = pools[positions[0]].layout
        guard pools.reduce(0, { $0 + $1.layout.dataSize }) + layout.dataSize <= configuration.growthBudget else {
            return try reserve(in: positions, length: length)
        }
        // A release usually comes within microseconds; grow only when none came for a while.
        do {
            return try reserve(in: positions, length: length, timeoutNanoseconds: configuration.growthWaitNanoseconds)
        } catch .poolExhausted {
            try addPool(layout)
            return try reserve(in: [pools.count - 1], length: length)
        }
    }

    /// Notes for `allocate` the class of `capacity` bytes (larger than the first pool's), whose
    /// pool at `position` had a free slot. Classes added later are larger still (a new class is
    /// made only for a sample larger than every pool), so the range stays that class's.
    private func rememberLargeClass(_ capacity: Int, at position: Int) {
        let smaller = slots.lazy.map(\.view.layout.payloadCapacity).filter { $0 < capacity }.max() ?? 0
        lastLargeClass = (UInt(smaller), UInt(min(capacity, configuration.maxSampleSize)), position)
    }

    /// Waits for a free slot in any of the pools at `positions`, up to `timeoutNanoseconds`
    /// (the allocation timeout when nil).
    private func reserve(in positions: [Int], length: Int, timeoutNanoseconds: UInt64? = nil) throws(TransportError) -> ReservedSample {
        let timeout = timeoutNanoseconds ?? configuration.allocationTimeoutNanoseconds
        if positions.count == 1 {
            let slot = try slots[positions[0]].view.reserve(
                from: &slots[positions[0]].cursor, timeoutNanoseconds: timeout, payloadLength: length)
            return ReservedSample(pool: positions[0], slot: slot, length: length)
        }
        // Several pools: wait on the newest in short slices, looking at all of them in between.
        let start = monotonicNanoseconds()
        while true {
            for position in positions {
                if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                    return ReservedSample(pool: position, slot: slot, length: length)
                }
            }
            let waited = monotonicNanoseconds() - start
            guard waited < timeout else {
                throw .poolExhausted(payloadLength: length, waitedNanoseconds: Int64(waited))
            }
            let slice = min(1_000_000, timeout - waited)
            let newest = positions.last!
            do {
                let slot = try slots[newest].view.reserve(from: &slots[newest].cursor, timeoutNanoseconds: slice, payloadLength: length)
                return ReservedSample(pool: newest, slot: slot, length: length)
            } catch .poolExhausted {
                continue
            }
        }
    }

    /// The writable payload of a reserved sample.
    public func payload(_ sample: borrowing ReservedSample) -> UnsafeMutableRawBufferPointer {
        let view = slots[sample.pool].view
        return UnsafeMutableRawBufferPointer(start: view.slotBase(sample.slot) + view.layout.payloadOffset, count: sample.length)
    }

    /// Returns a reserved sample to its pool without sending it.
    public func discard(_ sample: consuming ReservedSample) {
        slots[sample.pool].view.release(sample.slot, bit: 0)
    }

    /// Queues `sample` on every edge of `output` and rings each consumer. A `timestamp` of 0 is
    /// stamped now. The sample is released here on error too; on a backpressure timeout the other
    /// edges still get it and the error names the ring that stayed full.
    ///
    /// The consumer waits from the moment the payload is written until an entry's stamp is stored,
    /// and the stamp cannot become visible before the stores ahead of it. So the common case (no
    /// metadata to encode, room in every ring) runs straight through with no call until every
    /// entry is queued: values kept across a call go to memory, stores ahead of the stamp. The
    /// rest (encoding, re-anchoring the clock, a full ring) goes the general way, out of line.
    @discardableResult @inline(__always)
    public func publish(_ sample: consuming ReservedSample, output: Int, metadata: SampleMetadata) throws(TransportError) -> PublishReport {
        guard let now = clock.nowOnLine(), MetadataCodec.isEmpty(metadata) else {
            return try publishInGeneral(sample, output: output, metadata: metadata)
        }
        return try queue(
            prepare(sample, output: output, now: now, metadataLength: MetadataCodec.emptyLength, metadata: metadata), output: output)
    }

    /// `publish` with metadata to encode, or a clock to re-anchor.
    @inline(never)
    private func publishInGeneral(_ sample: consuming ReservedSample, output: Int, metadata: SampleMetadata) throws(TransportError)
        -> PublishReport
    {
        let now = clock.now()
        let metadataLength: Int
        do {
            metadataLength = try slots[sample.pool].view.seal(sample.slot, metadata: metadata)
        } catch {
            slots[sample.pool].view.release(sample.slot, bit: 0)
            throw error
        }
        return try queue(prepare(sample, output: output, now: now, metadataLength: metadataLength, metadata: metadata), output: output)
    }

    /// Makes every live edge of `output` a holder of `sample` and returns its ring entry.
    @inline(__always)
    private func prepare(
        _ sample: borrowing ReservedSample, output: Int, now: UInt64, metadataLength: Int, metadata: SampleMetadata
    ) -> RingEntry {
        // Every live edge holds the sample before the first one is queued, so a consumer releasing
        // it early cannot free it while others have yet to get it; bit 0, ours, is dropped then.
        // Plain stores do: nobody else sets bits, and nobody sees the slot before it is queued.
        // (The bits are ready-made, and a consumer that died is looked for only once the sample
        // is queued.) Read in place: a copy of the pool's view would be stores of its own.
        let pool = slots.baseAddress.unsafelyUnwrapped + sample.pool
        let masks = holderMasks.baseAddress.unsafelyUnwrapped + output &* holderWords
        if holderWords == 1 {  // the loop compiles to an unrolled copy, with branches to get there
            pool.pointee.view.holderWord(sample.slot, 0).pointee.store(masks[0], ordering: .relaxed)
        } else {
            for word in 0..<holderWords {
                pool.pointee.view.holderWord(sample.slot, word).pointee.store(masks[word], ordering: .relaxed)
            }
        }
        return RingEntry(
            descriptor: RingEntry.descriptor(pool: configuration.firstPoolIndex &+ sample.pool, slot: sample.slot),
            arrival: now, timestamp: metadata.timestamp == 0 ? now : metadata.timestamp,
            length: UInt64(truncatingIfNeeded: sample.length),
            metadataLength: UInt32(truncatingIfNeeded: metadataLength), elementType: metadata.elementType.rawValue)
    }

    /// Queues `entry` on every live edge of `output` whose ring has room and rings their consumers,
    /// then hands the rest to `queueToFullRings`. The edges' bits are set (`prepare`): nothing
    /// clears one before the sample is queued there.
    @inline(__always)
    private func queue(_ entry: RingEntry, output: Int) throws(TransportError) -> PublishReport {
        let range = edgeStarts[output]..<edgeStarts[output &+ 1]
        var delivered = 0
        for position in range where !edges[position].swept {
            // Arrival order across inputs is the time of sending: CLOCK_MONOTONIC is one clock for
            // every process (and the stamp clock keeps to it), so no shared counter has to bounce
            // between CPUs.
            guard edges[position].ring.tryPush(entry, tail: &edges[position].tail, knownHead: &edges[position].knownHead) else {
                // The entry goes as its fields: passed whole it would be written out to memory
                // first, ahead of the loop.
                return try queueToFullRings(
                    descriptor: entry.descriptor, arrival: entry.arrival, timestamp: entry.timestamp, length: entry.length,
                    details: entry.details, edges: range, from: position, delivered: delivered)
            }
            delivered &+= 1
        }
        // Out of line: what it keeps across its calls would otherwise be spilled ahead of the loop.
        ringAndSweep(edges: range, descriptor: entry.descriptor)
        return PublishReport(delivered: delivered)
    }

    /// Once the entry naming `descriptor` is queued on every edge of `range` (all had room): rings
    /// their consumers, then `afterQueuing`.
    @inline(never)
    private func ringAndSweep(edges range: Range<Int>, descriptor: UInt64) {
        ringDoorbells(edges: range)
        afterQueuing(descriptor, edges: range)
    }

    /// Rings the consumers of `range`, all queued to: one fence covers them all.
    @inline(__always)
    private func ringDoorbells(edges range: Range<Int>) {
        Doorbell.fence()
        for position in range where !edges[position].swept { edges[position].doorbell.wakeIfSleeping() }
    }

    /// Queues the entry on the live edges of `range` from `first` on, making room in full rings:
    /// evicts under `dropOldest`, waits under `backpressure` (bounded), and passes a consumer that
    /// is gone. The edges before `first` have it queued, and their consumers are rung first.
    @inline(never)
    private func queueToFullRings(
        descriptor: UInt64, arrival: UInt64, timestamp: UInt64, length: UInt64, details: UInt64,
        edges range: Range<Int>, from first: Int, delivered: Int
    ) throws(TransportError) -> PublishReport {
        let entry = RingEntry(descriptor: descriptor, arrival: arrival, timestamp: timestamp, length: length, details: details)
        ringDoorbells(edges: range.lowerBound..<first)
        let deadline = entry.arrival &+ configuration.backpressureTimeoutNanoseconds
        let (poolIndex, slot) = RingEntry.location(of: entry.descriptor)
        let pool = poolIndex - configuration.firstPoolIndex
        var report = PublishReport(delivered: delivered)
        var timedOut: Int?
        // Evicted samples are released through values captured here, not `self`: capturing it
        // would retain it, an atomic operation.
        let (pools, firstPool) = (slots, configuration.firstPoolIndex)
        for position in first..<range.upperBound where !edges[position].swept {
            let bit = edges[position].bit
            let evicted = edges[position].ring.push(
                entry, deadline: deadline, tail: &edges[position].tail, knownHead: &edges[position].knownHead
            ) { Self.releaseDescriptor($0, bit: bit, pools: pools, firstPool: firstPool) }
            if let evicted {
                report.delivered &+= 1
                report.evicted &+= evicted
                edges[position].doorbell.ring()
            } else {
                slots[pool].view.release(slot, bit: bit)
                if !edges[position].ring.isConsumerGone { timedOut = edges[position].ringIndex }
            }
        }
        afterQueuing(descriptor, edges: range)
        if let timedOut { throw .backpressureTimeout(input: timedOut) }
        return report
    }

    /// Once the sample `descriptor` names is queued: sweeps the edges of `range` whose consumer
    /// died, and prepares the next slot of the sample's pool.
    @inline(__always)
    private func afterQueuing(_ descriptor: UInt64, edges range: Range<Int>) {
        // A consumer that died: release what was queued to it, this sample included.
        for position in range where !edges[position].swept && edges[position].ring.isConsumerGone { sweep(position) }
        // While the consumers work, make the holder words of the slot reserved next this CPU's own.
        let pool = slots.baseAddress.unsafelyUnwrapped + (RingEntry.location(of: descriptor).pool &- configuration.firstPoolIndex)
        pool.pointee.view.prefetchHolders(pool.pointee.cursor)
    }

    /// Copies `bytes` into a new sample and publishes it.
    ///
    /// How the C and Python APIs send. `allocate` and `publish` are inlined here, and a short copy
    /// is done in words rather than by calling `memmove`: what a call keeps in memory is stored
    /// after the payload and so ahead of the entry's stamp (see `publish`).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, output: Int, metadata: SampleMetadata) throws(TransportError) -> PublishReport {
        let sample = try allocate(bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 {
            copy(from: source, count: bytes.count, to: payload(sample).baseAddress.unsafelyUnwrapped)
        }
        return try publish(sample, output: output, metadata: metadata)
    }

    /// Copies `count` (> 0) bytes: up to 64 in words (the last one overlapping), more by `memmove`.
    @inline(__always)
    private func copy(from source: UnsafeRawPointer, count: Int, to destination: UnsafeMutableRawPointer) {
        guard count >= 8, count <= 64 else {
            destination.copyMemory(from: source, byteCount: count)
            return
        }
        var offset = 0
        while offset &+ 8 < count {
            destination.storeBytes(of: source.loadUnaligned(fromByteOffset: offset, as: UInt64.self), toByteOffset: offset, as: UInt64.self)
            offset &+= 8
        }
        let last = count &- 8
        destination.storeBytes(of: source.loadUnaligned(fromByteOffset: last, as: UInt64.self), toByteOffset: last, as: UInt64.self)
    }

    /// Tells every consumer this producer will send no more (a clean exit).
    public func closeOutputs() {
        for edge in outputs.joined() {
            edge.inbox.rings[edge.ring].setFlag(InputRing.producerClosed)
            edge.inbox.doorbell.ring()
        }
    }

    /// Pool usage, for metrics and tests.
    public var usedSlots: Int { pools.reduce(0) { $0 + $1.view.usedSlots } }

    /// Points the edge with holder bit `bit` at a new inbox ring (its consumer was restarted with a
    /// fresh inbox). What the old ring still held is reclaimed first, so the bit starts clean.
    public func replaceEdge(bit: Int, with target: EdgeTarget) throws(TransportError) {
        guard target.bit == bit else { throw .invalidArgument("edge bit \(bit) replaced by bit \(target.bit)") }
        for output in outputs.indices {
            guard let position = outputs[output].firstIndex(where: { $0.bit == bit }) else { continue }
            let old = outputs[output][position]
            Reclamation.reclaim(old.inbox.rings[old.ring], bit: bit, pools: poolViews)
            outputs[output][position] = target
            edges[edgeStarts[output] + position] = Edge(target)
            updateHolderMasks()
            return
        }
        throw .invalidArgument("no edge with bit \(bit) to replace")
    }

    /// Every pool's view, for reclamation. Read from `slots`, not `pools`: touching `pools` in
    /// `publish` makes the compiler check exclusive access to it on every call.
    private var poolViews: [PoolView] { slots.map(\.view) }

    /// Releases the sample an evicted descriptor names (`pools` are the publisher's `slots`).
    private static func releaseDescriptor(_ descriptor: UInt64, bit: Int, pools: UnsafeMutableBufferPointer<PoolSlots>, firstPool: Int) {
        let (pool, slot) = RingEntry.location(of: descriptor)
        let position = pool - firstPool
        guard position >= 0, position < pools.count, slot < pools[position].view.layout.slotCount else { return }
        pools[position].view.release(slot, bit: bit)
    }

    /// Once a consumer is gone, release whatever this producer queued to it after it died.
    private func sweep(_ position: Int) {
        guard !edges[position].swept else { return }
        edges[position].swept = true
        updateHolderMasks()
        Reclamation.reclaim(edges[position].ring, bit: edges[position].bit, pools: poolViews)
    }
}
