import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@_spi(Fuzzing) @testable import ApusTransport

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
