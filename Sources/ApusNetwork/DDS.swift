// Eclipse Cyclone DDS, loaded when a dataflow crosses machines: participants, writers and readers
// of apus::Message (a message's sequence number, send timestamp, header and payload).
import CApusDDS
import Glibc

/// A Cyclone DDS call that failed, or a library that is missing; the description says which.
public struct DDSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// libddsc, loaded on first use.
enum DDSLibrary {
    static let api: Result<apusdds_api_t, DDSError> = {
        var api = apusdds_api_t()
        var error = [CChar](repeating: 0, count: 512)
        guard apusdds_load(&api, &error, error.count) == 0 else {
            let text = error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            return .failure(
                DDSError(
                    "\(text). Dataflows across machines need Eclipse Cyclone DDS 0.10: `apt-get install libddsc0debian` (Debian, Ubuntu), or name its libddsc.so in APUS_DDS_LIBRARY"
                ))
        }
        return .success(api)
    }()
}

/// How a topic's messages are delivered; both kinds are reliable (what is lost on the wire is
/// sent again).
/// - `keepAll`: nothing is dropped: the writer keeps every message until each matched reader has
///   it, and a reader keeps everything it has not taken. The bridge bounds what is in flight
///   with credits, and waits for each reader before the first message (nothing is kept for a
///   reader that matches late).
/// - otherwise: the newest `depth`, also for a reader that matches late; a slow reader loses the
///   older ones.
public struct DDSDelivery: Sendable, Equatable {
    public var keepAll: Bool
    public var depth: Int

    public static func everyMessage(buffered depth: Int) -> DDSDelivery { DDSDelivery(keepAll: true, depth: depth) }
    public static func newest(_ depth: Int) -> DDSDelivery { DDSDelivery(keepAll: false, depth: depth) }
}

/// A domain participant: what this process is on the DDS network. Deleting it deletes everything
/// made from it.
public final class DDSParticipant: @unchecked Sendable {
    let api: apusdds_api_t
    let entity: apusdds_entity_t
    private var topics: [String: apusdds_entity_t] = [:]
    private let lock = NetworkLock()

    /// Joins DDS domain `domain`, configured by `CYCLONEDDS_URI` (Cyclone's own variable) over
    /// Apus's defaults: participants announce themselves every second rather than every 30 s, so
    /// one whose first announcement was missed (started at the same moment as its peer) is found
    /// within a second, and a machine whose network came back is found again as soon.
    ///
    /// Cyclone's threads start with every signal blocked, so the process's signals (SIGCHLD,
    /// SIGINT, SIGTERM) still reach the thread that waits for them (a supervisor's signalfd).
    public init(domain: UInt32 = 0) throws(DDSError) {
        api = try DDSLibrary.api.get()
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        _ = DDSParticipant.configured(api, domain)
        entity = try Self.check(api, api.create_participant(domain, nil, nil), "dds_create_participant(domain \(domain))")
    }

    static let defaults = "<Discovery><SPDPInterval>1s</SPDPInterval></Discovery>"
    private static let configuredDomains = NetworkLock()
    nonisolated(unsafe) private static var domains: [UInt32: Int32] = [:]

    /// Creates the domain once per process with Apus's defaults and then `CYCLONEDDS_URI`.
    static func configured(_ api: apusdds_api_t, _ domain: UInt32) -> Int32 {
        configuredDomains.locked {
            if let made = domains[domain] { return made }
            // Cyclone reads CYCLONEDDS_URI itself only when given no configuration.
            let uri = getenv("CYCLONEDDS_URI").map { String(cString: $0) } ?? ""
            let made = api.create_domain(domain, uri.isEmpty ? defaults : defaults + "," + uri)
            domains[domain] = made
            return made
        }
    }

    deinit { _ = api.delete_entity(entity) }

    static func check(_ api: apusdds_api_t, _ result: Int32, _ what: @autoclosure () -> String) throws(DDSError) -> Int32 {
        guard result < 0 else { return result }
        throw DDSError("\(what()) failed: \(api.strretcode(result).map { String(cString: $0) } ?? "error \(result)")")
    }

    func check(_ result: Int32, _ what: @autoclosure () -> String) throws(DDSError) -> Int32 {
        try Self.check(api, result, what())
    }

    /// The topic `name` of apus::Message, made once per participant.
    func topic(_ name: String) throws(DDSError) -> apusdds_entity_t {
        try lock.locked { () throws(DDSError) -> apusdds_entity_t in
            if let topic = topics[name] { return topic }
            let topic = try check(api.create_topic(entity, apusdds_message_descriptor(), name, nil, nil), "dds_create_topic('\(name)')")
            topics[name] = topic
            return topic
        }
    }

