/// Little-endian reading of bytes another process wrote: every length is checked against what is
/// there, so a hostile writer gets an error, never an out-of-bounds read.
struct ByteReader {
    let area: UnsafeRawBufferPointer
    /// Shared memory (`corrupted`) or a socket message (`malformedMessage`): names the error.
    let corrupt: Bool
    var offset = 0

    init(_ area: UnsafeRawBufferPointer, corrupt: Bool) {
        self.area = area
        self.corrupt = corrupt
    }

    var isAtEnd: Bool { offset == area.count }

    func failure(_ what: String) -> TransportError {
        corrupt ? .corrupted(what) : .malformedMessage(what)
    }

    mutating func take(_ count: Int) throws(TransportError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= area.count - offset else {
            throw failure("field of \(count) bytes at offset \(offset) overruns \(area.count) bytes")
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: area[offset..<(offset + count)])
    }

    mutating func u8() throws(TransportError) -> UInt8 { try take(1)[0] }
    mutating func u16() throws(TransportError) -> UInt16 { UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self)) }
    mutating func u32() throws(TransportError) -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws(TransportError) -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }

    /// A non-negative integer no larger than `limit`.
    mutating func int(limit: Int = Int(Int32.max)) throws(TransportError) -> Int {
        let value = try u64()
        guard value <= UInt64(limit) else { throw failure("integer \(value) exceeds \(limit) at offset \(offset - 8)") }
        return Int(value)
    }

    mutating func string(length: Int) throws(TransportError) -> String {
        String(decoding: try take(length), as: UTF8.self)
    }

    /// A u32 length, then that many UTF-8 bytes.
    mutating func string() throws(TransportError) -> String {
        try string(length: Int(try u32()))
    }

    mutating func list<Element>(_ element: (inout ByteReader) throws(TransportError) -> Element) throws(TransportError) -> [Element] {
        let count = Int(try u32())
        guard count <= area.count - offset else { throw failure("list of \(count) items overruns \(area.count) bytes") }
        var items: [Element] = []
        items.reserveCapacity(count)
        for _ in 0..<count { items.append(try element(&self)) }
        return items
    }
}

/// The writing side of `ByteReader`.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func int(_ value: Int) { u64(UInt64(clamping: value)) }

    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        u32(UInt32(utf8.count))
        bytes += utf8
    }

    mutating func list<Element>(_ items: [Element], _ element: (inout ByteWriter, Element) -> Void) {
        u32(UInt32(items.count))
        for item in items { element(&self, item) }
    }
}
