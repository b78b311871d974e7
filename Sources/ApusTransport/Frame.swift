/// The framing of every Apus socket protocol (node control and the daemon's CLI protocol alike):
/// a 4-byte little-endian length, then that many bytes.
public enum Frame {
    public static let headerSize = 4

    /// `body` with its header in front.
    public static func encode(_ body: some Collection<UInt8>) -> [UInt8] {
        var frame = withUnsafeBytes(of: UInt32(truncatingIfNeeded: body.count).littleEndian, Array.init)
        frame.reserveCapacity(headerSize + body.count)
        frame += body
        return frame
    }

    /// The body length a header announces.
    public static func length(ofHeader header: some Collection<UInt8>) -> Int {
        precondition(header.count >= headerSize, "a frame header has \(headerSize) bytes")
        var length = 0
        for (position, byte) in header.prefix(headerSize).enumerated() { length |= Int(byte) << (8 * position) }
        return length
    }

    /// Takes the first whole frame's body out of `buffer` (the bytes read so far from a stream);
    /// nil while it is incomplete. A header announcing more than `limit` bytes is an error.
    public static func take(from buffer: inout [UInt8], limit: Int) throws(TransportError) -> [UInt8]? {
        guard buffer.count >= headerSize else { return nil }
        let length = Frame.length(ofHeader: buffer)
        guard length <= limit else { throw .malformedMessage("announced length \(length) exceeds \(limit)") }
        guard buffer.count >= headerSize + length else { return nil }
        let body = Array(buffer[headerSize..<(headerSize + length)])
        buffer.removeFirst(headerSize + length)
        return body
    }
}
