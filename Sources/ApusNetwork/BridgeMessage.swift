// What one Apus message is on a DDS topic: the header holds its element type, then its shape and
// parameters as shared memory holds them (MetadataCodec); the payload is the message's bytes. An
// output's producer ending is a message of its own.
@_spi(Fuzzing) import ApusTransport

public enum BridgeMessage {
    /// The sequence number of the message that says the output was closed: nothing follows.
    public static let closedSequence = UInt64.max
    /// The sequence number of the message that says the output's node failed (its payload says
    /// how): nothing follows.
    public static let failedSequence = UInt64.max - 1
    /// The sequence number of the bridge-out's note of how many messages of the output it has
    /// taken. A reading machine that has passed fewer on a while later asks for the rest.
    public static let takenSequence = UInt64.max - 2

    /// Whether `seq` is one of the bridge-out's notes (closed, failed, taken) rather than a
    /// message. A note's `timestamp` is how many messages the output had sent by then.
    public static func isNote(_ seq: UInt64) -> Bool { seq >= takenSequence }

    /// Whether a sender that has sent `sent` messages must wait for a reading machine that said it
    /// passed `credit` on (nil: it has not said it is ready), to keep at most `depth` beyond it.
    /// Credits come from the network: one beyond what was sent lets the sender go, and none
    /// makes it overflow.
    public static func mustWait(sent: UInt64, credit: UInt64?, depth: UInt64) -> Bool {
        guard let credit else { return true }
        return sent >= depth && credit <= sent - depth
    }

    /// One reading of this machine's two clocks, CLOCK_MONOTONIC (what samples are stamped with)
    /// and CLOCK_REALTIME, in nanoseconds.
    public struct Clocks: Sendable, Equatable {
        public var monotonic: UInt64
        public var wall: UInt64

        public init(monotonic: UInt64, wall: UInt64) {
            self.monotonic = monotonic
            self.wall = wall
        }

        public static func now() -> Clocks { Clocks(monotonic: monotonicNanoseconds(), wall: wallClockNanoseconds()) }
    }

    /// A message's send time as it travels: `monotonic` (a stamp of this machine's, in the past)
    /// as wall-clock time. Monotonic clocks start at each machine's boot; wall clocks are what
    /// machines keep in step (chrony, PTP).
    public static func wallClock(fromMonotonic monotonic: UInt64, now: Clocks = .now()) -> UInt64 {
        let age = now.monotonic >= monotonic ? now.monotonic - monotonic : 0
        return now.wall >= age ? now.wall - age : 0
    }

    /// A send time from another machine (`wallClock(fromMonotonic:)` there) as this machine's
    /// monotonic stamp, which its consumers, `apus top` and recordings compare with their own
    /// clock. Never later than now: a sender whose clock is ahead of this one's (or unknown, 0)
    /// gives the arrival time, as does one older than this machine's monotonic clock. Never
    /// earlier than `notBefore`, the output's previous stamp: each conversion reads two clocks,
    /// so two messages sent a moment apart could otherwise swap their order.
    public static func monotonic(fromWallClock wall: UInt64, notBefore: UInt64 = 0, now: Clocks = .now()) -> UInt64 {
        guard wall != 0, wall <= now.wall else { return now.monotonic }
        let age = now.wall - wall
        return max(age < now.monotonic ? now.monotonic - age : now.monotonic, min(notBefore, now.monotonic))
    }

    /// The header of a message described by `metadata`.
    public static func header(_ metadata: SampleMetadata) -> [UInt8] {
        let encoded = metadata.shape.isEmpty && metadata.parameters.isEmpty ? [] : MetadataCodec.encode(metadata)
        return [metadata.elementType.rawValue] + encoded
    }

    /// The metadata a header describes, with `timestamp`; a malformed header is an error that
    /// says what is wrong (they come from the network).
    public static func metadata(header: UnsafeRawBufferPointer, timestamp: UInt64) throws(TransportError) -> SampleMetadata {
        guard let first = header.first else { throw .corrupted("a message header of 0 bytes") }
        guard let type = ElementType(rawValue: first) else { throw .corrupted("a message header with element type \(first)") }
        return try MetadataCodec.decode(UnsafeRawBufferPointer(rebasing: header.dropFirst()), elementType: type, timestamp: timestamp)
    }

    /// The topic of `node`'s `output` in run `run`.
    public static func topic(run: String, node: String, output: String) -> String {
        topicName(["apus", run, node, output])
    }

    /// The topic on which `machine` says how many messages of that output it has passed on (its
    /// credit, `seq`: the sender keeps at most the delivery's depth beyond the smallest), and how
    /// many times it has asked for the messages from there on again (`timestamp`: one more than
    /// the bridge-out last saw is a new request).
    public static func creditTopic(run: String, node: String, output: String, machine: String) -> String {
        topicName(["apus", run, "credit", node, output, machine])
    }

    /// A DDS topic name from `parts` joined by '/': DDS allows only letters, digits, '_' and '/'
    /// in names, so within a part '_' is written "__", '-' "_h", '.' "_p", '/' "_s", and any
    /// other character "_u" and its code in hex then "_" (one name per list of parts).
    public static func topicName(_ parts: [String]) -> String {
        parts.map { part in
            var name = ""
            for scalar in part.unicodeScalars {
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9": name.unicodeScalars.append(scalar)
                case "_": name += "__"
                case "-": name += "_h"
                case ".": name += "_p"
                case "/": name += "_s"
                default: name += "_u\(String(scalar.value, radix: 16))_"
                }
            }
            return name
        }.joined(separator: "/")
    }
}

extension DDSWriter {
    /// Sends one Apus message: `metadata` as the header (`BridgeMessage.header`), then `payload`.
    public func write(seq: UInt64, timestamp: UInt64, metadata: SampleMetadata, payload: UnsafeRawBufferPointer) throws(DDSError) {
        try BridgeMessage.header(metadata).withUnsafeBytes { header in
            Result { () throws(DDSError) in try write(seq: seq, timestamp: timestamp, header: header, data: payload) }
        }.get()
    }
}
