// How an Apus message goes into an MCAP message when no better-known encoding fits: its element
// type, send timestamp, shape and parameters in a small header, then the payload as it was sent.
// Replay reads it back to the same bytes, type and metadata.
@_spi(Fuzzing) import ApusTransport

public enum SampleRecord {
    /// The channel's message encoding and its schema's name and encoding.
    public static let messageEncoding = "apus.sample"
    public static let schemaName = "apus.Sample"
    public static let schemaEncoding = "apus.sample"
    /// The schema's data: the layout, for whoever reads the file without Apus.
    public static let schemaText = """
        Apus message, version 1, little-endian:
          u8   element type: 0 uint8, 1 uint16, 2 uint32, 3 uint64, 4 int8, 5 int16, 6 int32, 7 int64,
               8 float16, 9 float32, 10 float64, 11 bool, 12 utf8
          u8   version (1)
          u16  0
          u32  M, the length of the metadata that follows
          u64  send timestamp (CLOCK_MONOTONIC nanoseconds of the sending machine)
          M    metadata: u32 rank, u64 x rank shape, u32 count, then per parameter u16 key length,
               key, u8 tag (1 bool u8, 2 int i64, 3 float f64, 4 string u32+bytes, 5..8 lists: u32
               count then elements as 1..4)
          ...  payload
        """
    static let fixedLength = 16

    /// The header of a message with `metadata` (its element type, shape, parameters, timestamp).
    public static func header(_ metadata: SampleMetadata) -> [UInt8] {
        let encoded = metadata.shape.isEmpty && metadata.parameters.isEmpty ? [] : MetadataCodec.encode(metadata)
        var bytes = RecordBytes()
        bytes.u8(metadata.elementType.rawValue)
        bytes.u8(1)
        bytes.u16(0)
        bytes.u32(UInt32(encoded.count))
        bytes.u64(metadata.timestamp)
        return bytes.bytes + encoded
    }

    /// Splits a recorded message into its metadata and the payload's range; a malformed one is an
    /// error that says what is wrong.
    public static func decode(_ data: UnsafeRawBufferPointer) throws(MCAPError) -> (SampleMetadata, Range<Int>) {
        guard data.count >= fixedLength else { throw MCAPError("an apus.sample message of \(data.count) bytes (at least 16)") }
        guard let type = ElementType(rawValue: data[0]) else { throw MCAPError("an apus.sample message with element type \(data[0])") }
        guard data[1] == 1 else { throw MCAPError("an apus.sample message of version \(data[1]) (this Apus reads 1)") }
        let length = Int(data.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian)
        let timestamp = data.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        guard length <= data.count - fixedLength else {
            throw MCAPError("an apus.sample message says \(length) bytes of metadata, and has \(data.count - fixedLength)")
        }
        var metadata = SampleMetadata(elementType: type, timestamp: timestamp)
        if length > 0 {
            do {
                metadata = try MetadataCodec.decode(
                    UnsafeRawBufferPointer(rebasing: data[fixedLength..<fixedLength + length]), elementType: type, timestamp: timestamp)
            } catch {
                throw MCAPError("an apus.sample message with malformed metadata: \(error)")
            }
        }
        return (metadata, fixedLength + length..<data.count)
    }
}
