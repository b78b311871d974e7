// The schemas of the channels Foxglove shows as it shows ROS data: foxglove.RawImage and
// foxglove.CompressedImage as protobuf (a FileDescriptorSet, as MCAP's protobuf encoding wants,
// built here from the messages' published field numbers), and the JSON schema of the numbers
// channels it plots.

enum FoxgloveSchemas {
    /// A field of a message in a FileDescriptorProto: its protobuf type number (FieldDescriptorProto.Type).
    private struct Field {
        var name: String
        var number: UInt64
        var type: UInt64
        var typeName: String? = nil
    }

    private static let int64: UInt64 = 3
    private static let int32: UInt64 = 5
    private static let fixed32: UInt64 = 7
    private static let string: UInt64 = 9
    private static let message: UInt64 = 11
    private static let bytes: UInt64 = 12

    private static func file(name: String, package: String, dependencies: [String], message: String, fields: [Field]) -> [UInt8] {
        var file = ProtobufWriter()
        file.string(1, name)
        file.string(2, package)
        for dependency in dependencies { file.string(3, dependency) }
        file.message(4) { descriptor in
            descriptor.string(1, message)
            for field in fields {
                descriptor.message(2) {
                    $0.string(1, field.name)
                    $0.varint(3, field.number)
                    $0.varint(4, 1)  // LABEL_OPTIONAL
                    $0.varint(5, field.type)
                    if let typeName = field.typeName { $0.string(6, typeName) }
                }
            }
        }
        file.string(12, "proto3")
        return file.bytes
    }

    private static let timestampFile = file(
        name: "google/protobuf/timestamp.proto", package: "google.protobuf", dependencies: [], message: "Timestamp",
        fields: [Field(name: "seconds", number: 1, type: int64), Field(name: "nanos", number: 2, type: int32)])

    private static func set(_ files: [[UInt8]]) -> [UInt8] {
        var set = ProtobufWriter()
        for file in files { set.bytes(1, file) }
        return set.bytes
    }

    private static let timestamp = Field(name: "timestamp", number: 1, type: message, typeName: ".google.protobuf.Timestamp")

    /// A Foxglove message with a timestamp (field 1) and `fields`, with the files it needs.
    private static func foxglove(_ message: String, _ fields: [Field]) -> [UInt8] {
        set([
            timestampFile,
            file(
                name: "foxglove/\(message).proto", package: "foxglove", dependencies: ["google/protobuf/timestamp.proto"],
                message: message, fields: [timestamp] + fields),
        ])
    }

    /// foxglove.RawImage: timestamp 1, frame_id 7, width 2, height 3, encoding 4, step 5, data 6.
    static let rawImage = foxglove(
        "RawImage",
        [
            Field(name: "frame_id", number: 7, type: string), Field(name: "width", number: 2, type: fixed32),
            Field(name: "height", number: 3, type: fixed32), Field(name: "encoding", number: 4, type: string),
            Field(name: "step", number: 5, type: fixed32), Field(name: "data", number: 6, type: bytes),
        ])

    /// foxglove.CompressedImage: timestamp 1, frame_id 4, data 2, format 3.
    static let compressedImage = foxglove(
        "CompressedImage",
        [
            Field(name: "frame_id", number: 4, type: string), Field(name: "data", number: 2, type: bytes),
            Field(name: "format", number: 3, type: string),
        ])

    /// The numbers channels' messages: `value` (a message of one element), `values` (all of
    /// them, in order) and `apus`, the whole message for an exact replay.
    static let numbers = """
        {"title":"apus.Numbers","type":"object","properties":{\
        "value":{"type":["number","boolean","null"],"description":"the element, when the message has one"},\
        "values":{"type":"array","items":{"type":["number","boolean","null"]},"description":"the elements in row-major order (NaN and infinities are null)"},\
        "apus":{"type":"string","contentEncoding":"base64","description":"the message as apus.sample (element type, shape, metadata, send timestamp, payload), for replay"}}}
        """
}
