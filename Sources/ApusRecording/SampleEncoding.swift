// How a recorded message is encoded in MCAP, chosen message by message so that Foxglove shows it
// as what it is, and always with what an exact replay needs (docs/architecture.md, "Recordings"):
// - a uint8 H×W×3 (or ×4, or H×W) image, or a flat one whose metadata gives width, height and a
//   raw encoding (as dora's camera nodes send), is a foxglove.RawImage in protobuf;
// - a uint8 array whose metadata `encoding` is jpeg, png, webp or avif is a
//   foxglove.CompressedImage;
// - up to 64 numbers (any numeric type but uint8, or bools) are JSON that Foxglove plots;
// - anything else is apus.sample (SampleRecord).
// The image messages carry the apus.sample header in field 1000, which protobuf readers skip; the
// JSON ones carry the whole message in base64 under `apus`.
@_spi(Fuzzing) import ApusTransport

public enum SampleEncoding: Sendable, Hashable, CaseIterable {
    case rawImage, compressedImage, numbers, sample

    /// The protobuf field of the image messages that holds the apus.sample header.
    static let headerField: UInt32 = 1000
    /// The most elements a numbers message has.
    public static let maxNumbers = 64

    public var messageEncoding: String {
        switch self {
        case .rawImage, .compressedImage: "protobuf"
        case .numbers: "json"
        case .sample: SampleRecord.messageEncoding
        }
    }

    public var schemaName: String {
        switch self {
        case .rawImage: "foxglove.RawImage"
        case .compressedImage: "foxglove.CompressedImage"
        case .numbers: "apus.Numbers"
        case .sample: SampleRecord.schemaName
        }
    }

    /// The schema record's name, encoding and data (built when a channel is first added).
    public var schema: (name: String, encoding: String, data: [UInt8]) {
        switch self {
        case .rawImage: (schemaName, "protobuf", FoxgloveSchemas.rawImage)
        case .compressedImage: (schemaName, "protobuf", FoxgloveSchemas.compressedImage)
        case .numbers: (schemaName, "jsonschema", Array(FoxgloveSchemas.numbers.utf8))
        case .sample: (schemaName, SampleRecord.schemaEncoding, Array(SampleRecord.schemaText.utf8))
        }
    }

    /// The encoding of a channel with this message encoding and schema name; nil: not one Apus
    /// wrote. (The player asks for every message: names only, no schema data built.)
    public init?(messageEncoding: String, schemaName: String) {
        guard let known = Self.allCases.first(where: { $0.messageEncoding == messageEncoding && $0.schemaName == schemaName }) else {
            return nil
        }
        self = known
    }

    // MARK: Choosing

    /// The encoding a message with `metadata` and `payloadLength` bytes goes in.
    public static func choose(_ metadata: SampleMetadata, payloadLength: Int) -> SampleEncoding {
        if metadata.elementType == .uint8 {
            if compressedFormat(metadata) != nil { return .compressedImage }
            if RawImage(metadata, payloadLength: payloadLength) != nil { return .rawImage }
            return .sample
        }
        guard metadata.elementType != .utf8, payloadLength > 0, payloadLength % metadata.elementType.byteWidth == 0,
            payloadLength / metadata.elementType.byteWidth <= maxNumbers
        else { return .sample }
        return .numbers
    }

    private static func compressedFormat(_ metadata: SampleMetadata) -> String? {
        guard case .string(let encoding) = metadata["encoding"] else { return nil }
        switch encoding.lowercased() {
        case "jpeg", "jpg": return "jpeg"
        case let format where ["png", "webp", "avif"].contains(format): return format
        default: return nil
        }
    }

    /// An image's size and pixel layout, from its shape or (flat) from its metadata.
    struct RawImage {
        var width: UInt32
        var height: UInt32
        var encoding: String
        var step: UInt32

        private static let channelsOf = ["mono8": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4]

        init?(_ metadata: SampleMetadata, payloadLength: Int) {
            var declared: String?
            if case .string(let encoding) = metadata["encoding"] { declared = encoding.lowercased() }
            let (height, width, channels): (UInt64, UInt64, UInt64)
            switch metadata.shape.count {
            case 2, 3:
                (height, width) = (metadata.shape[0], metadata.shape[1])
                channels = metadata.shape.count == 3 ? metadata.shape[2] : 1
            case 0:
                guard case .int(let w) = metadata["width"], case .int(let h) = metadata["height"], w > 0, h > 0,
                    let declared, let count = Self.channelsOf[declared]
                else { return nil }
                (height, width, channels) = (UInt64(h), UInt64(w), UInt64(count))
            default:
                return nil
            }
            guard [1, 3, 4].contains(channels), width > 0, height > 0, width <= UInt64(UInt32.max / 4), height <= UInt64(UInt32.max),
                height.multipliedReportingOverflow(by: width * channels) == (UInt64(payloadLength), false)
            else { return nil }
            if let declared, Self.channelsOf[declared] == Int(channels) {
                encoding = declared
            } else {
                encoding = channels == 1 ? "mono8" : channels == 3 ? "rgb8" : "rgba8"
            }
            self.width = UInt32(width)
            self.height = UInt32(height)
            self.step = UInt32(width * channels)
        }
    }

    // MARK: Encoding

