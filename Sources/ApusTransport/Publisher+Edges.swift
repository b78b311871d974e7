// Edges over a publisher's life: closing outputs, consumers replaced or gone.
import CApusSys
import Synchronization

extension Publisher {
    /// Tells every consumer this producer will send no more (a clean exit).
    public func closeOutputs() {
        for edge in outputs.joined() {
            edge.inbox.rings[edge.ring].setFlag(InputRing.producerClosed)
            edge.inbox.doorbell.ring()
        }
    }

    /// Has `output`'s edge into `ring` rung only by `ringDeferred(output:)`, not by each publish,
    /// and only once `queued` samples (at least 1) wait in the ring; a full ring rings at once.
    /// For a consumer that need not wake for every sample and must not wake before the producer's
    /// own next step, such as a bridge-out that only keeps what was sent: every wake-up takes a
    /// CPU from the work that matters. Until the edge is replaced (a restarted consumer), which
    /// rings as usual.
    public func deferRinging(output: Int, ring: InputRing, untilQueued queued: Int) {
        for position in edgeStarts[output]..<edgeStarts[output + 1] where edges[position].ring.base == ring.base {
            edges[position].deferred = max(1, queued)
        }
    }

    /// Rings the consumers of `output` whose ringing was deferred, once enough waits for them.
    public func ringDeferred(output: Int) {
        Doorbell.fence()
        for position in edgeStarts[output]..<edgeStarts[output + 1] where !edges[position].swept {
            guard let queued = edges[position].deferred, edges[position].ring.queued >= queued else { continue }
            edges[position].doorbell.wakeIfSleeping()
        }
    }

    /// Pool usage, for metrics and tests.
    public var usedSlots: Int { pools.reduce(0) { $0 + $1.view.usedSlots } }

    /// Points the edge with holder bit `bit` at a new inbox ring (its consumer was restarted with a
    /// fresh inbox). What the old ring still has queued moves to the new one, so a `backpressure`
    /// edge loses nothing; what the dead consumer held is released. `keeping` is a sample with the
    /// edge's bit set that is yet to be queued (a publish waiting for this inbox).
    public func replaceEdge(bit: Int, with target: EdgeTarget, keeping: UInt64? = nil) throws(TransportError) {
        guard target.bit == bit else { throw .invalidArgument("edge bit \(bit) replaced by bit \(target.bit)") }
        for output in outputs.indices {
            guard let position = outputs[output].firstIndex(where: { $0.bit == bit }) else { continue }
            let old = outputs[output][position]
            let ownPools = Dictionary(uniqueKeysWithValues: poolViews.enumerated().map { (configuration.firstPoolIndex + $0, $1) })
            Reclamation.move(
                from: old.inbox.rings[old.ring], to: target.inbox.rings[target.ring], bit: bit, pools: ownPools, keeping: keeping)
            outputs[output][position] = target
            edges[edgeStarts[output] + position] = Edge(target)
            updateHolderMasks()
            return
        }
        throw .invalidArgument("no edge with bit \(bit) to replace")
    }

    /// Where a publish that finds a restarting consumer's ring full gets the consumer's new ring:
    /// called with the edge's bit and the deadline, it waits a short while (well before the
    /// deadline) and returns the new target if it has come. Without it, such a publish times out.
    public typealias EdgeReplacementWait = (_ bit: Int, _ deadline: UInt64) -> EdgeTarget?

    /// Every pool's view, for reclamation. Read from `slots`, not `pools`: touching `pools` in
    /// `publish` makes the compiler check exclusive access to it on every call.
    var poolViews: [PoolView] { slots.map(\.view) }

    /// Releases the sample an evicted descriptor names (`pools` are the publisher's `slots`).
    static func releaseDescriptor(_ descriptor: UInt64, bit: Int, pools: UnsafeMutableBufferPointer<PoolSlots>, firstPool: Int) {
        let (pool, slot) = RingEntry.location(of: descriptor)
        let position = pool - firstPool
        guard position >= 0, position < pools.count, slot < pools[position].view.layout.slotCount else { return }
        pools[position].view.release(slot, bit: bit)
    }

    /// Once a consumer is gone, release whatever this producer queued to it after it died.
    func sweep(_ position: Int) {
        guard !edges[position].swept else { return }
        edges[position].swept = true
        updateHolderMasks()
        // What it queued after the consumer died (this sample included) was sent to no one.
        let taken = Reclamation.reclaim(edges[position].ring, bit: edges[position].bit, pools: poolViews)
        edges[position].ring.skippedCounter.pointee.wrappingAdd(UInt64(taken), ordering: .relaxed)
    }
}

extension Publisher {
    /// Starts feeding `target` from `output`: a consumer that joined the running dataflow. Only
    /// what is published from now on reaches it. Call it where publishing is (the send lock).
    public func addEdge(output: Int, target: EdgeTarget) throws(TransportError) {
        guard output >= 0, output < outputs.count else { throw .invalidArgument("no output \(output) to add an edge to") }
        guard target.bit >= 1, target.bit < holderWords * 64, !outputs.joined().contains(where: { $0.bit == target.bit }) else {
            throw .invalidArgument("edge bit \(target.bit) is taken or does not fit \(holderWords) holder words")
        }
        var kept = Array(edges)
        kept.insert(Edge(target), at: edgeStarts[output + 1])
        outputs[output].append(target)
        rebuildEdges(kept)
    }

    /// Stops feeding the edge with holder bit `bit` (its consumer left): what is queued to it and
    /// what it held is released, and the bit is free for a later edge. False if there is none.
    @discardableResult
    public func removeEdge(bit: Int) -> Bool {
        guard let position = (0..<edges.count).first(where: { edges[$0].bit == bit }),
            let output = outputs.firstIndex(where: { $0.contains { $0.bit == bit } })
        else { return false }
        edges[position].ring.setFlag(InputRing.consumerGone)
        sweep(position)
        var kept = Array(edges)
        kept.remove(at: position)
        outputs[output].removeAll { $0.bit == bit }
        rebuildEdges(kept)
        return true
    }

    /// Replaces the edge table by `kept` (in output order, matching `outputs`), keeping each edge's
    /// positions.
    private func rebuildEdges(_ kept: [Edge]) {
        edges.deallocate()
        edges = .allocate(capacity: kept.count)
        _ = edges.initialize(from: kept)
        var next = 0
        for output in outputs.indices {
            edgeStarts[output] = next
            next += outputs[output].count
        }
        edgeStarts[outputs.count] = next
        updateHolderMasks()
    }
}
