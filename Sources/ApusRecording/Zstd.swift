// zstd compression for MCAP chunks, from libzstd.so.1 loaded when first asked for: a recording
// without compression needs no libzstd, and the build needs no zstd headers.
import Glibc

final class Zstd: @unchecked Sendable {
    private typealias Bound = @convention(c) (Int) -> Int
    private typealias Compress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int, Int32) -> Int
    private typealias Decompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    private typealias IsError = @convention(c) (Int) -> UInt32
    private typealias ErrorName = @convention(c) (Int) -> UnsafePointer<CChar>?

    private let bound: Bound
    private let compressCall: Compress
    private let decompressCall: Decompress
    private let isError: IsError
    private let errorName: ErrorName

    /// Level 1: fast enough to keep up with camera streams on one core.
    static let level: Int32 = 1

    /// Nil when libzstd cannot be loaded (`loadProblem` says why).
    static let shared: Zstd? = Zstd()
    nonisolated(unsafe) static var loadProblem = ""

    private init?() {
        guard let library = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL) else {
            Zstd.loadProblem = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            return nil
        }
        func symbol<T>(_ name: String, as type: T.Type) -> T? {
            dlsym(library, name).map { unsafeBitCast($0, to: type) }
        }
        guard let bound = symbol("ZSTD_compressBound", as: Bound.self), let compress = symbol("ZSTD_compress", as: Compress.self),
            let decompress = symbol("ZSTD_decompress", as: Decompress.self), let isError = symbol("ZSTD_isError", as: IsError.self),
            let errorName = symbol("ZSTD_getErrorName", as: ErrorName.self)
        else {
            Zstd.loadProblem = "libzstd.so.1 lacks the ZSTD_compress functions"
            return nil
        }
        (self.bound, compressCall, decompressCall, self.isError, self.errorName) = (bound, compress, decompress, isError, errorName)
    }

    private func failure(_ code: Int) -> String {
        errorName(code).map { String(cString: $0) } ?? "error \(code)"
    }

    func compress(_ input: [UInt8]) throws(MCAPError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: bound(input.count))
        let written = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { compressCall(out.baseAddress, out.count, $0.baseAddress, $0.count, Self.level) }
        }
        guard isError(written) == 0 else { throw MCAPError("zstd: \(failure(written))") }
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses into exactly `size` bytes; anything else is an error.
    func decompress(_ input: UnsafeRawBufferPointer, size: Int) throws(MCAPError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { decompressCall($0.baseAddress, $0.count, input.baseAddress, input.count) }
        guard isError(written) == 0 else { throw MCAPError("zstd: \(failure(written))") }
        guard written == size else { throw MCAPError("zstd: \(written) bytes where the chunk says \(size)") }
        return output
    }
}
