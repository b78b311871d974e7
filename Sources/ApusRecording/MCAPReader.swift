// Reads an MCAP file front to back: its schemas, channels, metadata and messages, chunks
// decompressed and checked against their CRC. Every length is checked against what is there, so a
// truncated or corrupted file is an error that says where, never a crash; a file cut short (a
// recorder killed) is read up to its last complete record.
import Glibc

public final class MCAPReader {
    public struct Schema: Sendable {
        public var id: UInt16
        public var name: String
        public var encoding: String
        public var data: [UInt8]
    }

    public struct Channel: Sendable {
        public var id: UInt16
        public var schema: UInt16
        public var topic: String
        public var messageEncoding: String
        public var metadata: [(String, String)]
    }

    /// A message; `data` is valid only during the call that hands it out.
    public struct Message {
        public var channel: UInt16
        public var sequence: UInt32
        public var logTime: UInt64
        public var publishTime: UInt64
        public var data: UnsafeRawBufferPointer
    }

    /// How far a file could be read.
    public struct Ending: Sendable, Equatable {
        /// It ended with a data end record (and, if `complete`, a footer and the magic).
        public var complete: Bool
        /// Why it stopped early, with the offset, when it did.
        public var problem: String?
        public var chunks: Int
    }

    public let path: String
    private let base: UnsafeRawPointer
    private let size: Int
    public private(set) var schemas: [UInt16: Schema] = [:]
    public private(set) var channels: [UInt16: Channel] = [:]
    public private(set) var metadata: [(name: String, entries: [(String, String)])] = []

