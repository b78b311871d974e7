import ApusTransport
import Foundation
import Glibc
import Testing

/// The transport between real processes: every producer and consumer is its own process, set up
/// over Unix sockets by the harness as the daemon will set up nodes.
@Suite(.serialized) struct TransportProcessTests {
    static let smallPool = PoolLayout(slotCount: 64, payloadCapacity: 64, metadataCapacity: 256)

    /// Parses `received 5,5 last 4,4 violations 0 errors 0`.
    struct Report: Equatable {
        var counts: [Int]
        var last: [Int]
        var violations: Int
        var errors: Int

        init?(_ line: String?) {
            guard let words = line?.split(separator: " "), words.count == 8, words[0] == "received" else { return nil }
            counts = words[1].split(separator: ",").compactMap { Int($0) }
            last = words[3].split(separator: ",").compactMap { Int($0) }
            violations = Int(words[5]) ?? -1
            errors = Int(words[7]) ?? -1
        }

        init(counts: [Int], last: [Int], violations: Int = 0, errors: Int = 0) {
            self.counts = counts
            self.last = last
            self.violations = violations
            self.errors = errors
        }
    }

    /// Every pool of `producers` is known to the harness and has all its slots back.
    func expectAllPoolsFree(_ harness: TransportHarness, producers: [Int] = [0]) {
        for producer in producers {
            #expect(!harness.pools(of: producer).isEmpty, "no pool of producer \(producer) was announced")
        }
        #expect(harness.usedSlots == 0)
    }

    func finish(_ harness: TransportHarness) {
        harness.tearDown()
        #expect(harness.newShmEntries.isEmpty, "left in /dev/shm: \(harness.newShmEntries)")
    }

