// Writes an MCAP file: schemas and channels up front, messages in chunks (each followed by its
// message indexes), and at the end a summary (schemas, channels, statistics, chunk indexes,
// metadata indexes) with offsets to each group, so readers can seek. Every chunk is complete on
// disk before the next one starts: a writer killed midway leaves a file whose complete chunks a
// streaming reader still reads.
import ApusTransport
import Glibc

public struct MCAPError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public final class MCAPWriter {
    public enum Compression: String, Sendable, CaseIterable {
        case none = ""
        case zstd
    }

    public let path: String
    let fd: Int32
    let compression: Compression
    let chunkSize: Int
    /// Where the next byte goes. (The data section's CRC is left at 0, "not computed", as the
    /// spec allows: every chunk carries its own, and one pass over each payload is saved.)
    private var offset: UInt64 = 0
    private var schemas: [[UInt8]] = []
    private var channels: [[UInt8]] = []
    private var channelCounts: [UInt16: UInt64] = [:]
    private var metadataIndexes: [[UInt8]] = []
    private var chunkIndexes: [[UInt8]] = []
    private var messageCount: UInt64 = 0
    private var firstTime = UInt64.max
    private var lastTime: UInt64 = 0
    private var closed = false

    /// The chunk being filled: its records, their CRC, its time range and, per channel, each
    /// message's log time and offset within it.
    private var chunk: [UInt8] = []
    private var chunkCRC = CRC32()
    private var chunkStart = UInt64.max
    private var chunkEnd: UInt64 = 0
    private var chunkIndex: [UInt16: [(UInt64, UInt64)]] = [:]

