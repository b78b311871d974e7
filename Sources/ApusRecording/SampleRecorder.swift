// Apus messages into an MCAP file: a channel per recorded output (and, should an output's messages
// change kind, per encoding it needed), each message in the encoding SampleEncoding chooses, logged
// at its send time on the wall clock. `apus record` and `apus run --record` write through it.
import ApusTransport
import Glibc

public final class SampleRecorder {
    private let writer: MCAPWriter
    private let topics: [String]
    private var schemas: [SampleEncoding: UInt16] = [:]
    private var channels: [String: [SampleEncoding: UInt16]] = [:]
    private var sequences: [UInt16: UInt32] = [:]
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC: send timestamps are monotonic, MCAP's log times are
    /// the wall clock's (what readers show).
    public let wallMinusMonotonic: UInt64
    public private(set) var count = 0

    public init(path: String, library: String, compression: MCAPWriter.Compression = .none, chunkSize: Int, topics: [String])
        throws(MCAPError)
    {
        writer = try MCAPWriter(path: path, library: library, compression: compression, chunkSize: chunkSize)
        self.topics = topics
        wallMinusMonotonic = wallClockNanoseconds() &- monotonicNanoseconds()
    }

    /// Writes one message of `topic` (NODE/OUTPUT).
    public func write(topic: String, metadata: SampleMetadata, payload: UnsafeRawBufferPointer) throws(MCAPError) {
        let encoding = SampleEncoding.choose(metadata, payloadLength: payload.count)
        let channel = try channel(topic, encoding)
        let time = metadata.timestamp &+ wallMinusMonotonic
        let (head, payloadFollows) = encoding.head(metadata, payload: payload, wallTime: time)
        let sequence = sequences[channel, default: 0]
        sequences[channel] = sequence &+ 1
        try head.withUnsafeBytes { head in
            Result { () throws(MCAPError) in
                try writer.write(
                    channel: channel, sequence: sequence, logTime: time, publishTime: time,
                    parts: payloadFollows ? [head, payload] : [head])
            }
        }.get()
        count += 1
    }

    private func channel(_ topic: String, _ encoding: SampleEncoding) throws(MCAPError) -> UInt16 {
        if let known = channels[topic]?[encoding] { return known }
        let schema: UInt16
        if let known = schemas[encoding] {
            schema = known
        } else {
            let described = encoding.schema
            schema = try writer.addSchema(name: described.name, encoding: described.encoding, data: described.data)
            schemas[encoding] = schema
        }
        let channel = try writer.addChannel(topic: topic, messageEncoding: encoding.messageEncoding, schema: schema)
        channels[topic, default: [:]][encoding] = channel
        return channel
    }

    /// How often buffered messages go to disk at least: a killed recorder loses at most this much.
    public static let flushInterval: UInt64 = 1_000_000_000
    /// When the next flush is due (monotonic ns).
    public private(set) var nextFlush = monotonicNanoseconds() &+ SampleRecorder.flushInterval

    /// Writes the messages buffered so far as a chunk, if a flush is due; true if it was.
    public func flushIfDue() throws(MCAPError) -> Bool {
        let now = monotonicNanoseconds()
        guard now >= nextFlush else { return false }
        try writer.flushChunk()
        nextFlush = now &+ Self.flushInterval
        return true
    }

    /// Finishes the file: a channel for each recorded output that sent nothing, the `apus`
    /// metadata record (`entries` and the clock offset), the summary and the footer.
    public func finish(metadata entries: [(String, String)]) throws(MCAPError) {
        for topic in topics where channels[topic] == nil { _ = try channel(topic, .sample) }
        try writer.addMetadata(name: "apus", entries + [("wall_minus_monotonic_ns", String(wallMinusMonotonic))])
        try writer.close()
    }
}
