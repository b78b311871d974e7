@testable import ApusRecording
import ApusTransport
import Testing

@Suite struct SampleEncodingTests {
    /// Encodes a message as the recorder does and decodes it as replay does.
    func roundTrip(_ metadata: SampleMetadata, _ payload: [UInt8]) throws -> (SampleEncoding, SampleMetadata, [UInt8]) {
        let encoding = SampleEncoding.choose(metadata, payloadLength: payload.count)
        let message = payload.withUnsafeBytes { payload in
            let (head, follows) = encoding.head(metadata, payload: payload, wallTime: 1_700_000_000_123_456_789)
            return head + (follows ? Array(payload) : [])
        }
        let (decoded, bytes) = try message.withUnsafeBytes { data in
            try encoding.decode(data) { (metadata, payload) throws(MCAPError) in (metadata, Array(payload)) }
        }
        return (encoding, decoded, bytes)
    }

    @Test func everyKindOfMessageComesBackExactly() throws {
        let parameters: [(key: String, value: Parameter)] = [
            ("frame_id", .string("cam0")), ("n", .int(-3)), ("xs", .floats([1.5, -0.25])),
        ]
        let cases: [(SampleMetadata, [UInt8], SampleEncoding)] = [
            (SampleMetadata(elementType: .uint8, shape: [4, 5, 3], timestamp: 42, parameters: parameters), Array(0..<60), .rawImage),
            (SampleMetadata(elementType: .uint8, shape: [4, 5], timestamp: 43), Array(0..<20), .rawImage),
            (
                SampleMetadata(
                    elementType: .uint8, timestamp: 44,
                    parameters: [("width", .int(2)), ("height", .int(2)), ("encoding", .string("bgr8"))]),
                Array(0..<12), .rawImage
            ),
            (
                SampleMetadata(elementType: .uint8, timestamp: 45, parameters: [("encoding", .string("JPEG"))]),
                [0xFF, 0xD8, 1, 2, 0xFF, 0xD9], .compressedImage
            ),
            (SampleMetadata(elementType: .uint8, shape: [4, 5, 2], timestamp: 46), Array(0..<40), .sample),
            (SampleMetadata(elementType: .uint8, shape: [4, 5, 3], timestamp: 46), Array(0..<59), .sample),
            (SampleMetadata(elementType: .utf8, timestamp: 47), Array("héllo".utf8), .sample),
            (SampleMetadata(elementType: .float32, shape: [65], timestamp: 48), [UInt8](repeating: 1, count: 260), .sample),
            (SampleMetadata(elementType: .float64, timestamp: 49), [UInt8](repeating: 0, count: 0), .sample),
        ]
        for (metadata, payload, expected) in cases {
            let (encoding, decoded, bytes) = try roundTrip(metadata, payload)
            #expect(encoding == expected, "\(metadata)")
            #expect(decoded == metadata && bytes == payload, "\(metadata)")
        }
        // Numbers of every numeric type, NaN and the infinities included, come back bit for bit.
        for type in ElementType.allCases where type != .uint8 && type != .utf8 {
            for count in [1, 3, 64] {
                let payload = (0..<count * type.byteWidth).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 0xF0) }
                let metadata = SampleMetadata(elementType: type, timestamp: 7, parameters: parameters)
                let (encoding, decoded, bytes) = try roundTrip(metadata, payload)
                #expect(encoding == .numbers && decoded == metadata && bytes == payload, "\(type) × \(count)")
            }
        }
    }

    @Test func numbersAreJSONThatPlots() throws {
        let values: [Float] = [1.5, .nan, -.infinity, 3]
        let payload = values.withUnsafeBytes { Array($0) }
        let metadata = SampleMetadata(elementType: .float32, timestamp: 9)
        let text = payload.withUnsafeBytes {
            String(decoding: SampleEncoding.numbers.head(metadata, payload: $0, wallTime: 0).head, as: UTF8.self)
        }
        #expect(text.hasPrefix(#"{"values":[1.5,null,null,3.0],"apus":""#))
        let one = [Int64(-1) << 62].withUnsafeBytes { Array($0) }
        let single = one.withUnsafeBytes {
            String(decoding: SampleEncoding.numbers.head(SampleMetadata(elementType: .int64), payload: $0, wallTime: 0).head, as: UTF8.self)
        }
        #expect(single.hasPrefix(#"{"value":-4611686018427387904,"values":[-4611686018427387904],"apus":""#))
    }

    @Test func hostileMessagesAreErrorsThatSayWhat() {
        func problem(_ encoding: SampleEncoding, _ bytes: [UInt8]) -> String? {
            bytes.withUnsafeBytes { data -> String? in
                do {
                    try encoding.decode(data) { (_, _) throws(MCAPError) in () }
                    return nil
                } catch {
                    return "\(error)"
                }
            }
        }
        #expect(problem(.rawImage, [0x0A, 0x7F])?.contains("protobuf field 1 of 127 bytes") == true)
        #expect(
            problem(.rawImage, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])?.contains("longer than 10 bytes") == true
        )
        #expect(problem(.rawImage, [0x0B])?.contains("wire type 3") == true)
        #expect(problem(.compressedImage, [0x1A, 0x01, 0x41])?.contains("without Apus's header") == true)
        #expect(problem(.rawImage, [0xC2, 0x3E, 0x02, 0x01, 0x01])?.contains("at least 16") == true)
        #expect(problem(.numbers, Array(#"{"values":[1]}"#.utf8))?.contains("without a base64") == true)
        #expect(problem(.numbers, Array(#"{"apus":"!!!!"}"#.utf8))?.contains("without a base64") == true)
        #expect(problem(.numbers, Array(#"{"apus":"AAAA"}"#.utf8))?.contains("at least 16") == true)
        #expect(problem(.numbers, Array(#"{"apus":""#.utf8)) != nil)
        let payload: [UInt8] = [1, 2, 3, 4]
        let message = payload.withUnsafeBytes {
            SampleEncoding.rawImage.head(SampleMetadata(elementType: .uint8, shape: [2, 2]), payload: $0, wallTime: 1).head + payload
        }
        #expect(problem(.rawImage, message) == nil)
        for length in 0..<message.count { _ = problem(.rawImage, Array(message.prefix(length))) }  // every cut: never a crash
    }

    @Test func base64MatchesTheStandard() {
        for (bytes, text) in [
            ([UInt8](), ""), ([0x66], "Zg=="), ([0x66, 0x6F], "Zm8="), ([0x66, 0x6F, 0x6F], "Zm9v"), (Array("foobar".utf8), "Zm9vYmFy"),
        ] {
            var encoded: [UInt8] = []
            Base64.encode(bytes, into: &encoded)
            #expect(String(decoding: encoded, as: UTF8.self) == text)
            #expect(Array(text.utf8).withUnsafeBytes { Base64.decode($0) } == bytes)
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Z*==", "=Zg="] {
            #expect(Array(bad.utf8).withUnsafeBytes { Base64.decode($0) } == nil, "\(bad)")
        }
    }
}
