// Publishing: a sample's holders, its ring entry on every edge, full rings, and send's copy.
import CApusSys
import Synchronization

extension Publisher {
    /// Queues `sample` on every edge of `output` and rings each consumer. A `timestamp` of 0 is
    /// stamped now. The sample is released here on error too; on a backpressure timeout the other
    /// edges still get it and the error names the ring that stayed full.
    ///
    /// The common case (no metadata to encode, room in every ring) makes no call until every entry
    /// is queued: a call stores live values to memory, ahead of the entry's stamp that the consumer
    /// waits for. The rest (encoding, re-anchoring the clock, a full ring) goes out of line.
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
    func publishInGeneral(_ sample: consuming ReservedSample, output: Int, metadata: SampleMetadata) throws(TransportError)
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
    func prepare(
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
    func queue(_ entry: RingEntry, output: Int) throws(TransportError) -> PublishReport {
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
    func ringAndSweep(edges range: Range<Int>, descriptor: UInt64) {
        ringDoorbells(edges: range)
        afterQueuing(descriptor, edges: range)
    }

    /// Rings the consumers of `range`, all queued to: one fence covers them all.
    @inline(__always)
    func ringDoorbells(edges range: Range<Int>) {
        Doorbell.fence()
        for position in range where !edges[position].swept && edges[position].deferred == nil { edges[position].doorbell.wakeIfSleeping() }
    }

    /// Queues the entry on the live edges of `range` from `first` on, making room in full rings:
    /// evicts under `dropOldest`, waits under `backpressure` (bounded), and passes a consumer that
    /// is gone. The edges before `first` have it queued, and their consumers are rung first.
    @inline(never)
    func queueToFullRings(
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
            var evicted = edges[position].ring.push(
                entry, deadline: deadline, tail: &edges[position].tail, knownHead: &edges[position].knownHead
            ) { Self.releaseDescriptor($0, bit: bit, pools: pools, firstPool: firstPool) }
            // A full ring of a consumer being restarted: wait for its new inbox, then queue there.
            while evicted == nil, let wait = edgeReplacementWait, edges[position].ring.isConsumerRestarting,
                !edges[position].ring.isConsumerGone, monotonicNanoseconds() < deadline
            {
                guard let target = wait(bit, deadline) else { continue }
                do {
                    try replaceEdge(bit: bit, with: target, keeping: descriptor)
                } catch {
                    break
                }
                evicted = edges[position].ring.push(
                    entry, deadline: deadline, tail: &edges[position].tail, knownHead: &edges[position].knownHead
                ) { Self.releaseDescriptor($0, bit: bit, pools: pools, firstPool: firstPool) }
            }
            if let evicted {
                report.delivered &+= 1
                report.evicted &+= evicted
                edges[position].doorbell.ring()
            } else {
                slots[pool].view.release(slot, bit: bit)
                if edges[position].ring.isConsumerRestarting {
                    // Not queued for the restarted consumer either: counted, and the sender told.
                    edges[position].ring.skippedCounter.pointee.wrappingAdd(1, ordering: .relaxed)
                }
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
    func afterQueuing(_ descriptor: UInt64, edges range: Range<Int>) {
        // A consumer that died: release what was queued to it, this sample included.
        for position in range {
            if edges[position].swept {
                // Sent while its consumer is gone (restarting, or ended): counted for the report.
                edges[position].ring.skippedCounter.pointee.wrappingAdd(1, ordering: .relaxed)
            } else if edges[position].ring.isConsumerGone {
                sweep(position)
            }
        }
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
        try publish(copying: bytes, into: allocate(bytes.count), output: output, metadata: metadata)
    }

    /// `send`, only if nothing has to wait (`reserveWithoutWaiting`): nil, having sent nothing,
    /// otherwise.
    public func sendWithoutWaiting(_ bytes: UnsafeRawBufferPointer, output: Int, metadata: SampleMetadata) throws(TransportError)
        -> PublishReport?
    {
        guard let sample = reserveWithoutWaiting(bytes.count, output: output) else { return nil }
        return try publish(copying: bytes, into: sample, output: output, metadata: metadata)
    }

    /// Copies `bytes` into `sample`, reserved for as many, and publishes it.
    @inline(__always)
    func publish(
        copying bytes: UnsafeRawBufferPointer, into sample: consuming ReservedSample, output: Int, metadata: SampleMetadata
    ) throws(TransportError) -> PublishReport {
        if let source = bytes.baseAddress, bytes.count > 0 {
            copy(from: source, count: bytes.count, to: payload(sample).baseAddress.unsafelyUnwrapped)
        }
        return try publish(sample, output: output, metadata: metadata)
    }

    /// Copies `count` (> 0) bytes: up to 64 in words (the last one overlapping), more by `memmove`.
    @inline(__always)
    func copy(from source: UnsafeRawPointer, count: Int, to destination: UnsafeMutableRawPointer) {
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
}
