// The control protocol between the `apus` CLI and a background daemon (`apus up`): frames of a
// 4-byte big-endian length and a JSON object, over a Unix socket only its user can reach.
import CApusSys
import Foundation
import Glibc

public enum ControlProtocol {
    /// The daemon's and CLI's version: they must match exactly.
    public static let version = "0.1.0"
    /// Larger frames are refused (a request is a few hundred bytes; an environment a few KiB).
    public static let maximumFrame = 1 << 20
}

public struct ControlRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable {
        case ping, start, stop, list, logs, down
    }

    public var version: String
    public var command: Command
    /// start: the dataflow file (absolute) and the environment its nodes start from.
    public var file: String?
    public var environment: [String]?
    /// start: the name to give the dataflow; stop/logs: the name or id of one.
    public var name: String?
    /// logs: only this node's lines.
    public var node: String?
    /// logs: keep streaming new lines until the dataflow ends. start: stream its output (attach).
    public var follow: Bool?
    /// stop: seconds between the graceful stop and killing.
    public var grace: Double?
    /// down: stop running dataflows first instead of refusing.
    public var force: Bool?

    public init(_ command: Command) {
        version = ControlProtocol.version
        self.command = command
    }
}

public struct DataflowStatus: Codable, Sendable {
    public var id: String
    public var name: String
    public var file: String
    /// running, stopping, finished (exit 0) or failed.
    public var status: String
    public var nodes: Int
    /// Seconds since the epoch.
    public var startedAt: Double
    public var endedAt: Double?
    public var restarts: Int
    public var exitStatus: Int32?
    public var pid: Int32
}

public struct ControlResponse: Codable, Sendable {
    public var version: String
    public var ok: Bool
    public var error: String?
    public var pid: Int32?
    public var dataflow: DataflowStatus?
    public var dataflows: [DataflowStatus]?
    /// Streamed after the first response of `logs --follow` and `start --attach`: output lines,
    /// then one response with `end` set (and the dataflow's exit status).
    public var lines: [String]?
    public var end: Bool?
    public var exitStatus: Int32?

    public init(ok: Bool, error: String? = nil) {
        version = ControlProtocol.version
        self.ok = ok
        self.error = error
    }
}

public enum ControlError: Error, CustomStringConvertible {
    case noDaemon(String)
    case system(String, Int32)
    case protocolViolation(String)
    case refused(String)

    public var description: String {
        switch self {
        case .noDaemon(let socket): "no apus daemon is running (no answer at \(socket)); start one with `apus up`"
        case .system(let what, let error): "\(what): \(String(cString: strerror(error)))"
        case .protocolViolation(let what): "the apus daemon answered something unexpected: \(what)"
        case .refused(let message): message
        }
    }
}

/// Where a user's daemon lives: $XDG_RUNTIME_DIR/apus, or /tmp/apus-<uid>. Private (0700).
public struct ControlPaths: Sendable {
    public let folder: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            folder = runtime + "/apus"
        } else {
            folder = "/tmp/apus-\(getuid())"
        }
    }

    public var socket: String { folder + "/daemon.sock" }
    public var lock: String { folder + "/daemon.lock" }
    public var log: String { folder + "/daemon.log" }
    public var runs: String { folder + "/runs" }

    /// Creates the folder (0700) or checks that the existing one is this user's and private.
    public func prepare() throws(ControlError) {
        if mkdir(folder, 0o700) != 0, errno != EEXIST { throw .system("cannot create \(folder)", errno) }
        var status = stat()
        guard lstat(folder, &status) == 0 else { throw .system("cannot inspect \(folder)", errno) }
        guard (status.st_mode & S_IFMT) == S_IFDIR, status.st_uid == getuid() else {
            throw .refused("\(folder) is not a folder of this user (uid \(getuid())); remove it or set XDG_RUNTIME_DIR")
        }
        if status.st_mode & 0o077 != 0, chmod(folder, 0o700) != 0 { throw .system("cannot make \(folder) private", errno) }
        if mkdir(runs, 0o700) != 0, errno != EEXIST { throw .system("cannot create \(runs)", errno) }
    }
}

/// One framed connection. Blocking; used by the CLI (the daemon reads frames itself, non-blocking).
public final class ControlConnection {
    public let fd: Int32

    public init(fd: Int32) {
        self.fd = fd
    }

    /// Connects to the daemon's socket.
    public static func connect(_ path: String) throws(ControlError) -> ControlConnection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno) }
        var address = unixAddress(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            if error == ENOENT || error == ECONNREFUSED { throw .noDaemon(path) }
            throw .system("cannot connect to \(path)", error)
        }
        return ControlConnection(fd: fd)
    }

    deinit { close(fd) }

    public func send(_ request: ControlRequest) throws(ControlError) {
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw .protocolViolation("cannot encode the request: \(error)")
        }
        var frame = [UInt8](repeating: 0, count: 4)
        let length = UInt32(body.count)
        frame[0] = UInt8(length >> 24)
        frame[1] = UInt8((length >> 16) & 0xff)
        frame[2] = UInt8((length >> 8) & 0xff)
        frame[3] = UInt8(length & 0xff)
        frame += body
        guard writeAll(fd, frame) else { throw .system("cannot write to the apus daemon", errno) }
    }

    /// The next response; nil when the daemon closed the connection.
    public func receive() throws(ControlError) -> ControlResponse? {
        guard let header = readFully(4) else { return nil }
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length <= 64 * ControlProtocol.maximumFrame else { throw .protocolViolation("a frame of \(length) bytes") }
        guard let body = readFully(length) else { throw .protocolViolation("the connection closed inside a frame") }
        do {
            return try JSONDecoder().decode(ControlResponse.self, from: Data(body))
        } catch {
            throw .protocolViolation("\(error)")
        }
    }

    private func readFully(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, count - offset) }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { return nil }
            offset += got
        }
        return bytes
    }
}

func unixAddress(_ path: String) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { buffer in
        let bytes = Array(path.utf8.prefix(buffer.count - 1))
        buffer.copyBytes(from: bytes)
        buffer[bytes.count] = 0
    }
    return address
}

/// Encodes a response as one frame.
func frame(_ response: ControlResponse) -> [UInt8] {
    let body = (try? JSONEncoder().encode(response)).map { [UInt8]($0) } ?? []
    let length = UInt32(body.count)
    return [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + body
}
