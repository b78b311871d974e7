// apus_metadata_*: element type, shape and typed parameters to send with a message.
import ApusNode
import ApusTransport
import CApusHeader
import Glibc

final class CMetadata {
    /// Parameters one metadata object holds at most (a sample's metadata area is far smaller).
    static let maximumParameters = 1024

    private(set) var metadata = Metadata()
    /// Where each key is in `metadata.parameters`, so that setting a key costs the same however
    /// many there are.
    private var positions: [String: Int] = [:]

    func set(_ key: UnsafePointer<CChar>?, _ value: Parameter) throws(APIError) {
        let key = try requireText(key, "key")
        guard !key.isEmpty else { throw .invalidArgument("the key is empty") }
        guard key.utf8.count <= Int(UInt16.max) else { throw .invalidArgument("the key is \(key.utf8.count) bytes long; at most 65535") }
        if let index = positions[key] {
            metadata.parameters[index].value = value
            return
        }
        guard metadata.parameters.count < Self.maximumParameters else {
            throw .invalidArgument(
                "'\(key)' would be parameter \(Self.maximumParameters + 1); metadata holds at most \(Self.maximumParameters)")
        }
        positions[key] = metadata.parameters.count
        metadata.parameters.append((key, value))
    }

    func setElementType(_ type: ElementType) {
        metadata.elementType = type
    }

    func setShape(_ shape: [UInt64]) {
        metadata.shape = shape
    }

    func clear() {
        metadata = Metadata()
        positions = [:]
    }
}

/// The metadata to send with a message: the object behind `handle`, or the default for NULL.
func sendMetadata(_ handle: OpaquePointer?) throws(APIError) -> Metadata {
    guard let handle else { return Metadata() }
    return try resolve(handle, .metadata, as: CMetadata.self).metadata
}

private func metadataCall(_ function: StaticString, _ handle: OpaquePointer?, _ body: (CMetadata) throws(APIError) -> Void) -> apus_status_t
{
    status(function) { () throws(APIError) in try body(try resolve(handle, .metadata, as: CMetadata.self)) }
}

/// `count` values at `values`, which may be NULL only when there are none.
private func values<T>(_ values: UnsafePointer<T>?, _ count: Int) throws(APIError) -> [T] {
    guard count >= 0 else { throw .invalidArgument("count \(UInt(bitPattern: count)) is too large") }
    guard count > 0 else { return [] }
    guard let values else { throw .invalidArgument("values is NULL but count is \(count)") }
    return Array(UnsafeBufferPointer(start: values, count: count))
}

@c @implementation
public func apus_metadata_new() -> OpaquePointer? {
    value("apus_metadata_new", fallback: nil) { () throws(APIError) -> OpaquePointer? in
        try register(CMetadata(), .metadata)
    }
}

@c @implementation
public func apus_metadata_free(_ metadata: OpaquePointer?) -> apus_status_t {
    freeHandle(metadata, .metadata, "apus_metadata_free")
}

@c @implementation
public func apus_metadata_clear(_ metadata: OpaquePointer?) -> apus_status_t {
    metadataCall("apus_metadata_clear", metadata) { $0.clear() }
}

@c @implementation
public func apus_metadata_set_type(_ metadata: OpaquePointer?, _ type: apus_type_t) -> apus_status_t {
    metadataCall("apus_metadata_set_type", metadata) { (builder: CMetadata) throws(APIError) in
        guard type.rawValue <= UInt8.max, let elementType = ElementType(rawValue: UInt8(type.rawValue)) else {
            throw .invalidArgument("\(type.rawValue) is not an element type (APUS_TYPE_UINT8 … APUS_TYPE_UTF8)")
        }
        builder.setElementType(elementType)
    }
}

@c @implementation
public func apus_metadata_set_shape(_ metadata: OpaquePointer?, _ dims: UnsafePointer<UInt64>?, _ rank: Int) -> apus_status_t {
    metadataCall("apus_metadata_set_shape", metadata) { (builder: CMetadata) throws(APIError) in
        guard rank <= 32 else { throw .invalidArgument("rank \(UInt(bitPattern: rank)) is more than 32 dimensions") }
        builder.setShape(try values(dims, rank))
    }
}

@c @implementation
public func apus_metadata_set_bool(_ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Bool) -> apus_status_t {
    metadataCall("apus_metadata_set_bool", metadata) { (builder: CMetadata) throws(APIError) in try builder.set(key, .bool(value)) }
}

@c @implementation
public func apus_metadata_set_int(_ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Int64) -> apus_status_t {
    metadataCall("apus_metadata_set_int", metadata) { (builder: CMetadata) throws(APIError) in try builder.set(key, .int(value)) }
}

@c @implementation
public func apus_metadata_set_float(_ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: Double) -> apus_status_t {
    metadataCall("apus_metadata_set_float", metadata) { (builder: CMetadata) throws(APIError) in try builder.set(key, .float(value)) }
}

@c @implementation
public func apus_metadata_set_string(_ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?)
    -> apus_status_t
{
    metadataCall("apus_metadata_set_string", metadata) { (builder: CMetadata) throws(APIError) in
        try builder.set(key, .string(try requireText(value, "value")))
    }
}

@c @implementation
public func apus_metadata_set_bools(
    _ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ values: UnsafePointer<Bool>?, _ count: Int
) -> apus_status_t {
    metadataCall("apus_metadata_set_bools", metadata) { (builder: CMetadata) throws(APIError) in
        // Read as bytes: a C bool that is neither 0 nor 1 must not reach Swift's Bool.
        let bytes = try ApusCAPI.values(values.map { UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self) }, count)
        try builder.set(key, .bools(bytes.map { $0 != 0 }))
    }
}

@c @implementation
public func apus_metadata_set_ints(
    _ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ values: UnsafePointer<Int64>?, _ count: Int
) -> apus_status_t {
    metadataCall("apus_metadata_set_ints", metadata) { (builder: CMetadata) throws(APIError) in
        try builder.set(key, .ints(try ApusCAPI.values(values, count)))
    }
}

@c @implementation
public func apus_metadata_set_floats(
    _ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ values: UnsafePointer<Double>?, _ count: Int
) -> apus_status_t {
    metadataCall("apus_metadata_set_floats", metadata) { (builder: CMetadata) throws(APIError) in
        try builder.set(key, .floats(try ApusCAPI.values(values, count)))
    }
}

@c @implementation
public func apus_metadata_set_strings(
    _ metadata: OpaquePointer?, _ key: UnsafePointer<CChar>?, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int
) -> apus_status_t {
    metadataCall("apus_metadata_set_strings", metadata) { (builder: CMetadata) throws(APIError) in
        var texts: [String] = []
        for (index, pointer) in try ApusCAPI.values(values, count).enumerated() {
            texts.append(try requireText(pointer, "values[\(index)]"))
        }
        try builder.set(key, .strings(texts))
    }
}
