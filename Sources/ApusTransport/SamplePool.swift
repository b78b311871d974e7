import CApusSys
import Synchronization

/// The shape of a pool, agreed out of band by its producer and consumers. Sizes used to address
/// shared memory always come from here, never from the shared memory itself.
public struct PoolLayout: Sendable, Equatable {
    public static let maxSlotCount = 1 << 20
    public static let maxHolderWords = 64

    public var slotCount: Int
    /// Payload bytes per slot.
    public var payloadCapacity: Int
    /// Bytes per slot for shape and parameters (a multiple of 64).
    public var metadataCapacity: Int
    /// 64-bit words of holder bits per slot: bit 0 is the producer, bit `k` the `k`-th edge.
    public var holderWords: Int

    public init(slotCount: Int, payloadCapacity: Int, metadataCapacity: Int = 1024, holderWords: Int = 1) {
        self.slotCount = slotCount
        self.payloadCapacity = payloadCapacity
        self.metadataCapacity = roundUp(metadataCapacity, to: 64)
        self.holderWords = holderWords
    }

    /// Holder words for a producer feeding `edges` inputs.
    public static func holderWords(forEdges edges: Int) -> Int { edges / 64 + 1 }

    /// Metadata area and payload; a multiple of 64 so every payload is 64-byte aligned. (The rest
    /// of a sample's header travels in its ring entries.)
    public var slotSize: Int { roundUp(metadataCapacity + payloadCapacity, to: 64) }
    public var payloadOffset: Int { metadataCapacity }
    public var dataSize: Int { slotCount * slotSize }
    /// The holder words of each slot start a cache line of their own: a consumer releasing one
    /// sample does not take away the line of the slot its producer reserves next.
    var holderStride: Int { roundUp(holderWords * 8, to: 64) }
    public var controlSize: Int { 64 + slotCount * holderStride }

    public func validate() throws(TransportError) {
        guard (1...Self.maxSlotCount).contains(slotCount),
            (0...(1 << 40)).contains(payloadCapacity),
            (0...(1 << 20)).contains(metadataCapacity), metadataCapacity % 64 == 0,
            (1...Self.maxHolderWords).contains(holderWords)
        else { throw .corrupted("pool layout out of range: \(self)") }
    }

    /// Four integers, for sending a layout with the segments' descriptors.
    public var encoded: [UInt64] {
        [UInt64(slotCount), UInt64(payloadCapacity), UInt64(metadataCapacity), UInt64(holderWords)]
    }

    public init(encoded values: [UInt64]) throws(TransportError) {
        guard values.count == 4, values.allSatisfy({ $0 < 1 << 48 }) else {
            throw .malformedMessage("pool layout needs 4 integers, got \(values)")
        }
        self.init(
            slotCount: Int(values[0]), payloadCapacity: Int(values[1]),
            metadataCapacity: Int(values[2]), holderWords: Int(values[3]))
        guard metadataCapacity == Int(values[2]) else { throw .malformedMessage("metadata capacity \(values[2]) not a multiple of 64") }
        try validate()
    }
}

/// Addressing and holder-bit operations on one pool, shared by its producer and its consumers.
///
/// A sample's slot is free when all its holder bits are clear. Only the producer sets bits (when it
/// reserves a slot and when it queues the sample to an edge); anyone clears them. Clearing is an
/// atomic AND, so releasing twice is harmless and a dead consumer's holds are reclaimed by clearing
/// its edge bit everywhere.
///
/// Control segment: `freeSignal` u32 at 0 (futex), `producerWaiting` u32 at 4, holder words from 64.
/// Slot: the metadata area, then the payload from `layout.payloadOffset`. The encoded shape and
/// parameters end where the payload starts, so a receiver finds them from the payload's address
/// and their length alone. Length, timestamp and element type travel in the ring entries (`RingEntry`).
public struct PoolView: @unchecked Sendable {
    public let layout: PoolLayout
    let data: UnsafeMutableRawPointer
    let control: UnsafeMutableRawPointer
    /// The layout's strides, worked out once: the hand-off path addresses slots with them, and
    /// with wrapping arithmetic, since a validated layout's offsets fit its segments.
    let slotSize: Int
    let holderStride: Int

    /// `layout` must be valid (`PoolLayout.validate`) and the segments mapped at its sizes.
    init(layout: PoolLayout, data: UnsafeMutableRawPointer, control: UnsafeMutableRawPointer) {
        self.layout = layout
        self.data = data
        self.control = control
        self.slotSize = layout.slotSize
        self.holderStride = layout.holderStride
    }

