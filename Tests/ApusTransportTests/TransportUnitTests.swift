import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@testable import ApusTransport

@Suite struct MetadataCodecTests {
    @Test func everyParameterTypeRoundTrips() throws {
        let metadata = SampleMetadata(
            elementType: .float32, shape: [480, 640, 3], timestamp: 42,
            parameters: [
                ("flag", .bool(true)), ("frame", .int(-7)), ("gain", .float(1.5)), ("name", .string("front ✓")),
                ("flags", .bools([true, false])), ("ids", .ints([1, Int64.min])), ("gains", .floats([0.25, .infinity])),
                ("labels", .strings(["a", ""])),
            ])
        let bytes = MetadataCodec.encode(metadata)
        let decoded = try bytes.withUnsafeBytes { try MetadataCodec.decode($0, elementType: .float32, timestamp: 42) }
        #expect(decoded == metadata)
        #expect(decoded["name"] == .string("front ✓"))
    }

    @Test func truncatedMetadataIsCorruptionNotACrash() throws {
        let bytes = MetadataCodec.encode(SampleMetadata(shape: [2, 2], parameters: [("text", .string("hello"))]))
        // An empty area is the encoding of "no shape, no parameters"; every other cut is refused.
        #expect(
            try bytes.prefix(0).withUnsafeBytes { try MetadataCodec.decode($0, elementType: .int8, timestamp: 7) }
                == SampleMetadata(elementType: .int8, timestamp: 7))
        for length in 1..<bytes.count {
            #expect(throws: TransportError.self) {
                try bytes.prefix(length).withUnsafeBytes { try MetadataCodec.decode($0, elementType: .uint8, timestamp: 0) }
            }
        }
    }

    @Test func hugeCountsAreRefused() {
        var bytes: [UInt8] = [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F]
        #expect(throws: TransportError.self) {
            try bytes.withUnsafeBytes { try MetadataCodec.decode($0, elementType: .uint8, timestamp: 0) }
        }
        bytes = [0xFF, 0, 0, 0]
        #expect(throws: TransportError.corrupted("shape of rank 255")) {
            try bytes.withUnsafeBytes { try MetadataCodec.decode($0, elementType: .uint8, timestamp: 0) }
        }
    }
}

@Suite struct LayoutTests {
    @Test func payloadsAre64ByteAligned() {
        let layout = PoolLayout(slotCount: 3, payloadCapacity: 100, metadataCapacity: 10)
        #expect(layout.metadataCapacity == 64)
        #expect(layout.payloadOffset % 64 == 0)
        #expect(layout.slotSize % 64 == 0)
    }

    @Test func layoutsRoundTripAndRejectNonsense() throws {
        let pool = PoolLayout(slotCount: 16, payloadCapacity: 4096, metadataCapacity: 1024, holderWords: 2)
        #expect(try PoolLayout(encoded: pool.encoded) == pool)
        #expect(throws: TransportError.self) { try PoolLayout(encoded: [0, 64, 64, 1]) }
        #expect(throws: TransportError.self) { try PoolLayout(encoded: [1, 64, 65, 1]) }
        #expect(throws: TransportError.self) { try PoolLayout(encoded: [1, 64]) }
        let inbox = InboxLayout(rings: [
            InputRingLayout(capacity: 10, policy: .dropOldest), InputRingLayout(capacity: 1, policy: .backpressure),
        ])
        #expect(try InboxLayout(encoded: inbox.encoded) == inbox)
        #expect(throws: TransportError.self) { try InboxLayout(encoded: [0, 0]) }
        #expect(throws: TransportError.self) { try InboxLayout(encoded: [10, 7]) }
    }
}

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

@Suite struct ControlChannelTests {
    @Test func messagesCarryDescriptors() throws {
        let (left, right) = try ControlChannel.pair()
        let segment = try SharedSegment(name: "unit", size: 4096)
        segment.base.storeBytes(of: 0xABCD, as: UInt32.self)
        try left.send([1, 2, 3], fds: [segment.fd])
        let (bytes, fds) = try right.receive()
        #expect(bytes == [1, 2, 3])
        #expect(fds.count == 1)
        let mapped = try SharedSegment(adopting: fds[0], size: 4096, writable: false)
        #expect(mapped.base.load(as: UInt32.self) == 0xABCD)
    }