    /// The bytes of the message before its payload, and whether the payload follows them as it
    /// was sent (the image messages and apus.sample); a numbers message is whole in the head.
    /// `wallTime` (nanoseconds since 1970) goes in the images' timestamp.
    public func head(_ metadata: SampleMetadata, payload: UnsafeRawBufferPointer, wallTime: UInt64) -> (head: [UInt8], payloadFollows: Bool)
    {
        let header = SampleRecord.header(metadata)
        switch self {
        case .sample:
            return (header, true)
        case .rawImage, .compressedImage:
            var message = ProtobufWriter()
            message.message(1) {
                $0.varint(1, wallTime / 1_000_000_000)
                $0.varint(2, wallTime % 1_000_000_000)
            }
            if case .string(let frame) = metadata["frame_id"] { message.string(self == .rawImage ? 7 : 4, frame) }
            if self == .rawImage, let image = RawImage(metadata, payloadLength: payload.count) {
                message.fixed32(2, image.width)
                message.fixed32(3, image.height)
                message.string(4, image.encoding)
                message.fixed32(5, image.step)
            } else if let format = Self.compressedFormat(metadata) {
                message.string(3, format)
            }
            message.bytes(Self.headerField, header)
            message.bytesHeader(self == .rawImage ? 6 : 2, length: payload.count)
            return (message.bytes, true)
        case .numbers:
            return (Self.numbersJSON(metadata, payload: payload, header: header), false)
        }
    }

    private static func numbersJSON(_ metadata: SampleMetadata, payload: UnsafeRawBufferPointer, header: [UInt8]) -> [UInt8] {
        let width = metadata.elementType.byteWidth
        let count = payload.count / width
        var numbers: [UInt8] = []
        for index in 0..<count {
            if index > 0 { numbers.append(UInt8(ascii: ",")) }
            numbers += Array(number(at: index * width, in: payload, metadata.elementType).utf8)
        }
        var json = Array("{".utf8)
        if count == 1 { json += Array("\"value\":".utf8) + numbers + [UInt8(ascii: ",")] }
        json += Array("\"values\":[".utf8) + numbers + Array("],\"apus\":\"".utf8)
        Base64.encode(header + Array(payload), into: &json)
        json += Array("\"}".utf8)
        return json
    }

    /// One element as a JSON value (null for NaN and the infinities, which JSON lacks).
    private static func number(at offset: Int, in payload: UnsafeRawBufferPointer, _ type: ElementType) -> String {
        func load<T>(_: T.Type) -> T { payload.loadUnaligned(fromByteOffset: offset, as: T.self) }
        func finite<T: BinaryFloatingPoint & LosslessStringConvertible>(_ value: T) -> String {
            value.isFinite ? value.description : "null"
        }
        switch type {
        case .uint8, .utf8: return String(load(UInt8.self))
        case .uint16: return String(UInt16(littleEndian: load(UInt16.self)))
        case .uint32: return String(UInt32(littleEndian: load(UInt32.self)))
        case .uint64: return String(UInt64(littleEndian: load(UInt64.self)))
        case .int8: return String(load(Int8.self))
        case .int16: return String(Int16(littleEndian: load(Int16.self)))
        case .int32: return String(Int32(littleEndian: load(Int32.self)))
        case .int64: return String(Int64(littleEndian: load(Int64.self)))
        case .float16: return finite(Float(Float16(bitPattern: UInt16(littleEndian: load(UInt16.self)))))
        case .float32: return finite(Float(bitPattern: UInt32(littleEndian: load(UInt32.self))))
        case .float64: return finite(Double(bitPattern: UInt64(littleEndian: load(UInt64.self))))
        case .bool: return load(UInt8.self) != 0 ? "true" : "false"
        }
    }

    // MARK: Decoding

    /// Hands `body` the metadata and payload of a recorded message in this encoding, exactly as
    /// they were sent; a malformed one is an error that says what is wrong.
    public func decode<Result>(_ data: UnsafeRawBufferPointer, _ body: (SampleMetadata, UnsafeRawBufferPointer) throws(MCAPError) -> Result)
        throws(MCAPError) -> Result
    {
        switch self {
        case .sample:
            let (metadata, payload) = try SampleRecord.decode(data)
            return try body(metadata, UnsafeRawBufferPointer(rebasing: data[payload]))
        case .rawImage, .compressedImage:
            let fields = try ProtobufFields(data)
            guard let header = fields.delimited[Self.headerField] else {
                throw MCAPError("a \(schemaName) message without Apus's header (field \(Self.headerField)): not recorded by Apus")
            }
            let payload = fields.delimited[self == .rawImage ? 6 : 2] ?? 0..<0
            let (metadata, rest) = try SampleRecord.decode(UnsafeRawBufferPointer(rebasing: data[header]))
            guard rest.isEmpty else { throw MCAPError("a \(schemaName) message whose Apus header is followed by \(rest.count) bytes") }
            return try body(metadata, UnsafeRawBufferPointer(rebasing: data[payload]))
        case .numbers:
            guard let encoded = Self.apusField(data), let whole = Base64.decode(encoded) else {
                throw MCAPError("a JSON numbers message without a base64 \"apus\" field: not recorded by Apus")
            }
            return try whole.withUnsafeBytes { bytes in
                Swift.Result { () throws(MCAPError) -> Result in try SampleEncoding.sample.decode(bytes, body) }
            }.get()
        }
    }

    /// The base64 text of the `"apus":"…"` member (Apus writes it last, and nothing before it is
    /// a string).
    private static func apusField(_ json: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let key = Array("\"apus\":\"".utf8)
        guard json.count > key.count else { return nil }
        var start = -1
        for index in 0...(json.count - key.count) where json[index] == key[0] {
            if (0..<key.count).allSatisfy({ json[index + $0] == key[$0] }) {
                start = index + key.count
                break
            }
        }
        guard start >= 0, let end = json[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return UnsafeRawBufferPointer(rebasing: json[start..<end])
    }
}

extension MCAPReader {
    /// How Apus encoded the messages of `channel`; nil: a channel Apus did not write.
    public func encoding(of channel: Channel) -> SampleEncoding? {
        SampleEncoding(messageEncoding: channel.messageEncoding, schemaName: schemas[channel.schema]?.name ?? "")
    }
}