    /// A QoS for `delivery`, to delete with `api.delete_qos`.
    /// Liveliness is automatic with a lease of `lease` nanoseconds: a reader learns within it
    /// that a writer's process is gone.
    func qos(_ delivery: DDSDelivery, lease: Int64) -> OpaquePointer? {
        let qos = api.create_qos()
        api.qset_reliability(qos, Int32(APUSDDS_RELIABILITY_RELIABLE), 10_000_000_000)
        if delivery.keepAll {
            api.qset_history(qos, Int32(APUSDDS_HISTORY_KEEP_ALL), 1)
        } else {
            api.qset_durability(qos, Int32(APUSDDS_DURABILITY_TRANSIENT_LOCAL))
            api.qset_history(qos, Int32(APUSDDS_HISTORY_KEEP_LAST), Int32(clamping: max(1, delivery.depth)))
        }
        api.qset_liveliness(qos, Int32(APUSDDS_LIVELINESS_AUTOMATIC), lease)
        return qos
    }
}

/// Publishes apus::Message on one topic.
public final class DDSWriter: @unchecked Sendable {
    let participant: DDSParticipant
    let entity: apusdds_entity_t
    public let topic: String

    public init(_ participant: DDSParticipant, topic: String, delivery: DDSDelivery, leaseNanoseconds: Int64 = 2_000_000_000)
        throws(DDSError)
    {
        self.participant = participant
        self.topic = topic
        let handle = try participant.topic(topic)
        let qos = participant.qos(delivery, lease: leaseNanoseconds)
        defer { participant.api.delete_qos(qos) }
        entity = try participant.check(
            participant.api.create_writer(participant.entity, handle, qos, nil), "dds_create_writer('\(topic)')")
        _ = participant.api.set_status_mask(entity, UInt32(APUSDDS_PUBLICATION_MATCHED_STATUS))
    }

    deinit { _ = participant.api.delete_entity(entity) }

    /// Readers of this topic found so far.
    public var matchedReaders: Int {
        var status = apusdds_matched_status_t()
        guard participant.api.get_publication_matched_status(entity, &status) >= 0 else { return 0 }
        return Int(status.current_count)
    }

    /// Sends one message (copied out by DDS before it returns).
    public func write(seq: UInt64, timestamp: UInt64, header: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) throws(DDSError) {
        var message = apusdds_message_t()
        message.seq = seq
        message.timestamp = timestamp
        message.header = Self.bytes(header)
        message.data = Self.bytes(data)
        _ = try participant.check(participant.api.write(entity, &message), "dds_write('\(topic)')")
    }

    /// `write` of arrays.
    public func write(seq: UInt64, timestamp: UInt64, header: [UInt8], data: [UInt8]) throws(DDSError) {
        try header.withUnsafeBytes { header in
            data.withUnsafeBytes { data in
                Result { () throws(DDSError) in try write(seq: seq, timestamp: timestamp, header: header, data: data) }
            }
        }.get()
    }

    /// Waits until every matched reader has acknowledged what was written, up to `timeoutNanoseconds`;
    /// false if some had not (a reliable message is resent until then, so a writer must not go
    /// before).
    public func waitForAcknowledgements(timeoutNanoseconds: Int64) -> Bool {
        participant.api.wait_for_acks(entity, timeoutNanoseconds) == 0
    }

    /// A sequence over `buffer` that DDS only reads (not `release`d: it does not own the bytes).
    static func bytes(_ buffer: UnsafeRawBufferPointer) -> apusdds_bytes_t {
        let count = UInt32(truncatingIfNeeded: buffer.count)
        return apusdds_bytes_t(
            maximum: count, length: count, buffer: UnsafeMutablePointer(mutating: buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)),
            release: false)
    }
}

/// One message taken from a reader: valid until the `take` body returns.
public struct DDSMessage {
    public var seq: UInt64
    public var timestamp: UInt64
    public var header: UnsafeRawBufferPointer
    public var data: UnsafeRawBufferPointer

    public init(seq: UInt64, timestamp: UInt64, header: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
        self.seq = seq
        self.timestamp = timestamp
        self.header = header
        self.data = data
    }
}

/// Takes apus::Message from one topic, waiting on a waitset.
public final class DDSReader: @unchecked Sendable {
    let participant: DDSParticipant
    let entity: apusdds_entity_t
    let waitset: apusdds_entity_t
    public let topic: String