    /// Creates (or truncates) `path` and writes the header. `chunkSize` is the uncompressed size a
    /// chunk is closed at (a larger message makes a chunk of its own).
    public init(path: String, library: String, compression: Compression = .none, chunkSize: Int = 4 << 20) throws(MCAPError) {
        if compression == .zstd, Zstd.shared == nil {
            throw MCAPError("zstd compression needs libzstd.so.1 (apt install libzstd1): \(Zstd.loadProblem)")
        }
        self.path = path
        self.compression = compression
        self.chunkSize = max(chunkSize, 1024)
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MCAPError("cannot create \(path): \(String(cString: strerror(errno)))") }
        chunk.reserveCapacity(self.chunkSize + (1 << 16))
        try emit(MCAP.magic)
        try emit(
            RecordBytes.record(.header) {
                $0.string("")
                $0.string(library)
            })
    }

    deinit {
        if !closed { Glibc.close(fd) }
    }

    /// Adds a schema (written at once) and returns its id (from 1).
    public func addSchema(name: String, encoding: String, data: [UInt8]) throws(MCAPError) -> UInt16 {
        let id = UInt16(schemas.count + 1)
        let record = RecordBytes.record(.schema) {
            $0.u16(id)
            $0.string(name)
            $0.string(encoding)
            $0.data(data)
        }
        schemas.append(record)
        try emit(record)
        return id
    }

    /// Adds a channel (written at once) and returns its id (from 0).
    public func addChannel(topic: String, messageEncoding: String, schema: UInt16, metadata: [(String, String)] = []) throws(MCAPError)
        -> UInt16
    {
        let id = UInt16(channels.count)
        let record = RecordBytes.record(.channel) {
            $0.u16(id)
            $0.u16(schema)
            $0.string(topic)
            $0.string(messageEncoding)
            $0.stringMap(metadata)
        }
        channels.append(record)
        channelCounts[id] = 0
        try emit(record)
        return id
    }

    /// Adds a message whose data is `parts` one after the other (a header and the payload, say,
    /// copied once into the chunk).
    public func write(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64, parts: [UnsafeRawBufferPointer])
        throws(MCAPError)
    {
        let dataLength = parts.reduce(0) { $0 + $1.count }
        if !chunk.isEmpty, chunk.count + 31 + dataLength > chunkSize { try flushChunk() }
        if dataLength > chunkSize, compression == .none {
            try writeAlone(channel: channel, sequence: sequence, logTime: logTime, publishTime: publishTime, parts: parts)
            return
        }
        let start = chunk.count
        chunk += Self.messageHeader(
            channel: channel, sequence: sequence, logTime: logTime, publishTime: publishTime, dataLength: dataLength)
        for part in parts {
            // As typed bytes, so the append is one copy (memcpy), not an element-wise loop.
            chunk.append(contentsOf: UnsafeBufferPointer(start: part.baseAddress?.assumingMemoryBound(to: UInt8.self), count: part.count))
        }
        chunk.withUnsafeBytes { chunkCRC.update(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        chunkIndex[channel, default: []].append((logTime, UInt64(start)))
        chunkStart = min(chunkStart, logTime)
        chunkEnd = max(chunkEnd, logTime)
        count(channel: channel, logTime: logTime)
    }

    /// A message larger than a chunk, uncompressed: a chunk of its own, written straight from
    /// `parts` (no copy into the chunk buffer), with its message index.
    private func writeAlone(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64, parts: [UnsafeRawBufferPointer])
        throws(MCAPError)
    {
        let message = Self.messageHeader(
            channel: channel, sequence: sequence, logTime: logTime, publishTime: publishTime,
            dataLength: parts.reduce(0) { $0 + $1.count })
        var crc = CRC32()
        crc.update(message)
        for part in parts { crc.update(part) }
        try message.withUnsafeBytes { head in
            Result { () throws(MCAPError) in
                try writeChunk(
                    start: logTime, end: logTime, crc: crc.value, compression: "", records: [head] + parts,
                    uncompressedSize: head.count + parts.reduce(0) { $0 + $1.count }, index: [channel: [(logTime, 0)]])
            }
        }.get()
        count(channel: channel, logTime: logTime)
    }

    /// Writes a chunk record of `records` (stored as they are: compressed or not), then its
    /// message indexes (per channel, each message's log time and offset in the uncompressed
    /// records), and keeps its chunk index for the summary.
    private func writeChunk(
        start: UInt64, end: UInt64, crc: UInt32, compression: String, records: [UnsafeRawBufferPointer], uncompressedSize: Int,
        index: [UInt16: [(UInt64, UInt64)]]
    ) throws(MCAPError) {
        let storedSize = records.reduce(0) { $0 + $1.count }
        let chunkOffset = offset
        var head = RecordBytes()
        head.u8(MCAP.Opcode.chunk.rawValue)
        head.u64(UInt64(8 + 8 + 8 + 4 + 4 + compression.utf8.count + 8 + storedSize))
        head.u64(start)
        head.u64(end)
        head.u64(UInt64(uncompressedSize))
        head.u32(crc)
        head.string(compression)
        head.u64(UInt64(storedSize))
        try emit(head.bytes)
        for part in records { try emit(part) }
        let chunkLength = offset - chunkOffset
        var indexOffsets: [(UInt16, UInt64)] = []
        let indexStart = offset
        for channel in index.keys.sorted() {
            indexOffsets.append((channel, offset))
            try emit(
                RecordBytes.record(.messageIndex) {
                    $0.u16(channel)
                    let entries = index[channel]!
                    $0.u32(UInt32(entries.count * 16))
                    for (time, position) in entries {
                        $0.u64(time)
                        $0.u64(position)
                    }
                })
        }
        chunkIndexes.append(
            RecordBytes.record(.chunkIndex) { [offset] in
                $0.u64(start)
                $0.u64(end)
                $0.u64(chunkOffset)
                $0.u64(chunkLength)
                $0.countMap(indexOffsets)
                $0.u64(offset - indexStart)
                $0.string(compression)
                $0.u64(UInt64(storedSize))
                $0.u64(UInt64(uncompressedSize))
            })
    }

    /// Counts a message for the summary's statistics.
    private func count(channel: UInt16, logTime: UInt64) {
        firstTime = min(firstTime, logTime)
        lastTime = max(lastTime, logTime)
        messageCount += 1
        channelCounts[channel, default: 0] += 1
    }

    /// A message record up to its data (`dataLength` bytes, which follow).
    static func messageHeader(channel: UInt16, sequence: UInt32, logTime: UInt64, publishTime: UInt64, dataLength: Int) -> [UInt8] {
        var head = RecordBytes()
        head.u8(MCAP.Opcode.message.rawValue)
        head.u64(UInt64(22 + dataLength))
        head.u16(channel)
        head.u32(sequence)
        head.u64(logTime)
        head.u64(publishTime)
        return head.bytes
    }

    /// Adds a metadata record (name and key-value pairs) to the data section.
    public func addMetadata(name: String, _ entries: [(String, String)]) throws(MCAPError) {
        try flushChunk()
        let record = RecordBytes.record(.metadata) {
            $0.string(name)
            $0.stringMap(entries)
        }
        let start = offset
        try emit(record)
        metadataIndexes.append(
            RecordBytes.record(.metadataIndex) {
                $0.u64(start)
                $0.u64(UInt64(record.count))
                $0.string(name)
            })
    }

    /// Writes what is buffered as a chunk and its message indexes: from here on it survives a kill.
    public func flushChunk() throws(MCAPError) {
        guard !chunk.isEmpty else { return }
        let records = compression == .zstd ? try Zstd.shared!.compress(chunk) : chunk
        try records.withUnsafeBytes { stored in
            Result { () throws(MCAPError) in
                try writeChunk(
                    start: chunkStart, end: chunkEnd, crc: chunkCRC.value, compression: compression.rawValue, records: [stored],
                    uncompressedSize: chunk.count, index: chunkIndex)
            }
        }.get()
        chunk.removeAll(keepingCapacity: chunk.capacity <= 2 * chunkSize + (1 << 16))
        chunkCRC = CRC32()
        chunkStart = .max
        chunkEnd = 0
        chunkIndex = [:]
    }

    /// Flushes the last chunk and writes the data end, the summary and the footer.
    public func close() throws(MCAPError) {
        guard !closed else { return }
        try flushChunk()
        try emit(RecordBytes.record(.dataEnd) { $0.u32(0) })
        let summaryStart = offset
        var summaryCRC = CRC32()
        var groups: [(MCAP.Opcode, UInt64, UInt64)] = []
        func group(_ opcode: MCAP.Opcode, _ records: [[UInt8]]) throws(MCAPError) {
            guard !records.isEmpty else { return }
            let start = offset
            for record in records {
                summaryCRC.update(record)
                try emit(record)
            }
            groups.append((opcode, start, offset - start))
        }
        let counts = channelCounts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let statistics = RecordBytes.record(.statistics) { [self] in
            $0.u64(messageCount)
            $0.u16(UInt16(schemas.count))
            $0.u32(UInt32(channels.count))
            $0.u32(0)  // attachments
            $0.u32(UInt32(metadataIndexes.count))
            $0.u32(UInt32(chunkIndexes.count))
            $0.u64(messageCount == 0 ? 0 : firstTime)
            $0.u64(lastTime)
            $0.countMap(counts)
        }
        try group(.schema, schemas)
        try group(.channel, channels)
        try group(.statistics, [statistics])
        try group(.chunkIndex, chunkIndexes)
        try group(.metadataIndex, metadataIndexes)
        let summaryOffsetStart = offset
        for (opcode, start, length) in groups {
            let record = RecordBytes.record(.summaryOffset) {
                $0.u8(opcode.rawValue)
                $0.u64(start)
                $0.u64(length)
            }
            summaryCRC.update(record)
            try emit(record)
        }
        var footer = RecordBytes()
        footer.u8(MCAP.Opcode.footer.rawValue)
        footer.u64(20)
        footer.u64(summaryStart)
        footer.u64(summaryOffsetStart)
        summaryCRC.update(footer.bytes)
        footer.u32(summaryCRC.value)
        try emit(footer.bytes)
        try emit(MCAP.magic)
        closed = true
        guard Glibc.close(fd) == 0 else { throw MCAPError("cannot close \(path): \(String(cString: strerror(errno)))") }
    }

    private func emit(_ bytes: [UInt8]) throws(MCAPError) {
        try bytes.withUnsafeBytes { buffer in Result { () throws(MCAPError) in try emit(buffer) } }.get()
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws(MCAPError) {
        guard !closed else { throw MCAPError("\(path) is closed") }
        let result = writeAll(fd, bytes)
        guard result == 0 else { throw MCAPError("cannot write \(path): \(String(cString: strerror(-result)))") }
        offset += UInt64(bytes.count)
    }
}
