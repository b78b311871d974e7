import CApusSys
import Glibc
import Synchronization

/// A connected Unix stream socket that carries small messages with file descriptors
/// (SCM_RIGHTS): how segments travel between the daemon and the nodes, and how the CLI talks to
/// the daemon.
///
/// Messages are `Frame`s; descriptors ride with the first byte of a frame. Any thread may send:
/// a frame goes out whole under the write lock. One thread at a time receives.
public final class ControlChannel: @unchecked Sendable {
    /// The default limit on a message's size.
    public static let maxMessageSize = 1 << 20
    /// Descriptors one message can carry (the kernel's SCM_MAX_FD).
    public static let maxDescriptors = 253
    public let fd: Int32
    /// Messages larger than this are refused, sent or received.
    public let maxMessageSize: Int
    private var pendingFDs: [Int32] = []
    /// A frame takes two calls (`sendmsg` for its first byte and descriptors, then the rest):
    /// held across both, so frames of different threads never interleave.
    private let writeLock = Mutex(())

    public init(adopting fd: Int32, maxMessageSize: Int = ControlChannel.maxMessageSize) {
        self.fd = fd
        self.maxMessageSize = maxMessageSize
    }

    /// A connected pair, e.g. for a parent and the child it spawns.
    public static func pair() throws(TransportError) -> (ControlChannel, ControlChannel) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw .system(operation: "socketpair", errno: errno)
        }
        return (ControlChannel(adopting: fds[0]), ControlChannel(adopting: fds[1]))
    }

    /// Connects to a listening socket at `path`.
    public static func connect(path: String, maxMessageSize: Int = ControlChannel.maxMessageSize) throws(TransportError) -> ControlChannel {
        var address = try UnixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(operation: "socket", errno: errno) }
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw .system(operation: "connect(\(path))", errno: error)
        }
        return ControlChannel(adopting: fd, maxMessageSize: maxMessageSize)
    }

    /// Sends one message with `fds` attached (they stay open here; the receiver gets copies).
    public func send(_ bytes: [UInt8], fds: [Int32] = []) throws(TransportError) {
        guard bytes.count <= maxMessageSize else {
            throw .malformedMessage("message of \(bytes.count) bytes exceeds \(maxMessageSize)")
        }
        let frame = Frame.encode(bytes)
        try writeLock.withLock { _ throws(TransportError) in
            let first = frame.withUnsafeBytes { buffer in
                fds.withUnsafeBufferPointer { apussys_send_fds(fd, buffer.baseAddress, 1, $0.baseAddress, $0.count) }
            }
            try Self.check(first, "sendmsg")
            let rest = frame[1...].withUnsafeBytes { writeAll(fd, $0) }
            try Self.check(rest, "send")
        }
    }

    /// A send's result (0, or -errno): a peer that is gone is a disconnection.
    private static func check(_ result: Int32, _ operation: String) throws(TransportError) {
        if result == -EPIPE || result == -ECONNRESET { throw .disconnected }
        _ = try TransportError.check(result, operation)
    }

    /// Receives one message and the descriptors sent with it (owned by the caller).
    /// Throws `.disconnected` at end of stream, and rejects oversized or truncated frames.
    public func receive() throws(TransportError) -> (bytes: [UInt8], fds: [Int32]) {
        pendingFDs = []
        let length = Frame.length(ofHeader: try readExactly(Frame.headerSize))
        guard length <= maxMessageSize else {
            closePending()
            throw .malformedMessage("announced length \(length) exceeds \(maxMessageSize)")
        }
        let body = try readExactly(length)
        defer { pendingFDs = [] }
        return (body, pendingFDs)
    }

    private func closePending() {
        for fd in pendingFDs { close(fd) }
        pendingFDs = []
    }

    private func readExactly(_ count: Int) throws(TransportError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            var fds = [Int32](repeating: -1, count: Self.maxDescriptors)
            var fdCount = 0
            let received = bytes.withUnsafeMutableBytes { buffer in
                fds.withUnsafeMutableBufferPointer {
                    apussys_recv_fds(fd, buffer.baseAddress! + offset, count - offset, $0.baseAddress, $0.count, &fdCount)
                }
            }
            // A peer that closed with messages unread resets the connection: an end like any other.
            if received == 0 || received == -Int(ECONNRESET) {
                closePending()
                throw .disconnected
            }
            if received < 0 {
                closePending()
                throw .system(operation: "recvmsg", errno: Int32(-received))
            }
            pendingFDs += fds.prefix(fdCount)
            offset += received
        }
        return bytes
    }

    deinit {
        closePending()
        close(fd)
    }
}

/// A listening Unix socket at a path, removed again when closed.
public final class ControlListener: @unchecked Sendable {
    public let fd: Int32
    public let path: String

    public init(path: String) throws(TransportError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(operation: "socket", errno: errno) }
        var address = try UnixAddress(path)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0, listen(fd, 64) == 0 else {
            let error = errno
            close(fd)
            throw .system(operation: "bind/listen(\(path))", errno: error)
        }
        self.fd = fd
        self.path = path
    }

    public func accept() throws(TransportError) -> ControlChannel {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                return ControlChannel(adopting: client)
            }
            if errno != EINTR { throw .system(operation: "accept", errno: errno) }
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }
}