    /// Called on the thread that delivered data (Cyclone's receive thread): see `init`.
    private final class Arrival {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    private let arrival: Arrival?

    /// A reader of `topic`. `onArrival`, when given, runs on the thread that delivered data (for
    /// a remote writer, Cyclone's receive thread, which reads the network for the participant:
    /// it must not wait, or every reader and liveliness of the participant waits with it).
    public init(
        _ participant: DDSParticipant, topic: String, delivery: DDSDelivery, leaseNanoseconds: Int64 = 2_000_000_000,
        onArrival: (@Sendable () -> Void)? = nil
    ) throws(DDSError) {
        self.participant = participant
        self.topic = topic
        let api = participant.api
        let handle = try participant.topic(topic)
        let qos = participant.qos(delivery, lease: leaseNanoseconds)
        defer { api.delete_qos(qos) }
        arrival = onArrival.map(Arrival.init)
        var listener: OpaquePointer?
        if let arrival {
            listener = api.create_listener(Unmanaged.passUnretained(arrival).toOpaque())
            api.lset_data_available(listener) { _, argument in
                guard let argument else { return }
                Unmanaged<Arrival>.fromOpaque(argument).takeUnretainedValue().body()
            }
        }
        defer { if let listener { api.delete_listener(listener) } }
        entity = try participant.check(api.create_reader(participant.entity, handle, qos, listener), "dds_create_reader('\(topic)')")
        waitset = try participant.check(api.create_waitset(participant.entity), "dds_create_waitset")
        let condition = try participant.check(
            api.create_readcondition(entity, UInt32(APUSDDS_ANY_STATE)), "dds_create_readcondition('\(topic)')")
        _ = try participant.check(api.waitset_attach(waitset, condition, 1), "dds_waitset_attach")
        let arrivals = arrival == nil ? 0 : APUSDDS_DATA_AVAILABLE_STATUS
        _ = api.set_status_mask(entity, UInt32(APUSDDS_SUBSCRIPTION_MATCHED_STATUS | APUSDDS_LIVELINESS_CHANGED_STATUS | arrivals))
    }

    deinit {
        _ = participant.api.delete_entity(waitset)
        _ = participant.api.delete_entity(entity)
    }

    /// Writers of this topic found so far, and how many of them are alive (their process renews
    /// its lease) and not.
    public var writers: (matched: Int, alive: Int, notAlive: Int) {
        var matched = apusdds_matched_status_t()
        var liveliness = apusdds_liveliness_status_t()
        _ = participant.api.get_subscription_matched_status(entity, &matched)
        _ = participant.api.get_liveliness_changed_status(entity, &liveliness)
        return (Int(matched.current_count), Int(liveliness.alive_count), Int(liveliness.not_alive_count))
    }

    /// Waits up to `timeoutNanoseconds` for messages (0: not at all), then hands each one taken (up to `batch`) to
    /// `body`, in order. Returns how many.
    public func take(timeoutNanoseconds: Int64, _ body: (DDSMessage) throws(DDSError) -> Void) throws(DDSError) -> Int {
        let api = participant.api
        if timeoutNanoseconds > 0 {
            var triggered: [Int] = [0]
            _ = api.waitset_wait(waitset, &triggered, 1, timeoutNanoseconds)
        }
        // On the stack: the stand-in takes on Cyclone's receive thread, for every message.
        return try withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: Self.batch) {
            samples throws(DDSError) -> Int in
            try withUnsafeTemporaryAllocation(of: apusdds_sample_info_t.self, capacity: Self.batch) {
                infos throws(DDSError) -> Int in
                // Null entries ask DDS to lend its own samples.
                samples.initialize(repeating: nil)
                let count = try participant.check(
                    api.take(entity, samples.baseAddress, infos.baseAddress, Self.batch, UInt32(Self.batch)), "dds_take('\(topic)')")
                defer { _ = api.return_loan(entity, samples.baseAddress, count) }
                var delivered = 0
                for index in 0..<Int(count) where infos[index].valid_data {
                    let message = samples[index]!.assumingMemoryBound(to: apusdds_message_t.self).pointee
                    try body(
                        DDSMessage(
                            seq: message.seq, timestamp: message.timestamp,
                            header: UnsafeRawBufferPointer(start: message.header.buffer, count: Int(message.header.length)),
                            data: UnsafeRawBufferPointer(start: message.data.buffer, count: Int(message.data.length))))
                    delivered += 1
                }
                return delivered
            }
        }
    }

    /// How many messages one `take` takes at most.
    static let batch = 64
}