    @Test func oversizedAnnouncedLengthIsRefused() throws {
        let (left, right) = try ControlChannel.pair()
        let header: [UInt8] = [0xFF, 0xFF, 0xFF, 0x7F]
        _ = header.withUnsafeBytes { write(left.fd, $0.baseAddress, 4) }
        #expect(throws: TransportError.malformedMessage("announced length 2147483647 exceeds 1048576")) { try right.receive() }
    }

    @Test func truncatedFrameReportsDisconnection() throws {
        let (left, right) = try ControlChannel.pair()
        let partial: [UInt8] = [10, 0, 0, 0, 1, 2]
        _ = partial.withUnsafeBytes { write(left.fd, $0.baseAddress, 6) }
        shutdown(left.fd, Int32(SHUT_WR))
        #expect(throws: TransportError.disconnected) { try right.receive() }
    }

    /// A node sends on its channel from a sending thread (pool announcements) and from any other
    /// (closing an output) at once: frames must arrive whole, never interleaved.
    @Test func framesSentFromSeveralThreadsAtOnceArriveWhole() throws {
        let (left, right) = try ControlChannel.pair()
        let writers = 4
        let perWriter = 5000
        let received = Mutex<[[UInt8]]>([])
        let readerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            defer {
                // A reader that lost the framing stops early: unblock the writers.
                shutdown(right.fd, Int32(SHUT_RDWR))
                readerDone.signal()
            }
            for _ in 0..<(writers * perWriter) {
                guard let (bytes, _) = try? right.receive() else { return }
                received.withLock { $0.append(bytes) }
            }
        }
        let writersDone = DispatchGroup()
        for writer in 0..<writers {
            writersDone.enter()
            Thread.detachNewThread {
                // Lengths differ per writer, so a frame that took another's bytes shows.
                let frame = [UInt8](repeating: UInt8(writer + 1), count: 100 + writer * 37)
                for _ in 0..<perWriter { try? left.send(frame) }
                writersDone.leave()
            }
        }
        writersDone.wait()
        // A reader that lost the framing may wait for bytes that never come: end its wait.
        if readerDone.wait(timeout: .now() + 10) == .timedOut {
            shutdown(left.fd, Int32(SHUT_RDWR))
            readerDone.wait()
        }
        let frames = received.withLock { $0 }
        #expect(frames.count == writers * perWriter)
        let mixed = frames.filter { frame in Set(frame).count != 1 || frame.count != 100 + (Int(frame[0]) - 1) * 37 }.count
        #expect(mixed == 0, "frames that mix the bytes of several senders")
    }

    @Test func randomBytesNeverCrashTheReceiver() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let (left, right) = try ControlChannel.pair()
            let garbage = (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = garbage.withUnsafeBytes { write(left.fd, $0.baseAddress, $0.count) }
            shutdown(left.fd, Int32(SHUT_WR))
            do {
                _ = try right.receive()
            } catch {
                #expect(error == .disconnected || error.description.hasPrefix("malformed"))
            }
        }
    }
}

@Suite struct DoorbellTests {
    @Test func waitWithoutRingTimesOut() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        let subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 1)]) { _, _ throws(TransportError) in
            throw .corrupted("no pools in this test")
        }
        let start = monotonicNanoseconds()
        #expect(try subscriber.receive(timeoutNanoseconds: 30_000_000) == nil)
        #expect(monotonicNanoseconds() - start >= 30_000_000)
    }

    @Test func closedInputIsReportedOnce() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        let subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 1)]) { _, _ throws(TransportError) in
            throw .corrupted("no pools in this test")
        }
        Reclamation.closeEdge(inbox, ring: 0)
        guard case .inputClosed(let input) = try subscriber.receive(timeoutNanoseconds: 0) else {
            Issue.record("expected inputClosed")
            return
        }
        #expect(input == 0)
        #expect(try subscriber.receive(timeoutNanoseconds: 1_000_000) == nil)
    }
}