    public init(path: String) throws(MCAPError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MCAPError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { throw MCAPError("\(path): not a regular file") }
        size = Int(status.st_size)
        guard size >= 8 else { throw MCAPError("\(path): \(size) bytes, too short for an MCAP file") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw MCAPError("\(path): cannot map it: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
        guard memcmp(base, MCAP.magic, 8) == 0 else {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
            throw MCAPError("\(path): not an MCAP file (it does not start with the MCAP magic)")
        }
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
    }

    /// Reads the data section in order, handing every message to `body`. Stops at the data end,
    /// or where the file is cut short or damaged (said in the result; a damaged chunk is an error
    /// unless `skippingDamagedChunks`).
    @discardableResult
    public func forEachMessage(skippingDamagedChunks: Bool = false, _ body: (Message) throws(MCAPError) -> Void) throws(MCAPError) -> Ending
    {
        var cursor = Cursor(UnsafeRawBufferPointer(start: base, count: size), offset: 8, file: path)
        var chunks = 0
        var problem: String?
        while cursor.remaining > 0 {
            let start = cursor.offset
            guard cursor.remaining >= 9 else {
                problem = "the file ends inside a record header at offset \(start)"
                break
            }
            let opcode = try cursor.u8()
            let length = try cursor.u64()
            guard length <= UInt64(cursor.remaining) else {
                problem = "the file ends inside a record (opcode \(opcode), \(length) bytes) at offset \(start)"
                break
            }
            var content = try cursor.sub(Int(length))
            switch MCAP.Opcode(rawValue: opcode) {
            case .header, .messageIndex, .attachment, .metadataIndex, .chunkIndex, .statistics, .summaryOffset, .attachmentIndex,
                .footer, nil:
                continue
            case .dataEnd:
                return Ending(complete: true, problem: nil, chunks: chunks)
            case .schema, .channel, .message, .metadata:
                try handle(opcode, &content, body)
            case .chunk:
                do {
                    try readChunk(&content, body)
                    chunks += 1
                } catch {
                    guard skippingDamagedChunks else { throw MCAPError("\(path): the chunk at offset \(start): \(error)") }
                    problem = "the chunk at offset \(start) is damaged (\(error)); skipped"
                }
            }
        }
        return Ending(complete: false, problem: problem ?? "the file ends without a data end record", chunks: chunks)
    }

    private func readChunk(_ chunk: inout Cursor, _ body: (Message) throws(MCAPError) -> Void) throws(MCAPError) {
        _ = try chunk.u64()  // start time
        _ = try chunk.u64()  // end time
        let uncompressedSize = try chunk.u64()
        let crc = try chunk.u32()
        let compression = try chunk.string()
        let recordsLength = try chunk.u64()
        guard recordsLength <= UInt64(chunk.remaining), uncompressedSize <= 1 << 36 else {
            throw MCAPError("its records run past it")
        }
        let stored = try chunk.bytes(Int(recordsLength))
        var decompressed: [UInt8] = []
        switch compression {
        case "":
            guard uncompressedSize == recordsLength else {
                throw MCAPError("uncompressed, yet \(recordsLength) bytes for \(uncompressedSize)")
            }
        case "zstd":
            guard let zstd = Zstd.shared else {
                throw MCAPError("it is zstd-compressed, and libzstd.so.1 cannot be loaded: \(Zstd.loadProblem)")
            }
            decompressed = try zstd.decompress(stored, size: Int(uncompressedSize))
        default:
            throw MCAPError("compression '\(compression.prefix(20))' is not supported (none and zstd are)")
        }
        try decompressed.withUnsafeBytes { plain in
            Result { () throws(MCAPError) in try readRecords(compression.isEmpty ? stored : plain, crc: crc, body) }
        }.get()
    }

    /// The records of a chunk, once its CRC (when it has one) matches.
    private func readRecords(_ records: UnsafeRawBufferPointer, crc: UInt32, _ body: (Message) throws(MCAPError) -> Void)
        throws(MCAPError)
    {
        if crc != 0, CRC32.of(records) != crc { throw MCAPError("its CRC does not match: the chunk is corrupted") }
        var inner = Cursor(records, offset: 0, file: path)
        while inner.remaining > 0 {
            let opcode = try inner.u8()
            let length = try inner.u64()
            guard length <= UInt64(inner.remaining) else { throw MCAPError("a record inside it runs past its end") }
            var content = try inner.sub(Int(length))
            try handle(opcode, &content, body)
        }
    }

    private func handle(_ opcode: UInt8, _ content: inout Cursor, _ body: (Message) throws(MCAPError) -> Void) throws(MCAPError) {
        switch MCAP.Opcode(rawValue: opcode) {
        case .schema:
            let schema = Schema(
                id: try content.u16(), name: try content.string(), encoding: try content.string(), data: Array(try content.sized()))
            schemas[schema.id] = schema
        case .channel:
            let (id, schema, topic, encoding) = (try content.u16(), try content.u16(), try content.string(), try content.string())
            var entries: [(String, String)] = []
            var map = try content.sub(Int(try content.u32()))
            while map.remaining > 0 { entries.append((try map.string(), try map.string())) }
            channels[id] = Channel(id: id, schema: schema, topic: topic, messageEncoding: encoding, metadata: entries)
        case .message:
            let message = Message(
                channel: try content.u16(), sequence: try content.u32(), logTime: try content.u64(), publishTime: try content.u64(),
                data: try content.bytes(content.remaining))
            guard channels[message.channel] != nil else {
                throw MCAPError("a message on channel \(message.channel), which no channel record defined")
            }
            try body(message)
        case .metadata:
            let name = try content.string()
            var entries: [(String, String)] = []
            var map = try content.sub(Int(try content.u32()))
            while map.remaining > 0 { entries.append((try map.string(), try map.string())) }
            metadata.append((name, entries))
        default:
            break
        }
    }
}

/// Checked little-endian reads from a byte range.
struct Cursor {
    let buffer: UnsafeRawBufferPointer
    private(set) var offset: Int
    let file: String

    init(_ buffer: UnsafeRawBufferPointer, offset: Int, file: String) {
        self.buffer = buffer
        self.offset = offset
        self.file = file
    }

    var remaining: Int { buffer.count - offset }

    mutating func bytes(_ count: Int) throws(MCAPError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw MCAPError("a field of \(count) bytes runs past the end of its record") }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + count])
    }

    mutating func sub(_ count: Int) throws(MCAPError) -> Cursor {
        Cursor(try bytes(count), offset: 0, file: file)
    }

    mutating func u8() throws(MCAPError) -> UInt8 { try bytes(1)[0] }
    mutating func u16() throws(MCAPError) -> UInt16 { UInt16(littleEndian: try bytes(2).loadUnaligned(as: UInt16.self)) }
    mutating func u32() throws(MCAPError) -> UInt32 { UInt32(littleEndian: try bytes(4).loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws(MCAPError) -> UInt64 { UInt64(littleEndian: try bytes(8).loadUnaligned(as: UInt64.self)) }
    /// A u32-prefixed byte string.
    mutating func sized() throws(MCAPError) -> UnsafeRawBufferPointer { try bytes(Int(try u32())) }
    mutating func string() throws(MCAPError) -> String { String(decoding: try sized(), as: UTF8.self) }
}
