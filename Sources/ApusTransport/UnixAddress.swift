import Glibc

/// A Unix socket address for a path. A path too long for `sun_path` is an error, never cut short.
public struct UnixAddress {
    private var storage = sockaddr_un()

    public init(_ path: String) throws(TransportError) {
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard bytes.count < capacity else {
            throw .invalidArgument("the socket path \(path) has \(bytes.count) bytes; a Unix socket path has at most \(capacity - 1)")
        }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
    }

    public mutating func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
