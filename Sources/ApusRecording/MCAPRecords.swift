// MCAP's records (mcap.dev/spec, major version 0): opcodes and how their fields are laid out.
// Every integer is little-endian; a string is a u32 length and UTF-8 bytes; a map is a u32 byte
// length and its entries; a record is an opcode, a u64 content length and the content.

public enum MCAP {
    /// At the start and the end of every file.
    public static let magic: [UInt8] = [0x89, 0x4D, 0x43, 0x41, 0x50, 0x30, 0x0D, 0x0A]

    public enum Opcode: UInt8, Sendable {
        case header = 0x01
        case footer = 0x02
        case schema = 0x03
        case channel = 0x04
        case message = 0x05
        case chunk = 0x06
        case messageIndex = 0x07
        case chunkIndex = 0x08
        case attachment = 0x09
        case attachmentIndex = 0x0A
        case statistics = 0x0B
        case metadata = 0x0C
        case metadataIndex = 0x0D
        case summaryOffset = 0x0E
        case dataEnd = 0x0F
    }
}

/// Builds record contents and whole records.
struct RecordBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }

    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        u32(UInt32(utf8.count))
        bytes += utf8
    }

    /// A u32-prefixed byte string (a schema's data).
    mutating func data(_ data: [UInt8]) {
        u32(UInt32(data.count))
        bytes += data
    }

    mutating func stringMap(_ entries: [(String, String)]) {
        var inner = RecordBytes()
        for (key, value) in entries {
            inner.string(key)
            inner.string(value)
        }
        u32(UInt32(inner.bytes.count))
        bytes += inner.bytes
    }

    /// `map<u16, u64>`, as the chunk index's message index offsets and the statistics' counts.
    mutating func countMap(_ entries: [(UInt16, UInt64)]) {
        u32(UInt32(entries.count * 10))
        for (key, value) in entries {
            u16(key)
            u64(value)
        }
    }

    /// A whole record: opcode, content length, content.
    static func record(_ opcode: MCAP.Opcode, _ build: (inout RecordBytes) -> Void) -> [UInt8] {
        var content = RecordBytes()
        build(&content)
        var record = RecordBytes()
        record.u8(opcode.rawValue)
        record.u64(UInt64(content.bytes.count))
        return record.bytes + content.bytes
    }
}
