import ApusTransport
import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing

@_spi(Fuzzing) @testable import ApusTransport

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
            .addEdge(output: 1, bit: 5, ring: 0, layout: InboxLayout(rings: [InputRingLayout(capacity: 3, policy: .dropOldest)])),
            .removeEdge(bit: 5), .alive, .closeInput(ring: 2), .stopDataflow(reason: "done"),
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
