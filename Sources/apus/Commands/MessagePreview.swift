// How `apus topic echo` shows a message: its header and a short preview of its values, read in
// place from the producer's shared memory (only what is shown is read).
import ApusNode
import ApusTransport

/// A JSON value, for `--json` lines.
enum JSONValue: Encodable {
    case int(Int64)
    case uint(UInt64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    func encode(to encoder: Encoder) throws {
        switch self {
        case .int(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .uint(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .float(let value):
            var container = encoder.singleValueContainer()
            // JSON has no NaN or infinities: they go as strings.
            if value.isFinite { try container.encode(value) } else { try container.encode(String(value)) }
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case .object(let members):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in members { try container.encode(value, forKey: Key(key)) }
        }
    }

    struct Key: CodingKey {
        let stringValue: String
        init(_ text: String) { stringValue = text }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// As it reads in a line of text.
    var text: String {
        switch self {
        case .int(let value): String(value)
        case .uint(let value): String(value)
        case .float(let value): String(value)
        case .bool(let value): String(value)
        case .string(let value): "\"\(value)\""
        case .array(let values): "[" + values.map(\.text).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.map { "\($0): \($1.text)" }.joined(separator: ", ") + "}"
        }
    }

    init(_ parameter: Parameter) {
        switch parameter {
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .float(let value): self = .float(value)
        case .string(let value): self = .string(value)
        case .bools(let values): self = .array(values.map { .bool($0) })
        case .ints(let values): self = .array(values.map { .int($0) })
        case .floats(let values): self = .array(values.map { .float($0) })
        case .strings(let values): self = .array(values.map { .string($0) })
        }
    }
}

/// The first values of a payload: numbers as numbers, `utf8` as text, `uint8` as hex.
struct MessagePreview {
    /// Elements shown of a numeric payload, characters of a text, bytes of a byte payload.
    static let numbers = 8
    static let characters = 120
    static let bytes = 32

    let value: JSONValue
    /// Whether the payload has more than is shown.
    let truncated: Bool

    init(_ input: Input) {
        let bytes = input.bytes
        let type = input.elementType
        switch type {
        case .utf8:
            let shown = bytes.prefix(Self.characters * 4)
            let text = String(decoding: shown, as: UTF8.self)
            value = .string(String(text.prefix(Self.characters)))
            truncated = text.count > Self.characters || shown.count < bytes.count
        case .uint8:
            let shown = bytes.prefix(Self.bytes)
            value = .string(shown.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " "))
            truncated = shown.count < bytes.count
        default:
            let count = bytes.count / type.byteWidth
            let shown = min(count, Self.numbers)
            value = .array((0..<shown).map { Self.element(bytes, at: $0, type) })
            truncated = shown < count
        }
    }

    /// Element `index` of a payload of `type` (not `utf8` or `uint8`), read unaligned in place.
    static func element(_ bytes: UnsafeRawBufferPointer, at index: Int, _ type: ElementType) -> JSONValue {
        let offset = index * type.byteWidth
        switch type {
        case .uint8: return .uint(UInt64(bytes[offset]))
        case .uint16: return .uint(UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
        case .uint32: return .uint(UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        case .uint64: return .uint(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        case .int8: return .int(Int64(bytes.loadUnaligned(fromByteOffset: offset, as: Int8.self)))
        case .int16: return .int(Int64(bytes.loadUnaligned(fromByteOffset: offset, as: Int16.self)))
        case .int32: return .int(Int64(bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)))
        case .int64: return .int(bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self))
        case .float16: return .float(Double(bytes.loadUnaligned(fromByteOffset: offset, as: Float16.self)))
        case .float32: return .float(Double(bytes.loadUnaligned(fromByteOffset: offset, as: Float.self)))
        case .float64: return .float(bytes.loadUnaligned(fromByteOffset: offset, as: Double.self))
        case .bool: return .bool(bytes[offset] != 0)
        case .utf8: return .string(String(UnicodeScalar(bytes[offset])))
        }
    }
}

/// One message as `apus topic echo` prints it.
struct EchoRecord {
    let topic: String
    let input: Input

    var json: JSONValue {
        let preview = MessagePreview(input)
        return .object([
            ("topic", .string(topic)),
            ("timestamp", .uint(input.timestamp)),
            ("type", .string("\(input.elementType)")),
            ("shape", .array(input.shape.map { .uint($0) })),
            ("bytes", .int(Int64(input.bytes.count))),
            ("metadata", .object(input.metadata.parameters.map { ($0.key, JSONValue($0.value)) })),
            ("preview", preview.value),
            ("truncated", .bool(preview.truncated)),
        ])
    }

    var text: String {
        let preview = MessagePreview(input)
        let seconds = input.timestamp / 1_000_000_000
        let micros = String(input.timestamp % 1_000_000_000 / 1000)
        var line = "\(topic)  t=\(seconds).\(String(repeating: "0", count: 6 - micros.count) + micros)  \(input.elementType)"
        if !input.shape.isEmpty { line += " [" + input.shape.map(String.init).joined(separator: ", ") + "]" }
        line += "  \(input.bytes.count) B"
        if !input.metadata.parameters.isEmpty {
            line += "  " + JSONValue.object(input.metadata.parameters.map { ($0.key, JSONValue($0.value)) }).text
        }
        var values = preview.value.text
        if preview.truncated { values += " …" }
        return line + "\n  " + values
    }
}