@Suite struct AdaptiveSpinTests {
    @Test func idleTimeoutsDecayTheSpinToNothing() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest)]), name: "unit")
        var spin = AdaptiveSpin(budgetNanoseconds: AdaptiveSpin.maximumNanoseconds)
        // Each timeout is longer than any wait worth spinning for, so each halves the budget.
        for _ in 0..<10 {
            #expect(
                !inbox.doorbell.wait(
                    until: monotonicNanoseconds() + 2 * AdaptiveSpin.maximumNanoseconds, spin: &spin, spinningOn: { false }
                ) { false })
        }
        #expect(spin.budgetNanoseconds == 0)
    }

    @Test func shortWaitsGrowTheSpinToCoverThem() {
        var spin = AdaptiveSpin(budgetNanoseconds: 0)
        spin.record(waitNanoseconds: 20_000)
        #expect(spin.budgetNanoseconds == 40_000)
        spin.record(waitNanoseconds: 1_000)
        #expect(spin.budgetNanoseconds == 40_000)
        spin.record(waitNanoseconds: 1_000_000)
        #expect(spin.budgetNanoseconds == 20_000)
    }
}

@Suite struct StampClockTests {
    /// Takes stamps between two CLOCK_MONOTONIC readings for `seconds`, with idle spells of up to
    /// a few milliseconds in between; returns the furthest a stamp fell outside its two readings.
    func furthestOutside(_ clock: inout StampClock, seconds: Double) -> (nanoseconds: UInt64, backwards: Int) {
        var furthest: UInt64 = 0
        var backwards = 0
        var last: UInt64 = 0
        let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
        var round = 0
        while monotonicNanoseconds() < end {
            round += 1
            for _ in 0..<(round % 7 == 0 ? 50_000 : 1_000) {
                let before = monotonicNanoseconds()
                let stamp = clock.now()
                let after = monotonicNanoseconds()
                furthest = max(furthest, before > stamp ? before - stamp : stamp > after ? stamp - after : 0)
                if stamp < last { backwards += 1 }
                last = stamp
            }
            if round % 3 == 0 { usleep(UInt32(round % 5) * 1_000) }
        }
        return (furthest, backwards)
    }

    @Test func stampsKeepToClockMonotonicAndNeverGoBack() throws {
        // A small rate baseline, so that the rate is measured afresh several times in the run.
        var clock = StampClock(maximumBaseline: 1 << 24)
        let (furthest, backwards) = furthestOutside(&clock, seconds: 0.5)
        #expect(backwards == 0)
        // A few nanoseconds here. Preemption cannot push a stamp outside its two readings (it only
        // widens them), so the bound only has to allow for the anchor's reading; a rate off by
        // 0.1% misses it (800 ns).
        #expect(furthest < 500, "a stamp fell \(furthest) ns outside CLOCK_MONOTONIC")
        #expect(clock.readsCounter == StampClock.counterIsClock)
    }

    @Test func withoutTheCounterStampsAreClockReadings() {
        var clock = StampClock(usesCounter: false)
        let (furthest, backwards) = furthestOutside(&clock, seconds: 0.05)
        #expect(furthest == 0 && backwards == 0)
        #expect(!clock.readsCounter)
    }
}

@Suite struct NodeProtocolTests {
    let setup = NodeSetup(
        node: "camera", producer: 2,
        inputs: [
            .init(id: "tick", kind: .timer(periodNanoseconds: 33_000_000)),
            .init(id: "frames", kind: .stream(producer: 0, producerNode: "source", ring: 0, bit: 3)),
        ],
        inbox: InboxLayout(rings: [InputRingLayout(capacity: 10, policy: .backpressure)]),
        outputs: [.init(id: "out", edges: [.init(peer: 0, ring: 1, bit: 1)])],
        peerInboxes: [
            InboxLayout(rings: [InputRingLayout(capacity: 1, policy: .dropOldest), InputRingLayout(capacity: 4, policy: .dropOldest)])
        ],
        pool: PoolLayout(slotCount: 16, payloadCapacity: 4096), largeSlotCount: 4, maxSampleSize: 1 << 30,
        firstPoolIndex: 3, backpressureTimeoutNanoseconds: 5_000_000_000)