    @Test func oneToOneUnderBackpressureDeliversAMillionMessagesInOrder() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: [(0, 64, .backpressure)])
        let producer = try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "1000000"])
        try harness.start()

        let report = Report(consumer.peer.line(startingWith: "received", seconds: 300))
        #expect(report == Report(counts: [1_000_000], last: [999_999]))
        // A second pool appears only if the consumer stalled for the growth wait (5 ms) while the
        // producer had every slot queued; the full ring then limits the producer, so never a third.
        let sent = producer.line(startingWith: "sent")
        #expect(sent == "sent 1000000 evicted 0 timeouts 0 pools 1" || sent == "sent 1000000 evicted 0 timeouts 0 pools 2")
        #expect(producer.wait()?.status == 0)
        #expect(consumer.peer.wait()?.status == 0)
        #expect(consumer.inbox.rings[0].dropped == 0)
        expectAllPoolsFree(harness)
    }

    @Test func fanOutDeliversEveryMessageToFourConsumers() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumers = try (0..<4).map { try harness.consumer("consumer\($0)", inputs: [(0, 32, .backpressure)]) }
        let producer = try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "50000"])
        try harness.start()

        for consumer in consumers {
            #expect(Report(consumer.peer.line(startingWith: "received", seconds: 120)) == Report(counts: [50_000], last: [49_999]))
        }
        #expect(producer.wait()?.status == 0)
        for consumer in consumers { #expect(consumer.peer.wait()?.status == 0) }
        expectAllPoolsFree(harness)
    }

    @Test func fanInReceivesFourProducersWithOrderKeptPerEdge() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: (0..<4).map { ($0, 32, .backpressure) })
        let producers = try (0..<4).map {
            try harness.producer("producer\($0)", id: $0, pool: Self.smallPool, arguments: ["--count", "50000"])
        }
        try harness.start()

        #expect(
            Report(consumer.peer.line(startingWith: "received", seconds: 120))
                == Report(counts: [50_000, 50_000, 50_000, 50_000], last: [49_999, 49_999, 49_999, 49_999]))
        for producer in producers { #expect(producer.wait()?.status == 0) }
        #expect(consumer.peer.wait()?.status == 0)
        expectAllPoolsFree(harness, producers: [0, 1, 2, 3])
    }

    @Test func dropOldestCountsEveryDropAndKeepsTheNewest() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        // The consumer sleeps through the whole run, so only the last 10 can remain.
        let consumer = try harness.consumer("consumer", inputs: [(0, 10, .dropOldest)], arguments: ["--start-delay-ms", "1500"])
        let producer = try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "1000"])
        try harness.start()

        #expect(producer.line(startingWith: "sent") == "sent 1000 evicted 990 timeouts 0 pools 1")
        #expect(Report(consumer.peer.line(startingWith: "received")) == Report(counts: [10], last: [999]))
        #expect(consumer.inbox.rings[0].dropped == 990)
        #expect(consumer.peer.wait()?.status == 0)
        #expect(producer.wait()?.status == 0)
        expectAllPoolsFree(harness)
    }

    @Test func killedConsumerIsReclaimedAndTheProducerCarriesOn() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let victim = try harness.consumer("victim", inputs: [(0, 16, .dropOldest)], arguments: ["--hold-ms", "5"])
        let survivor = try harness.consumer("survivor", inputs: [(0, 16, .backpressure)])
        let producer = try harness.producer(
            "producer", id: 0, pool: PoolLayout(slotCount: 64, payloadCapacity: 64, metadataCapacity: 256, holderWords: 1),
            arguments: ["--count", "20000", "--interval-us", "50"])
        try harness.start()

        #expect(victim.peer.line(startingWith: "ready") != nil)
        usleep(300_000)
        victim.peer.kill()
        #expect(victim.peer.wait()?.reason == .uncaughtSignal)
        Reclamation.releaseEdge(victim.inbox.rings[0], bit: 1, pools: harness.pools(of: 0).map(\.view))

        // The victim's ring dropped samples while it was alive and slow; nothing timed out.
        let sent = producer.line(startingWith: "sent") ?? ""
        #expect(sent.hasPrefix("sent 20000 evicted ") && sent.hasSuffix(" timeouts 0 pools 1"), "\(sent)")
        #expect(Report(survivor.peer.line(startingWith: "received")) == Report(counts: [20_000], last: [19_999]))
        #expect(producer.wait()?.status == 0)
        #expect(survivor.peer.wait()?.status == 0)
        expectAllPoolsFree(harness)
    }

    @Test func killedProducerLetsTheConsumerDrainThenClose() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: [(0, 128, .dropOldest)], arguments: ["--start-delay-ms", "500"])
        let producer = try harness.producer(
            "producer", id: 0, pool: PoolLayout(slotCount: 160, payloadCapacity: 64, metadataCapacity: 256),
            arguments: ["--count", "100", "--linger"])
        try harness.start()

        #expect(producer.line(startingWith: "sent") == "sent 100 evicted 0 timeouts 0 pools 1")
        producer.kill()
        #expect(producer.wait()?.reason == .uncaughtSignal)
        Reclamation.closeEdge(consumer.inbox, ring: 0)

        #expect(Report(consumer.peer.line(startingWith: "received")) == Report(counts: [100], last: [99]))
        #expect(consumer.peer.wait()?.status == 0)
        expectAllPoolsFree(harness)
    }

    @Test func writingIntoAReceivedPayloadFaults() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: [(0, 8, .dropOldest)], arguments: ["--write-into-payload"])
        try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "1", "--linger"])
        try harness.start()

        let ended = consumer.peer.wait()
        #expect(ended?.reason == .uncaughtSignal)
        #expect(ended?.status == SIGSEGV || ended?.status == SIGBUS)
        #expect(consumer.peer.output.contains("writing into payload"))
        #expect(!consumer.peer.output.contains("write succeeded"))
    }

    @Test func zeroLengthSamplesArrive() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: [(0, 8, .backpressure)])
        let producer = try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "5", "--size", "0"])
        try harness.start()

        #expect(Report(consumer.peer.line(startingWith: "received")) == Report(counts: [5], last: [4]))
        #expect(producer.wait()?.status == 0)
        expectAllPoolsFree(harness)
    }

    @Test func fortyMebibyteSamplesGetAPoolOfTheirOwnThatIsReused() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: [(0, 2, .backpressure)])
        let producer = try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "20", "--size", "\(40 << 20)"])
        try harness.start()

        #expect(Report(consumer.peer.line(startingWith: "received", seconds: 120)) == Report(counts: [20], last: [19]))
        #expect(producer.line(startingWith: "sent") == "sent 20 evicted 0 timeouts 0 pools 2")
        #expect(producer.wait()?.status == 0)
        #expect(harness.pools(of: 0).map(\.view.layout.payloadCapacity) == [64, 40 << 20])  // an eighth of 64 MiB at a time
        expectAllPoolsFree(harness)
    }

    @Test func corruptedDescriptorsAreReportedNotFollowed() throws {
        let harness = try TransportHarness()
        defer { finish(harness) }
        let consumer = try harness.consumer("consumer", inputs: [(0, 8, .dropOldest)])
        let producer = try harness.producer("producer", id: 0, pool: Self.smallPool, arguments: ["--count", "1", "--linger"])
        try harness.start()
        #expect(producer.line(startingWith: "sent") != nil)

        let badSlot = try harness.corrupter("bad-slot", into: consumer, descriptor: 999_999)
        #expect(badSlot.wait()?.status == 0)
        #expect(
            consumer.peer.line(startingWith: "error corrupted shared memory: input 0: descriptor names slot 999999 of a pool of 64") != nil)
        let badPool = try harness.corrupter("bad-pool", into: consumer, descriptor: UInt64(70_000) << 32)
        #expect(badPool.wait()?.status == 0)
        #expect(consumer.peer.line(startingWith: "error corrupted shared memory: input 0: descriptor names pool 70000") != nil)
        // The sample header travels in the entry too: each field is checked against the pool's layout.
        for (name, header, error) in [
            ("bad-length", ["--length", "\(1 << 40)"], "sample of 1099511627776 bytes in a slot of 64"),
            ("bad-metadata", ["--metadata-length", "4000000000"], "metadata of 4000000000 bytes in an area of 256"),
            ("bad-type", ["--element-type", "200"], "unknown element type 200"),
        ] {
            let corrupter = try harness.corrupter(name, into: consumer, descriptor: 63, header: header)
            #expect(corrupter.wait()?.status == 0)
            #expect(consumer.peer.line(startingWith: "error corrupted shared memory: " + error) != nil, "\(name)")
        }

        producer.kill()
        Reclamation.closeEdge(consumer.inbox, ring: 0)
        #expect(Report(consumer.peer.line(startingWith: "received")) == Report(counts: [1], last: [0], errors: 5))
        #expect(consumer.peer.wait()?.status == 0)
    }
}
