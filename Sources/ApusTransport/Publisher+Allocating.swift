// Allocating samples: size classes, pools that grow, and giving a sample back unsent.
import CApusSys
import Synchronization

extension Publisher {
    /// Reserves a sample of `length` payload bytes. When every slot of its size class is held (a
    /// consumer keeps many samples), the class grows by another pool within `growthBudget`, so
    /// one slow consumer does not hold up the others; past the budget it waits, bounded.
    @inline(__always)
    public func allocate(_ length: Int) throws(TransportError) -> ReservedSample {
        // Pool 0 is of the smallest class: pools added later are larger, or more of a full class.
        let size = UInt(bitPattern: length)
        if size <= smallestClassLimit {
            // The pool of the class that had a free slot last: pool 0 until the class grew because
            // consumers hold many samples (then a full pool 0 is not searched for every sample).
            let position = lastSmallPosition
            if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                return ReservedSample(pool: position, slot: slot, length: length)
            }
        } else if size > lastLargeClass.lower, size <= lastLargeClass.upper {
            // Large samples mostly come in one size: the class found last time, without the search.
            let position = lastLargeClass.position
            if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                return ReservedSample(pool: position, slot: slot, length: length)
            }
        }
        return try allocateSlowly(length)
    }

    /// Reserves a sample of `length` payload bytes for `output` only if publishing it will not
    /// wait: a slot of its size class is free now, and every live edge of `output` under
    /// backpressure has room. nil otherwise (nothing reserved), for a caller that must not wait
    /// (a thread that reads the network for others) and hands the sample to one that may.
    public func reserveWithoutWaiting(_ length: Int, output: Int) -> ReservedSample? {
        for position in edgeStarts[output]..<edgeStarts[output &+ 1] where !edges[position].swept {
            guard edges[position].ring.hasRoom(tail: edges[position].tail, knownHead: &edges[position].knownHead) else { return nil }
        }
        guard length >= 0, length <= configuration.maxSampleSize, let capacity = smallestClass(fitting: length) else { return nil }
        for position in 0..<slots.count where slots[position].view.layout.payloadCapacity == capacity {
            if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                return ReservedSample(pool: position, slot: slot, length: length)
            }
        }
        return nil
    }

    @inline(never)
    func allocateSlowly(_ length: Int) throws(TransportError) -> ReservedSample {
        guard length >= 0, length <= configuration.maxSampleSize else {
            throw .sampleTooLarge(length: length, maximum: configuration.maxSampleSize)
        }
        guard let capacity = smallestClass(fitting: length) else {
            var layout = configuration.pool
            layout.payloadCapacity = min(Self.sizeClass(of: length), max(configuration.maxSampleSize, length))
            layout.slotCount = max(2, min(configuration.largeSlotCount, configuration.largePoolBudget / max(layout.payloadCapacity, 1)))
            try addPool(layout)
            return try reserve(in: [pools.count - 1], length: length)
        }
        for position in 0..<slots.count where slots[position].view.layout.payloadCapacity == capacity {
            if let slot = slots[position].view.tryReserve(from: &slots[position].cursor) {
                if capacity > configuration.pool.payloadCapacity {
                    rememberLargeClass(capacity, at: position)
                } else {
                    lastSmallPosition = position
                }
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
            if capacity == configuration.pool.payloadCapacity { lastSmallPosition = pools.count - 1 }
            return try reserve(in: [pools.count - 1], length: length)
        }
    }

    /// The payload capacity of the smallest class that fits `length` bytes, if any. Samples take
    /// from it only: larger classes are not borrowed, so big pools stay free for big samples.
    func smallestClass(fitting length: Int) -> Int? {
        slots.lazy.map(\.view.layout.payloadCapacity).filter { $0 >= length }.min()
    }

    /// The payload capacity of a new class for a sample of `length` bytes: a power of two up to
    /// 64 KiB, then the next eighth of a power of two (a 40 MiB sample gets 40 MiB slots, not 64),
    /// so no more than an eighth is wasted while samples of about one size still share a class.
    static func sizeClass(of length: Int) -> Int {
        let power = nextPowerOfTwo(length)
        guard power > 64 << 10 else { return power }
        let step = power / 8
        return (length + step - 1) / step * step
    }

    /// Notes for `allocate` the class of `capacity` bytes (larger than the first pool's), whose
    /// pool at `position` had a free slot. Classes added later are larger still (a new class is
    /// made only for a sample larger than every pool), so the range stays that class's.
    func rememberLargeClass(_ capacity: Int, at position: Int) {
        let smaller = slots.lazy.map(\.view.layout.payloadCapacity).filter { $0 < capacity }.max() ?? 0
        lastLargeClass = (UInt(smaller), UInt(min(capacity, configuration.maxSampleSize)), position)
    }

    /// Waits for a free slot in any of the pools at `positions`, up to `timeoutNanoseconds`
    /// (the allocation timeout when nil).
    func reserve(in positions: [Int], length: Int, timeoutNanoseconds: UInt64? = nil) throws(TransportError) -> ReservedSample {
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

    /// The most bytes a reserved sample can hold: its slot's payload capacity.
    public func capacity(of sample: borrowing ReservedSample) -> Int {
        min(slots[sample.pool].view.layout.payloadCapacity, configuration.maxSampleSize)
    }

    /// Makes the sample `length` bytes long, in place; false when its slot cannot hold that many.
    public func resize(_ sample: inout ReservedSample, to length: Int) -> Bool {
        guard length >= 0, length <= capacity(of: sample) else { return false }
        sample.length = length
        return true
    }

    /// Returns a reserved sample to its pool without sending it.
    public func discard(_ sample: consuming ReservedSample) {
        slots[sample.pool].view.release(sample.slot, bit: 0)
    }
}