    @Test func everyMessageRoundTrips() throws {
        let messages: [NodeMessage] = [
            .hello(node: "camera", pid: 1234), .pool(producer: 2, index: 5, layout: PoolLayout(slotCount: 4, payloadCapacity: 1 << 20)),
            .ready, .closeOutput(1), .setup(setup), .start, .stop, .producerFailed(producer: 1, message: "node 'x' exited with status 1"),
            .replaceEdge(output: 0, bit: 2, ring: 1, layout: InboxLayout(rings: [InputRingLayout(capacity: 8, policy: .backpressure)])),
        ]
        for message in messages {
            #expect(try NodeMessage(decoding: message.encoded) == message)
        }
    }

    @Test func malformedMessagesAreErrorsNotCrashes() throws {
        let encoded = NodeMessage.setup(setup).encoded
        // Every truncation of a valid message is refused.
        for length in 0..<encoded.count {
            #expect(throws: TransportError.self) { try NodeMessage(decoding: Array(encoded.prefix(length))) }
        }
        #expect(throws: TransportError.malformedMessage("unknown message kind 77")) { try NodeMessage(decoding: [77]) }
        #expect(throws: TransportError.malformedMessage("1 bytes left after a message")) { try NodeMessage(decoding: [3, 0]) }
        // A setup whose edge names a ring the peer inbox does not have.
        var broken = setup
        broken.outputs[0].edges[0].ring = 9
        #expect(throws: TransportError.malformedMessage("output 'out' names ring 9 of peer inbox 0")) {
            try NodeMessage(decoding: NodeMessage.setup(broken).encoded)
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var bytes = encoded
            for _ in 0..<4 { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            _ = try? NodeMessage(decoding: bytes)
        }
    }

    @Test func controlPostedThroughTheDoorbellWakesTheConsumer() throws {
        let inbox = try Inbox(layout: InboxLayout(rings: []), name: "control")
        let subscriber = try Subscriber(inbox: inbox, inputs: []) { _, _ throws(TransportError) in throw .disconnected }
        #expect(try subscriber.receive(timeoutNanoseconds: 1_000_000) == nil)
        inbox.postControl()
        guard case .control? = try subscriber.receive(timeoutNanoseconds: 1_000_000_000) else {
            Issue.record("expected a control event")
            return
        }
        #expect(try subscriber.receive(timeoutNanoseconds: 1_000_000) == nil)
    }
}

/// A publisher and a subscriber in one process, over one real inbox and pool segments.
@Suite struct RingEntryTests {
    final class Pair {
        let inbox: Inbox
        var publishers: [Publisher] = []
        var subscriber: Subscriber!