    /// The futex a waiting producer sleeps on, and its flag, in a pool's control segment.
    static func freeSignal(_ control: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt32>> { atomic32(control, 0) }
    static func producerWaiting(_ control: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt32>> { atomic32(control, 4) }

    /// `slot` < `layout.slotCount` and `word` < `layout.holderWords` (checked in debug builds).
    @inline(__always)
    func holderWord(_ slot: Int, _ word: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        assert(slot >= 0 && slot < layout.slotCount && word >= 0 && word < layout.holderWords, "holder word out of range")
        return atomic64(control, 64 &+ slot &* holderStride &+ word &* 8)
    }

    /// `slot` < `layout.slotCount` (checked in debug builds).
    @inline(__always)
    func slotBase(_ slot: Int) -> UnsafeMutableRawPointer {
        assert(slot >= 0 && slot < layout.slotCount, "slot \(slot) out of range")
        return data + slot &* slotSize
    }

    /// Reserves a free slot (holder bit 0 set), looking from `cursor` on; nil when every slot is held.
    @inline(__always)
    func tryReserve(from cursor: inout Int) -> Int? {
        let count = layout.slotCount
        var slot = cursor
        for _ in 0..<count {
            let next = slot &+ 1 == count ? 0 : slot &+ 1
            if isFree(slot) {
                holderWord(slot, 0).pointee.store(1, ordering: .relaxed)
                cursor = next
                return slot
            }
            slot = next
        }
        return nil
    }

    /// Reserves a slot like `tryReserve`, waiting up to `timeoutNanoseconds` for a consumer to
    /// release one.
    /// How long a producer facing a full pool looks for a free slot before it sleeps.
    static var freeSpinNanoseconds: UInt64 { 50_000 }

    func reserve(from cursor: inout Int, timeoutNanoseconds: UInt64, payloadLength: Int) throws(TransportError) -> Int {
        if let slot = tryReserve(from: &cursor) { return slot }
        let start = monotonicNanoseconds()
        let deadline = start + timeoutNanoseconds
        // A consumer busy on another CPU releases a sample within microseconds, sooner than a
        // sleep and a wake-up take on a VM (and a wake-up per release would be a system call per
        // message on both sides): look for a little while first.
        var spunUntil = start
        var checks = 0
        while spunUntil < min(deadline, start &+ Self.freeSpinNanoseconds) {
            if let slot = tryReserve(from: &cursor) { return slot }
            apussys_spin_pace()
            checks &+= 1
            if checks & 15 == 0 { spunUntil = monotonicNanoseconds() }
        }
        let (freeSignal, producerWaiting) = (Self.freeSignal(control), Self.producerWaiting(control))
        defer { producerWaiting.pointee.store(0, ordering: .relaxed) }
        while true {
            let seen = freeSignal.pointee.load(ordering: .sequentiallyConsistent)
            producerWaiting.pointee.store(1, ordering: .sequentiallyConsistent)
            if let slot = tryReserve(from: &cursor) { return slot }
            let now = monotonicNanoseconds()
            guard now < deadline else {
                throw .poolExhausted(payloadLength: payloadLength, waitedNanoseconds: Int64(now - start))
            }
            _ = apussys_futex_wait(futexWord(freeSignal), seen, Int64(deadline - now))
        }
    }

    /// Starts bringing the holder words of `slot` into this CPU's cache for writing: a producer
    /// does it for the slot it reserves next, a consumer for the slot it will release.
    @inline(__always)
    func prefetchHolders(_ slot: Int) {
        apussys_prefetch_for_write(holderWord(slot, 0))
    }

    @inline(__always)
    func isFree(_ slot: Int) -> Bool {
        for word in 0..<layout.holderWords where holderWord(slot, word).pointee.load(ordering: .acquiring) != 0 {
            return false
        }
        return true
    }

    /// Clears `bit` on `slot`; wakes the producer if it waits and the slot became free. Clearing is
    /// an atomic AND, so releasing twice is harmless.
    @inline(__always)
    func release(_ slot: Int, bit: Int) {
        let mask = UInt64(1) << UInt64(truncatingIfNeeded: bit & 63)
        let remaining = holderWord(slot, bit >> 6).pointee.bitwiseAnd(~mask, ordering: .sequentiallyConsistent).newValue
        guard remaining == 0, Self.producerWaiting(control).pointee.load(ordering: .sequentiallyConsistent) != 0 else { return }
        let freeSignal = Self.freeSignal(control)
        freeSignal.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        _ = apussys_futex_wake(futexWord(freeSignal), Int32.max)
    }

    /// Clears `bit` on every slot: everything one edge held or had queued is released.
    func releaseEverywhere(bit: Int) {
        for slot in 0..<layout.slotCount { release(slot, bit: bit) }
    }

    /// Slots held by anyone (for metrics and tests).
    public var usedSlots: Int {
        (0..<layout.slotCount).reduce(0) { $0 + (isFree($1) ? 0 : 1) }
    }

    public var freeSlots: Int { layout.slotCount - usedSlots }

    /// Where the payload of the sample a ring entry names starts, once the entry is checked against
    /// the layout: a faulty producer cannot make us read outside the slot. The encoded metadata lies
    /// just before it, within the metadata area, and is decoded when asked for (`ReceivedSample.metadata()`).
    @inline(__always)
    func payload(in slot: Int, _ entry: RingEntry) throws(TransportError) -> UnsafeRawPointer {
        // One branch for the three checks: this is on every hand-off. (ElementType's raw values
        // run from 0 without gaps, as declared.)
        let fits =
            (entry.length <= UInt64(layout.payloadCapacity)) && (Int(entry.metadataLength) <= layout.metadataCapacity)
            && (Int(entry.elementType) < ElementType.allCases.count)
        guard fits else { throw Self.unfit(entry, layout) }
        return UnsafeRawPointer(slotBase(slot) + layout.payloadOffset)
    }

    @inline(never)
    private static func unfit(_ entry: RingEntry, _ layout: PoolLayout) -> TransportError {
        if entry.length > UInt64(layout.payloadCapacity) {
            return .corrupted("sample of \(entry.length) bytes in a slot of \(layout.payloadCapacity)")
        }
        if Int(entry.metadataLength) > layout.metadataCapacity {
            return .corrupted("metadata of \(entry.metadataLength) bytes in an area of \(layout.metadataCapacity)")
        }
        return .corrupted("unknown element type \(entry.elementType)")
    }

    /// Writes the shape and parameters of `slot` (the payload is already in place) and returns
    /// their length.
    func seal(_ slot: Int, metadata: SampleMetadata) throws(TransportError) -> Int {
        if MetadataCodec.isEmpty(metadata) { return MetadataCodec.emptyLength }
        let encoded = MetadataCodec.encode(metadata)
        guard encoded.count <= layout.metadataCapacity else {
            throw .metadataTooLarge(length: encoded.count, capacity: layout.metadataCapacity)
        }
        let start = slotBase(slot) + layout.payloadOffset - encoded.count
        encoded.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return encoded.count
    }
}

/// A pool owned by a producer: the segments behind a `PoolView`, through which its publisher
/// reserves and writes samples. The data segment is sealed, so consumers can map it only read-only.
public final class SamplePool: @unchecked Sendable {
    public let index: Int
    public let layout: PoolLayout
    public let data: SharedSegment
    public let control: SharedSegment
    public let view: PoolView

    public init(index: Int, layout: PoolLayout, name: String) throws(TransportError) {
        try layout.validate()
        self.index = index
        self.layout = layout
        self.data = try SharedSegment(name: "apus-pool-\(name)-\(index)", size: layout.dataSize)
        try data.sealAgainstWriters()
        self.control = try SharedSegment(name: "apus-pool-control-\(name)-\(index)", size: layout.controlSize)
        self.view = PoolView(layout: layout, data: data.base, control: control.base)
    }
}

/// A producer's pool as a consumer sees it: data read-only, control read-write (to release).
public final class MappedPool: @unchecked Sendable {
    public let index: Int
    public let data: SharedSegment
    public let control: SharedSegment
    public let view: PoolView

    /// Maps the two segments of a pool received from another process (the descriptors are adopted).
    /// The payloads are not faulted in ahead: a consumer maps the pages it reads as it reads them
    /// (the producer made them, so that is a minor fault per 16 pages, once), and a page it never
    /// reads (most of a large pool, for a consumer that looks at part of each message, or none,
    /// as the daemon) costs it no memory.
    public init(index: Int, layout: PoolLayout, dataFD: Int32, controlFD: Int32) throws(TransportError) {
        try layout.validate()
        self.index = index
        self.data = try SharedSegment(adopting: dataFD, size: layout.dataSize, writable: false, populate: false)
        self.control = try SharedSegment(adopting: controlFD, size: layout.controlSize, writable: true)
        self.view = PoolView(layout: layout, data: data.base, control: control.base)
    }
}
