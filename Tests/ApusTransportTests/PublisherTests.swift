import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import ApusTransport

@Suite struct PublisherTests {
    func publisher(maxSampleSize: Int = 1024, allocationTimeout: UInt64 = 50_000_000, growthBudget: Int = 0) throws -> (Publisher, Inbox) {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 4, policy: .backpressure)]), name: "unit")
        let configuration = Publisher.Configuration(
            name: "unit", pool: PoolLayout(slotCount: 2, payloadCapacity: 64), maxSampleSize: maxSampleSize,
            allocationTimeoutNanoseconds: allocationTimeout, backpressureTimeoutNanoseconds: 50_000_000, growthBudget: growthBudget)
        let publisher = try Publisher(configuration: configuration, outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 1)]]) { _ in }
        return (publisher, inbox)
    }

    @Test func sampleOverTheMaximumIsAnError() throws {
        let (publisher, _) = try publisher()
        #expect(throws: TransportError.sampleTooLarge(length: 1025, maximum: 1024)) { _ = try publisher.allocate(1025) }
        #expect(publisher.pools.count == 1)
    }

    @Test func fullPoolWaitsThenFailsInsteadOfDropping() throws {
        let (publisher, _) = try publisher()
        let first = try publisher.allocate(8)
        let second = try publisher.allocate(8)
        #expect(throws: TransportError.self) { _ = try publisher.allocate(8) }
        let firstSlot = first.slot
        publisher.discard(first)
        let third = try publisher.allocate(8)
        #expect(third.slot == firstSlot)
        publisher.discard(second)
        publisher.discard(third)
        #expect(publisher.usedSlots == 0)
    }

    /// A reserved sample a test holds on to: a sample cannot be copied, so an array cannot hold it.
    final class Held {
        let pool: Int
        let slot: Int
        private var sample: ReservedSample?

        init(_ sample: consuming ReservedSample) {
            pool = sample.pool
            slot = sample.slot
            self.sample = .some(sample)
        }

        func discard(to publisher: Publisher) {
            if let sample = sample.take() { publisher.discard(sample) }
        }
    }

    @Test func heldSamplesGrowTheSizeClassWithinItsBudget() throws {
        let poolBytes = PoolLayout(slotCount: 2, payloadCapacity: 64).dataSize
        let (publisher, _) = try publisher(growthBudget: 3 * poolBytes)
        var held: [Held] = []
        for _ in 0..<6 { held.append(Held(try publisher.allocate(8))) }
        #expect(publisher.pools.count == 3)
        #expect(Set(held.map { "\($0.pool)/\($0.slot)" }).count == 6)
        // Past the budget: waits, then fails, and no fourth pool appears.
        #expect(throws: TransportError.self) { _ = try publisher.allocate(8) }
        #expect(publisher.pools.count == 3)
        held[1].discard(to: publisher)
        let reused = try publisher.allocate(8)
        #expect(reused.pool == held[1].pool && reused.slot == held[1].slot && reused.length == 8)
        publisher.discard(reused)
        for sample in held { sample.discard(to: publisher) }
        #expect(publisher.usedSlots == 0)
    }

    @Test func everySampleTakesTheSmallestClassThatFitsIt() throws {
        // `allocate` remembers the larger class it used last; a sample of another size must still
        // get the smallest class that fits, and a full class must not borrow a larger one.
        let (publisher, _) = try publisher(maxSampleSize: 4096)
        var held: [Held] = []
        func allocate(_ length: Int) throws -> Int {
            held.append(Held(try publisher.allocate(length)))
            return publisher.pools[held.last!.pool].layout.payloadCapacity
        }
        #expect(try [100, 100, 1000, 1000, 100, 129, 65, 8].map(allocate) == [128, 128, 1024, 1024, 128, 1024, 128, 64])
        #expect(publisher.pools.map(\.layout.payloadCapacity) == [64, 128, 1024])
        // The four slots of the 128-byte class are held: waits, fails, and leaves the others alone.
        #expect(throws: TransportError.self) { _ = try publisher.allocate(128) }
        #expect(publisher.pools.count == 3)
        held.removeFirst().discard(to: publisher)
        #expect(try allocate(128) == 128)
        for sample in held { sample.discard(to: publisher) }
        #expect(publisher.usedSlots == 0)
    }

    @Test func largeClassesAreAPowerOfTwoThenEighthsOfOne() {
        // No more than an eighth wasted above 64 KiB: a 40 MiB sample gets 40 MiB slots, not 64.
        let kib = 1 << 10
        let mib = 1 << 20
        let lengths: [Int] = [1, 100, 4097, 64 * kib, 64 * kib + 1, 100_000, 6 * mib, 6 * mib + 1, 40 * mib, 40 * mib - 1]
        let expected: [Int] = [1, 128, 8192, 64 * kib, 80 * kib, 112 * kib, 6 * mib, 7 * mib, 40 * mib, 40 * mib]
        #expect(lengths.map(Publisher.sizeClass(of:)) == expected)
    }

    @Test func fullBackpressureRingTimesOutWithAnError() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .backpressure)]), name: "unit")
        let configuration = Publisher.Configuration(
            name: "unit", pool: PoolLayout(slotCount: 4, payloadCapacity: 64), backpressureTimeoutNanoseconds: 20_000_000)
        let publisher = try Publisher(configuration: configuration, outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 1)]]) { _ in }
        let bytes: [UInt8] = [1, 2, 3]
        try bytes.withUnsafeBytes { _ = try publisher.send($0, output: 0, metadata: SampleMetadata()) }
        #expect(throws: TransportError.backpressureTimeout(input: 0)) {
            try bytes.withUnsafeBytes { _ = try publisher.send($0, output: 0, metadata: SampleMetadata()) }
        }
        #expect(inbox.rings[0].queued == 1)
        #expect(publisher.usedSlots == 1)
    }

    @Test func oversizedMetadataIsAnErrorAndFreesTheSlot() throws {
        let (publisher, _) = try publisher()
        let metadata = SampleMetadata(parameters: [("blob", .string(String(repeating: "x", count: 2000)))])
        #expect(throws: TransportError.metadataTooLarge(length: 2019, capacity: 1024)) {
            try publisher.publish(try publisher.allocate(4), output: 0, metadata: metadata)
        }
        #expect(publisher.usedSlots == 0)
    }

    @Test func aConsumerThatDiedIsSweptAndLeftOutOfLaterSamplesUntilItsEdgeIsReplaced() throws {
        let layout = InboxLayout(rings: [InputRingLayout(capacity: 4, policy: .backpressure)])
        let (live, dead) = (try Inbox(layout: layout, name: "unit-live"), try Inbox(layout: layout, name: "unit-dead"))
        let configuration = Publisher.Configuration(name: "unit", pool: PoolLayout(slotCount: 4, payloadCapacity: 64))
        let publisher = try Publisher(
            configuration: configuration, outputs: [[EdgeTarget(inbox: live, ring: 0, bit: 1), EdgeTarget(inbox: dead, ring: 0, bit: 2)]]
        ) { _ in }
        let bytes: [UInt8] = [7]
        func send() throws -> PublishReport {
            try bytes.withUnsafeBytes { try publisher.send($0, output: 0, metadata: SampleMetadata()) }
        }
        #expect(try send().delivered == 2)
        dead.rings[0].setFlag(InputRing.consumerGone)
        _ = try send()
        #expect(try send().delivered == 1)
        // What was queued to the dead consumer, before and after it died, is released; every
        // sample is held by the live edge alone.
        #expect(dead.rings[0].queued == 0)
        #expect(live.rings[0].queued == 3)
        let view = publisher.pools[0].view
        #expect((0..<3).map { view.holderWord($0, 0).pointee.load(ordering: .relaxed) } == [0b10, 0b10, 0b10])
        // A restarted consumer's fresh inbox gets the edge's bit back, and the samples.
        let fresh = try Inbox(layout: layout, name: "unit-fresh")
        try publisher.replaceEdge(bit: 2, with: EdgeTarget(inbox: fresh, ring: 0, bit: 2))
        #expect(try send().delivered == 2)
        #expect(fresh.rings[0].queued == 1)
        #expect(view.holderWord(3, 0).pointee.load(ordering: .relaxed) == 0b110)
    }

    @Test func anEdgeAddedAtRunTimeGetsWhatIsPublishedFromThenAndGivesItAllBackWhenRemoved() throws {
        let layout = InboxLayout(rings: [InputRingLayout(capacity: 4, policy: .dropOldest)])
        let (planned, joiner) = (try Inbox(layout: layout, name: "unit-planned"), try Inbox(layout: layout, name: "unit-joiner"))
        let configuration = Publisher.Configuration(name: "unit", pool: PoolLayout(slotCount: 16, payloadCapacity: 64))
        let publisher = try Publisher(configuration: configuration, outputs: [[EdgeTarget(inbox: planned, ring: 0, bit: 1)], []]) { _ in }
        let bytes: [UInt8] = [7]
        func send(_ output: Int = 0) throws -> PublishReport {
            try bytes.withUnsafeBytes { try publisher.send($0, output: output, metadata: SampleMetadata()) }
        }
        #expect(try send().delivered == 1)
        try publisher.addEdge(output: 0, target: EdgeTarget(inbox: joiner, ring: 0, bit: 2))
        // A bit in use, one past the holder words, and an output that is not there are refused.
        #expect(throws: TransportError.self) { try publisher.addEdge(output: 0, target: EdgeTarget(inbox: joiner, ring: 0, bit: 1)) }
        #expect(throws: TransportError.self) { try publisher.addEdge(output: 0, target: EdgeTarget(inbox: joiner, ring: 0, bit: 64)) }
        #expect(throws: TransportError.self) { try publisher.addEdge(output: 2, target: EdgeTarget(inbox: joiner, ring: 0, bit: 3)) }
        for _ in 0..<6 { #expect(try send().delivered == 2) }
        #expect(try send(1).delivered == 0)  // the other output still feeds nobody
        #expect(joiner.rings[0].queued == 4 && joiner.rings[0].dropped == 2)  // the joiner's queue, its drops
        #expect(planned.rings[0].dropped == 3)  // the planned consumer takes nothing here either
        // Removed: its queue and its bit go back, and the planned edge carries on alone.
        #expect(publisher.removeEdge(bit: 2))
        #expect(!publisher.removeEdge(bit: 2))
        #expect(joiner.rings[0].queued == 0)
        let view = publisher.pools[0].view
        #expect((0..<view.layout.slotCount).allSatisfy { view.holderWord($0, 0).pointee.load(ordering: .relaxed) & 0b100 == 0 })
        #expect(try send().delivered == 1)
        // The bit is free for the next joiner (which has an inbox of its own).
        let next = try Inbox(layout: layout, name: "unit-next")
        try publisher.addEdge(output: 1, target: EdgeTarget(inbox: next, ring: 0, bit: 2))
        #expect(try send(1).delivered == 1)
        #expect(next.rings[0].queued == 1)
        #expect(publisher.usedSlots == 5)  // the planned ring's 4 and the next joiner's 1
    }

    @Test func aFullRingPastTheFirstEdgeIsMadeRoomInOnlyAfterTheEdgesBeforeItAreRung() throws {
        // Publishing queues on every edge with room first and rings their consumers together; a
        // full ring sends the rest the slow way, which must ring the edges already queued to
        // before it evicts or waits.
        let roomy = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 4, policy: .backpressure)]), name: "unit-roomy")
        let dropping = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit-dropping")
        let blocking = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .backpressure)]), name: "unit-blocking")
        let configuration = Publisher.Configuration(
            name: "unit", pool: PoolLayout(slotCount: 8, payloadCapacity: 64), backpressureTimeoutNanoseconds: 20_000_000)
        let publisher = try Publisher(
            configuration: configuration,
            outputs: [
                [
                    EdgeTarget(inbox: roomy, ring: 0, bit: 1), EdgeTarget(inbox: dropping, ring: 0, bit: 2),
                    EdgeTarget(inbox: blocking, ring: 0, bit: 3),
                ]
            ]
        ) { _ in }
        let bytes: [UInt8] = [7]
        func send() throws -> PublishReport {
            try bytes.withUnsafeBytes { try publisher.send($0, output: 0, metadata: SampleMetadata()) }
        }
        #expect(try send() == PublishReport(delivered: 3, evicted: 0))

        // The first consumer has gone to sleep: its doorbell (at 64 in the inbox: `sequence`, then
        // `sleeping`) shows it, as `Doorbell.wait` leaves it before the futex wait.
        let doorbell = roomy.segment.base + 64
        doorbell.storeBytes(of: 1, toByteOffset: 4, as: UInt32.self)
        let rung = doorbell.load(as: UInt32.self)
        #expect(throws: TransportError.backpressureTimeout(input: 0)) { _ = try send() }
        #expect(doorbell.load(as: UInt32.self) == rung &+ 1)

        #expect(roomy.rings[0].queued == 2)
        #expect((dropping.rings[0].queued, dropping.rings[0].dropped) == (1, 1))
        #expect(blocking.rings[0].queued == 1)
        // The first sample is held where it was not evicted, the second where it was queued.
        let view = publisher.pools[0].view
        #expect(
            [view.holderWord(0, 0).pointee.load(ordering: .relaxed), view.holderWord(1, 0).pointee.load(ordering: .relaxed)]
                == [0b1010, 0b0110])
        #expect(publisher.usedSlots == 2)
    }

    @Test func aDeferredEdgeIsRungAfterThePublishOnlyOnceEnoughWaitsInItsRing() throws {
        // The bridge-out of an output read on other machines only keeps what was sent: the node
        // rings it from `ringDeferred`, once half its ring waits, not for every message.
        let (publisher, inbox) = try publisher()
        publisher.deferRinging(output: 0, ring: inbox.rings[0], untilQueued: 2)
        // The consumer sleeps (see the test above): each ring adds one to `sequence`.
        let doorbell = inbox.segment.base + 64
        doorbell.storeBytes(of: 1, toByteOffset: 4, as: UInt32.self)
        let before = doorbell.load(as: UInt32.self)
        let bytes: [UInt8] = [7]
        func send() throws {
            _ = try bytes.withUnsafeBytes { try publisher.send($0, output: 0, metadata: SampleMetadata()) }
        }
        try send()
        #expect(doorbell.load(as: UInt32.self) == before, "a deferred edge is not rung by the publish")
        publisher.ringDeferred(output: 0)
        #expect(doorbell.load(as: UInt32.self) == before, "one sample of the two it waits for")
        try send()
        #expect(doorbell.load(as: UInt32.self) == before)
        publisher.ringDeferred(output: 0)
        #expect(doorbell.load(as: UInt32.self) == before &+ 1)
        #expect(inbox.rings[0].queued == 2)
    }

    @Test func edgeBitsMustFitAndBeUnique() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        let configuration = Publisher.Configuration(name: "unit", pool: PoolLayout(slotCount: 1, payloadCapacity: 8))
        #expect(throws: TransportError.self) {
            try Publisher(configuration: configuration, outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 64)]]) { _ in }
        }
        #expect(throws: TransportError.self) {
            try Publisher(configuration: configuration, outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 0)]]) { _ in }
        }
    }
}
