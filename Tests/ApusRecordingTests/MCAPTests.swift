@testable import ApusRecording
import Foundation
import Testing

@Suite struct MCAPTests {
    @Test func crc32MatchesTheStandardCheckValue() {
        let text = Array("123456789".utf8)
        #expect(text.withUnsafeBytes { CRC32.of($0) } == 0xCBF4_3926)
        // Any split gives the same value as one pass (the eight-byte loop and the tail agree).
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = bytes.withUnsafeBytes { CRC32.of($0) }
        // ISA-L's (when installed), zlib's and the tables' agree.
        var tables = CRC32()
        bytes.withUnsafeBytes { tables.updateInSwift($0.baseAddress!, count: $0.count) }
        #expect(tables.value == whole)
        var zlib = CRC32()
        bytes.withUnsafeBytes { zlib.updateInZlib($0.baseAddress!, count: $0.count) }
        #expect(zlib.value == whole)
        for split in [0, 1, 7, 8, 9, 500, 999] {
            var crc = CRC32()
            crc.update(Array(bytes[..<split]))
            crc.update(Array(bytes[split...]))
            #expect(crc.value == whole)
        }
    }

    @Test func whatTheWriterWritesTheReaderReadsBack() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("apus-mcap-\(getpid()).mcap").path
        defer { unlink(path) }
        let writer = try MCAPWriter(path: path, library: "test", chunkSize: 1024)
        let schema = try writer.addSchema(name: "s", encoding: "e", data: [1, 2, 3])
        let channel = try writer.addChannel(topic: "a/b", messageEncoding: "m", schema: schema, metadata: [("k", "v")])
        for index in 0..<100 {
            let data = [UInt8](repeating: UInt8(index), count: index)
            try data.withUnsafeBytes {
                try writer.write(channel: channel, sequence: UInt32(index), logTime: UInt64(index), publishTime: 7, parts: [$0])
            }
        }
        // Larger than a chunk: a chunk of its own, written from where it lies.
        let big = [UInt8](repeating: 100, count: 5000)
        try big.withUnsafeBytes { try writer.write(channel: channel, sequence: 100, logTime: 100, publishTime: 7, parts: [$0]) }
        try writer.addMetadata(name: "apus", [("x", "y")])
        try writer.close()
        let reader = try MCAPReader(path: path)
        var seen: [(UInt32, [UInt8])] = []
        let ending = try reader.forEachMessage { seen.append(($0.sequence, Array($0.data))) }
        #expect(ending.complete && ending.problem == nil && ending.chunks > 1)
        #expect(seen.map(\.0) == (0..<101).map(UInt32.init))
        #expect(seen.dropLast().allSatisfy { $0.1 == [UInt8](repeating: UInt8($0.0), count: Int($0.0)) })
        #expect(seen.last?.1 == big)
        #expect(reader.channels[channel]?.topic == "a/b" && reader.schemas[schema]?.data == [1, 2, 3])
        #expect(reader.metadata.first?.name == "apus")
    }
}