        init(capacity: Int = 4) throws {
            inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: capacity, policy: .dropOldest)]), name: "unit")
            subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 1)]) { _, index throws(TransportError) in
                throw .corrupted("pool \(index) was never announced")
            }
        }

        /// A producer (a new incarnation when `firstPoolIndex` > 0) whose pools the subscriber maps.
        func addPublisher(firstPoolIndex: Int = 0) throws -> Publisher {
            let configuration = Publisher.Configuration(
                name: "unit", pool: PoolLayout(slotCount: 4, payloadCapacity: 64, metadataCapacity: 256), firstPoolIndex: firstPoolIndex)
            let publisher = try Publisher(configuration: configuration, outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 1)]]) {
                [self] (pool: SamplePool) throws(TransportError) in
                try subscriber.add(
                    try MappedPool(index: pool.index, layout: pool.layout, dataFD: dup(pool.data.fd), controlFD: dup(pool.control.fd)),
                    producer: 0)
            }
            publishers.append(publisher)
            return publisher
        }

        func send(_ publisher: Publisher, _ bytes: [UInt8], metadata: SampleMetadata = SampleMetadata()) throws {
            try bytes.withUnsafeBytes { _ = try publisher.send($0, output: 0, metadata: metadata) }
        }

        func receive() throws -> (metadata: SampleMetadata, bytes: [UInt8])? {
            guard case .sample(let sample) = try subscriber.receive(timeoutNanoseconds: 0) else { return nil }
            defer { subscriber.release(sample) }
            return (try sample.metadata(), Array(sample.payload))
        }
    }

    @Test func metadataAFaultyProducerOverwroteIsAnErrorWhenDecoded() throws {
        let pair = try Pair()
        let publisher = try pair.addPublisher()
        let metadata = SampleMetadata(shape: [2], parameters: [("k", .int(1))])
        try pair.send(publisher, [1, 2], metadata: metadata)
        // The producer maps its slots writable: after sending, it scribbles a rank of 2^32 - 1 where
        // the encoded metadata starts (it ends where the payload starts).
        let view = publisher.pools[0].view
        let start = view.slotBase(0) + view.layout.payloadOffset - MetadataCodec.encode(metadata).count
        start.storeBytes(of: UInt32.max, as: UInt32.self)
        guard case .sample(let sample) = try pair.subscriber.receive(timeoutNanoseconds: 0) else {
            Issue.record("no sample")
            return
        }
        #expect(Array(sample.payload) == [1, 2])
        #expect(throws: TransportError.corrupted("shape of rank 4294967295")) { try sample.metadata() }
        pair.subscriber.release(sample)
        #expect(publisher.usedSlots == 0)
    }

    @Test func anInputWhoseHolderBitThePoolLacksIsAnError() throws {
        // The daemon binds the input to bit 64; the producer's pools have one holder word (bits 0–63).
        let inbox = try Inbox(layout: InboxLayout(rings: [InputRingLayout(capacity: 4, policy: .dropOldest)]), name: "unit")
        var mapped: [MappedPool] = []
        let subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 64)]) {
            _, index throws(TransportError) in mapped[index]
        }
        let publisher = try Publisher(
            configuration: Publisher.Configuration(name: "unit", pool: PoolLayout(slotCount: 4, payloadCapacity: 64)),
            outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 1)]]
        ) { (pool: SamplePool) throws(TransportError) in
            mapped.append(
                try MappedPool(index: pool.index, layout: pool.layout, dataFD: dup(pool.data.fd), controlFD: dup(pool.control.fd)))
        }
        try [UInt8(1)].withUnsafeBytes { _ = try publisher.send($0, output: 0, metadata: SampleMetadata()) }
        #expect(throws: TransportError.corrupted("input 0: holder bit 64 is not one of pool 0's 64")) {
            try subscriber.receive(timeoutNanoseconds: 0)
        }
    }

    @Test func theSampleHeaderTravelsInTheEntryAndTheMetadataInTheSlot() throws {
        let pair = try Pair()
        let publisher = try pair.addPublisher()
        let metadata = SampleMetadata(
            elementType: .float32, shape: [1, 2], timestamp: 1234,
            parameters: [("frame", .int(7)), ("tags", .strings(["a", "b"]))])
        try pair.send(publisher, [1, 0, 0, 0, 2, 0, 0, 0], metadata: metadata)
        try pair.send(publisher, [])
        let first = try #require(try pair.receive())
        #expect(first.metadata == metadata)
        #expect(first.bytes == [1, 0, 0, 0, 2, 0, 0, 0])
        let second = try #require(try pair.receive())
        #expect(second.bytes.isEmpty)
        #expect(second.metadata.elementType == .uint8 && second.metadata.shape.isEmpty && second.metadata.parameters.isEmpty)
        #expect(second.metadata.timestamp > 0, "a timestamp of 0 is stamped at send")
        #expect(try pair.receive() == nil)
        #expect(publisher.usedSlots == 0)
    }

    @Test func sentBytesArriveExactlyWhateverTheirLength() throws {
        // `send` copies up to 64 bytes in words and more with memmove: every length on either side
        // of a word and of that limit arrives whole, over the bytes of the samples sent before it.
        let pair = try Pair()
        let publisher = try pair.addPublisher()
        for length in 0...140 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: length &* 31 &+ $0 &* 7 &+ 1) }
            try pair.send(publisher, bytes)
            let received = try #require(try pair.receive())
            #expect(received.bytes == bytes, "\(length) bytes")
        }
        #expect(publisher.usedSlots == 0)
    }

    @Test func metadataThatFillsTheWholeAreaRoundTrips() throws {
        // The encoded metadata ends where the payload starts: filling the area, it starts the slot.
        var metadata = SampleMetadata(shape: [3])
        var text = ""
        while MetadataCodec.encode(metadata).count < 256 {
            text += "x"
            metadata = SampleMetadata(shape: [3], parameters: [("note", .string(text))])
        }
        #expect(MetadataCodec.encode(metadata).count == 256)
        let pair = try Pair()
        let publisher = try pair.addPublisher()
        try pair.send(publisher, [7, 8, 9], metadata: metadata)
        let received = try #require(try pair.receive())
        #expect(received.metadata.shape == [3] && received.metadata.parameters.first?.value == .string(text))
        #expect(received.bytes == [7, 8, 9])
        #expect(publisher.usedSlots == 0)
    }

    @Test func aReceivedSampleComesBackInRegisters() {
        // `receive` is on every hand-off: its result must fit the four return registers, or it
        // travels through memory, copied twice on the way (about 10 ns per hand-off here).
        #expect(MemoryLayout<ReceivedSample>.size <= 31)
        #expect(MemoryLayout<InboxEvent?>.size <= 32)
    }

    @Test func samplesOfManyPoolsAreReleasedFromAnotherThreadWhileMoreAreMapped() throws {
        // Forty producer incarnations, one after another, a pool each: the subscriber's pool table
        // grows past its first chunk while another thread releases the samples already received.
        let pair = try Pair(capacity: 64)
        let publishers = try (0..<40).map { index in
            let publisher = try pair.addPublisher(firstPoolIndex: index)
            try pair.send(publisher, [UInt8(index)])
            return publisher
        }
        let releaser = DispatchQueue(label: "releaser")
        let group = DispatchGroup()
        var received: [UInt8] = []
        while case .sample(let sample) = try pair.subscriber.receive(timeoutNanoseconds: 0) {
            received.append(sample.payload[0])
            let subscriber = pair.subscriber!
            releaser.async(group: group) { subscriber.release(sample) }
        }
        group.wait()
        #expect(received == (0..<40).map { UInt8($0) })
        #expect(publishers.allSatisfy { $0.usedSlots == 0 })
    }

    @Test func aRestartedProducerKeepsAnEntryItsPredecessorStampedButDidNotCount() throws {
        let pair = try Pair()
        let first = try pair.addPublisher()
        try pair.send(first, [1])
        // The first producer dies after stamping its second entry but before moving `tail`.
        try pair.send(first, [2])
        let tail = pair.inbox.rings[0].tail
        tail.pointee.store(tail.pointee.load(ordering: .relaxed) - 1, ordering: .relaxed)

        let second = try pair.addPublisher(firstPoolIndex: 1)
        try pair.send(second, [3])
        #expect(try pair.receive()?.bytes == [1])
        #expect(try pair.receive()?.bytes == [2])
        #expect(try pair.receive()?.bytes == [3])
        #expect(try pair.receive() == nil)
        #expect(first.usedSlots == 0 && second.usedSlots == 0)
    }

    @Test func ringsWhoseCapacityIsNoPowerOfTwoKeepExactlyThatMany() throws {
        let pair = try Pair(capacity: 3)
        let publisher = try pair.addPublisher()
        for value in 1...5 { try pair.send(publisher, [UInt8(value)]) }
        #expect(pair.inbox.rings[0].queued == 3)
        #expect(pair.inbox.rings[0].dropped == 2)
        #expect(try pair.receive()?.bytes == [3])
        #expect(try pair.receive()?.bytes == [4])
        #expect(try pair.receive()?.bytes == [5])
        #expect(try pair.receive() == nil)
        #expect(publisher.usedSlots == 0)
    }
}
