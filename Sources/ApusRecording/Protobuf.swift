// The little of Protocol Buffers' wire format (protobuf.dev/programming-guides/encoding) that the
// Foxglove image messages and their schemas need: varints, fixed32 and length-delimited fields,
// written; and a message's top-level fields, read with every length checked.

/// Writes a message field by field.
struct ProtobufWriter {
    enum WireType: UInt8 {
        case varint = 0
        case lengthDelimited = 2
        case fixed32 = 5
    }

    var bytes: [UInt8] = []

    mutating func key(_ field: UInt32, _ type: WireType) { varint(UInt64(field) << 3 | UInt64(type.rawValue)) }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func varint(_ field: UInt32, _ value: UInt64) {
        key(field, .varint)
        varint(value)
    }

    mutating func fixed32(_ field: UInt32, _ value: UInt32) {
        key(field, .fixed32)
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func bytes(_ field: UInt32, _ value: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: UInt32, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: UInt32, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        bytes(field, inner.bytes)
    }

    /// The key and length of a bytes field whose `length` bytes the caller writes next (a
    /// payload that goes to the file straight from shared memory).
    mutating func bytesHeader(_ field: UInt32, length: Int) {
        key(field, .lengthDelimited)
        varint(UInt64(length))
    }
}

/// The top-level fields of a message, read without trusting any length in it.
struct ProtobufFields {
    /// The byte range of each length-delimited field's value (the last one, if repeated).
    private(set) var delimited: [UInt32: Range<Int>] = [:]

    init(_ data: UnsafeRawBufferPointer) throws(MCAPError) {
        var offset = 0
        func varint() throws(MCAPError) -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                guard offset < data.count else { throw MCAPError("a protobuf message cut short at byte \(offset)") }
                let byte = data[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte < 0x80 { return value }
            }
            throw MCAPError("a protobuf varint longer than 10 bytes at byte \(offset)")
        }
        while offset < data.count {
            let key = try varint()
            let field = UInt32(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0: _ = try varint()
            case 1: offset += 8
            case 5: offset += 4
            case 2:
                let length = try varint()
                guard length <= UInt64(data.count - offset) else {
                    throw MCAPError("a protobuf field \(field) of \(length) bytes, with \(data.count - offset) left")
                }
                delimited[field] = offset..<offset + Int(length)
                offset += Int(length)
            default: throw MCAPError("a protobuf field \(field) of wire type \(key & 7), which Apus does not write")
            }
            guard offset <= data.count else { throw MCAPError("a protobuf message cut short in field \(field)") }
        }
    }
}
