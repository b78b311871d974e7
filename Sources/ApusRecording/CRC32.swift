// CRC-32 (the zlib polynomial, as MCAP's chunk and summary checksums use): ISA-L's when
// libisal.so.2 is there (carry-less multiplication: 9 GB/s here, against zlib's 3; a recorder
// of 6 MiB frames spent a third of its time in zlib's), else zlib's (libz.so.1 is wherever Swift
// runs), else eight bytes at a time from eight tables.
import Glibc

public struct CRC32: Sendable {
    public private(set) var value: UInt32 = 0

    public init() {}

    /// Eight tables of 256 entries, one after the other; made once, never written again.
    nonisolated(unsafe) private static let table: UnsafePointer<UInt32> = {
        let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            table[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = table[(slice - 1) * 256 + byte]
                table[slice * 256 + byte] = (previous >> 8) ^ table[Int(previous & 0xFF)]
            }
        }
        return UnsafePointer(table)
    }()

    /// zlib's `crc32` (the same checksum, several times faster), when libz.so.1 can be loaded.
    private typealias ZlibCRC = @convention(c) (UInt, UnsafeRawPointer?, UInt32) -> UInt
    private static let zlib: ZlibCRC? = {
        guard let library = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL), let symbol = dlsym(library, "crc32") else { return nil }
        return unsafeBitCast(symbol, to: ZlibCRC.self)
    }()

    /// ISA-L's `crc32_gzip_refl`: the same checksum, continued from the value passed in.
    private typealias ISALCRC = @convention(c) (UInt32, UnsafeRawPointer?, UInt64) -> UInt32
    private static let isal: ISALCRC? = {
        guard let library = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL), let symbol = dlsym(library, "crc32_gzip_refl") else {
            return nil
        }
        return unsafeBitCast(symbol, to: ISALCRC.self)
    }()

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        if let isal = Self.isal {
            value = isal(value, base, UInt64(bytes.count))
            return
        }
        updateInZlib(base, count: bytes.count)
    }

    /// The same, with zlib's (or, without libz.so.1, the tables').
    mutating func updateInZlib(_ base: UnsafeRawPointer, count: Int) {
        let bytes = UnsafeRawBufferPointer(start: base, count: count)
        if let zlib = Self.zlib {
            var crc = UInt(value)
            var offset = 0
            while offset < bytes.count {
                let piece = min(bytes.count - offset, 1 << 30)
                crc = zlib(crc, base + offset, UInt32(piece))
                offset += piece
            }
            value = UInt32(truncatingIfNeeded: crc)
            return
        }
        updateInSwift(base, count: bytes.count)
    }

    /// The same, eight bytes at a time from eight tables.
    mutating func updateInSwift(_ base: UnsafeRawPointer, count: Int) {
        let t = Self.table
        var crc = ~value
        var offset = 0
        while offset &+ 8 <= count {
            let low = (base + offset).loadUnaligned(as: UInt32.self).littleEndian ^ crc
            let high = (base + (offset &+ 4)).loadUnaligned(as: UInt32.self).littleEndian
            crc =
                t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)] ^ t[5 * 256 + Int((low >> 16) & 0xFF)]
                ^ t[4 * 256 + Int(low >> 24)] ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                ^ t[256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
            offset &+= 8
        }
        while offset < count {
            crc = (crc >> 8) ^ t[Int((crc ^ UInt32(base.load(fromByteOffset: offset, as: UInt8.self))) & 0xFF)]
            offset &+= 1
        }
        value = ~crc
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public static func of(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }
}
