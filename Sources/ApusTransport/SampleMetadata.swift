/// The element type of a payload, so arrays arrive with the type they were sent with.
/// Raw values are the `APUS_TYPE_*` numbers of the C API.
public enum ElementType: UInt8, Sendable, CaseIterable {
    case uint8 = 0
    case uint16, uint32, uint64
    case int8, int16, int32, int64
    case float16, float32, float64
    case bool, utf8

    public var byteWidth: Int {
        switch self {
        case .uint8, .int8, .bool, .utf8: 1
        case .uint16, .int16, .float16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        }
    }
}

/// A typed metadata value (docs/architecture.md, "Messages").
public enum Parameter: Equatable, Sendable {
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case bools([Bool])
    case ints([Int64])
    case floats([Double])
    case strings([String])

    var tag: UInt8 {
        switch self {
        case .bool: 1
        case .int: 2
        case .float: 3
        case .string: 4
        case .bools: 5
        case .ints: 6
        case .floats: 7
        case .strings: 8
        }
    }
}

/// What travels with a payload: element type, shape, timestamp and user parameters.
public struct SampleMetadata: Equatable, Sendable {
    public var elementType: ElementType
    /// Dimensions; empty means a flat array of `payloadLength / elementType.byteWidth` elements.
    public var shape: [UInt64]
    /// Monotonic nanoseconds, stamped when the sample is sent (0 lets the publisher stamp it).
    public var timestamp: UInt64
    /// Parameters in the order they were given; keys are unique.
    public var parameters: [(key: String, value: Parameter)]

    public init(
        elementType: ElementType = .uint8, shape: [UInt64] = [], timestamp: UInt64 = 0,
        parameters: [(key: String, value: Parameter)] = []
    ) {
        self.elementType = elementType
        self.shape = shape
        self.timestamp = timestamp
        self.parameters = parameters
    }

    public subscript(key: String) -> Parameter? {
        parameters.first { $0.key == key }?.value
    }

    public static func == (lhs: SampleMetadata, rhs: SampleMetadata) -> Bool {
        lhs.elementType == rhs.elementType && lhs.shape == rhs.shape && lhs.timestamp == rhs.timestamp
            && lhs.parameters.elementsEqual(rhs.parameters) { $0.key == $1.key && $0.value == $1.value }
    }
}

/// The metadata area of a sample: `rank u32, shape u64 × rank, count u32,
/// (keyLength u16, key, tag u8, value)…`, little-endian. Decoding checks every length against the
/// area, because another process wrote it.
@_spi(Fuzzing) public enum MetadataCodec {
    static let maxRank = 32

    /// Rank 0 and no parameters, the common case, is a zero-length area: nothing is written
    /// and the receiver does not touch the metadata's cache line.
    static let emptyLength = 0

    static func isEmpty(_ metadata: SampleMetadata) -> Bool {
        metadata.shape.isEmpty && metadata.parameters.isEmpty
    }

    @_spi(Fuzzing) public static func encode(_ metadata: SampleMetadata) -> [UInt8] {
        var bytes: [UInt8] = []
        append(UInt32(metadata.shape.count), to: &bytes)
        for dimension in metadata.shape { append(dimension, to: &bytes) }
        append(UInt32(metadata.parameters.count), to: &bytes)
        for (key, value) in metadata.parameters {
            let keyBytes = Array(key.utf8.prefix(Int(UInt16.max)))
            append(UInt16(keyBytes.count), to: &bytes)
            bytes += keyBytes
            bytes.append(value.tag)
            switch value {
            case .bool(let flag): bytes.append(flag ? 1 : 0)
            case .int(let number): append(UInt64(bitPattern: number), to: &bytes)
            case .float(let number): append(number.bitPattern, to: &bytes)
            case .string(let text): appendString(text, to: &bytes)
            case .bools(let flags):
                append(UInt32(flags.count), to: &bytes)
                bytes += flags.map { $0 ? 1 : 0 }
            case .ints(let numbers):
                append(UInt32(numbers.count), to: &bytes)
                for number in numbers { append(UInt64(bitPattern: number), to: &bytes) }
            case .floats(let numbers):
                append(UInt32(numbers.count), to: &bytes)
                for number in numbers { append(number.bitPattern, to: &bytes) }
            case .strings(let texts):
                append(UInt32(texts.count), to: &bytes)
                for text in texts { appendString(text, to: &bytes) }
            }
        }
        return bytes
    }

    @_spi(Fuzzing) public static func decode(_ area: UnsafeRawBufferPointer, elementType: ElementType, timestamp: UInt64)
        throws(TransportError) -> SampleMetadata
    {
        if area.count == emptyLength {
            return SampleMetadata(elementType: elementType, timestamp: timestamp)
        }
        var reader = ByteReader(area, corrupt: true)
        let rank = Int(try reader.u32())
        guard rank <= maxRank else { throw .corrupted("shape of rank \(rank)") }
        var shape: [UInt64] = []
        for _ in 0..<rank { shape.append(try reader.u64()) }
        let count = Int(try reader.u32())
        guard count <= area.count else { throw .corrupted("\(count) parameters in \(area.count) bytes") }
        var parameters: [(key: String, value: Parameter)] = []
        for _ in 0..<count {
            let key = try reader.string(length: Int(try reader.u16()))
            let value: Parameter
            switch try reader.u8() {
            case 1: value = .bool(try reader.u8() != 0)
            case 2: value = .int(Int64(bitPattern: try reader.u64()))
            case 3: value = .float(Double(bitPattern: try reader.u64()))
            case 4: value = .string(try reader.string(length: Int(try reader.u32())))
            case 5: value = .bools(try reader.list { (r: inout ByteReader) throws(TransportError) in try r.u8() != 0 })
            case 6: value = .ints(try reader.list { (r: inout ByteReader) throws(TransportError) in Int64(bitPattern: try r.u64()) })
            case 7: value = .floats(try reader.list { (r: inout ByteReader) throws(TransportError) in Double(bitPattern: try r.u64()) })
            case 8:
                value = .strings(try reader.list { (r: inout ByteReader) throws(TransportError) in try r.string(length: Int(try r.u32())) })
            case let tag: throw .corrupted("parameter '\(key)' has unknown type tag \(tag)")
            }
            parameters.append((key, value))
        }
        return SampleMetadata(elementType: elementType, shape: shape, timestamp: timestamp, parameters: parameters)
    }

    private static func append<Integer: FixedWidthInteger>(_ value: Integer, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    private static func appendString(_ text: String, to bytes: inout [UInt8]) {
        let utf8 = Array(text.utf8)
        append(UInt32(utf8.count), to: &bytes)
        bytes += utf8
    }
}
