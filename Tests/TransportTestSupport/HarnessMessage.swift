import ApusTransport

/// Messages between the transport test harness (standing in for the daemon) and its peer
/// processes: a kind word and integers, with descriptors attached over SCM_RIGHTS.
public enum HarnessMessage: Equatable {
    /// To a consumer: its inbox (fd attached) and, per ring, the producer and edge bit.
    case inbox(layout: InboxLayout, bindings: [InputBinding])
    /// To a producer: its first pool layout and the number of outputs.
    case producer(pool: PoolLayout, outputs: Int, largeSlotCount: Int, maxSampleSize: Int)
    /// To a producer: one edge of an output (the consumer's inbox fd attached).
    case edge(output: Int, ring: Int, bit: Int, inbox: InboxLayout)
    /// A pool (data and control fds attached): producer → harness, harness → consumers.
    case pool(producer: Int, index: Int, layout: PoolLayout)
    /// Setup is complete.
    case start

    public var words: [UInt64] {
        switch self {
        case .inbox(let layout, let bindings):
            return [1, UInt64(layout.rings.count)] + layout.encoded + bindings.flatMap { [UInt64($0.producer), UInt64($0.bit)] }
        case .producer(let pool, let outputs, let largeSlotCount, let maxSampleSize):
            return [2, UInt64(outputs), UInt64(largeSlotCount), UInt64(maxSampleSize)] + pool.encoded
        case .edge(let output, let ring, let bit, let inbox):
            return [3, UInt64(output), UInt64(ring), UInt64(bit)] + inbox.encoded
        case .pool(let producer, let index, let layout):
            return [4, UInt64(producer), UInt64(index)] + layout.encoded
        case .start:
            return [5]
        }
    }

    public init(words: [UInt64]) throws(TransportError) {
        guard let kind = words.first else { throw .malformedMessage("empty harness message") }
        let rest = Array(words.dropFirst())
        switch kind {
        case 1:
            guard let count = rest.first.map(Int.init), rest.count == 1 + 4 * count else {
                throw .malformedMessage("inbox message of \(rest.count) words")
            }
            let layout = try InboxLayout(encoded: Array(rest[1..<(1 + 2 * count)]))
            let pairs = Array(rest[(1 + 2 * count)...])
            let bindings = stride(from: 0, to: pairs.count, by: 2).map { InputBinding(producer: Int(pairs[$0]), bit: Int(pairs[$0 + 1])) }
            self = .inbox(layout: layout, bindings: bindings)
        case 2 where rest.count == 7:
            self = .producer(
                pool: try PoolLayout(encoded: Array(rest[3...])), outputs: Int(rest[0]),
                largeSlotCount: Int(rest[1]), maxSampleSize: Int(rest[2]))
        case 3 where rest.count >= 3:
            self = .edge(output: Int(rest[0]), ring: Int(rest[1]), bit: Int(rest[2]), inbox: try InboxLayout(encoded: Array(rest[3...])))
        case 4 where rest.count == 6:
            self = .pool(producer: Int(rest[0]), index: Int(rest[1]), layout: try PoolLayout(encoded: Array(rest[2...])))
        case 5:
            self = .start
        default:
            throw .malformedMessage("harness message kind \(kind) with \(rest.count) words")
        }
    }
}

extension ControlChannel {
    public func send(harness message: HarnessMessage, fds: [Int32] = []) throws(TransportError) {
        var bytes: [UInt8] = []
        for word in message.words { withUnsafeBytes(of: word.littleEndian) { bytes += $0 } }
        try send(bytes, fds: fds)
    }

    public func receiveHarnessMessage() throws(TransportError) -> (HarnessMessage, [Int32]) {
        let (bytes, fds) = try receive()
        guard bytes.count % 8 == 0 else { throw .malformedMessage("\(bytes.count) bytes is not whole words") }
        let words = stride(from: 0, to: bytes.count, by: 8).map { offset in
            bytes[offset..<(offset + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        return (try HarnessMessage(words: words), fds)
    }
}
