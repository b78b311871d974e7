// The control protocol between the `apus` CLI and a background daemon (`apus up`): `Frame`s
// holding a JSON object, over a Unix socket only its user can reach.
import ApusTransport
import CApusHeader
import CApusSys
import Foundation
import Glibc

public enum ControlProtocol {
    /// The daemon's and CLI's version, as apus.h gives it: they must match exactly.
    public static let version = APUS_VERSION
    /// Larger requests are refused (a request is a few hundred bytes; an environment a few KiB).
    public static let maximumRequest = 1 << 20
    /// Larger responses are refused (the daemon sends logs in chunks well under this).
    public static let maximumResponse = 64 << 20
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
    /// start, of a dataflow across machines: `apus run`'s --machine, --dds-domain, --label
    /// (KEY=VALUE each) and --discovery-timeout.
    public var machine: String?
    public var ddsDomain: UInt32?
    public var labels: [String]?
    public var discoveryTimeout: String?

    public init(_ command: Command) {
        version = ControlProtocol.version
        self.command = command
    }
}

extension ControlRequest {
    /// What the daemon makes of a request frame's bytes.
    public enum Decoded: Sendable {
        case request(ControlRequest)
        /// A request of another apus version (its fields may differ): refused, naming it.
        case otherVersion(String)
        case malformed
    }

    /// Decodes a request frame; never throws, whatever the bytes.
    public static func decode(_ body: [UInt8]) -> Decoded {
        let data = Data(body)
        guard let request = try? JSONDecoder().decode(ControlRequest.self, from: data) else {
            struct Version: Decodable { var version: String }
            if let other = try? JSONDecoder().decode(Version.self, from: data), other.version != ControlProtocol.version {
                return .otherVersion(other.version)
            }
            return .malformed
        }
        return request.version == ControlProtocol.version ? .request(request) : .otherVersion(request.version)
    }
}

public struct DataflowStatus: Codable, Sendable {
    public enum State: String, Codable, Sendable {
        case running, stopping
        /// Ended with exit status 0.
        case finished
        case failed

        public var isRunning: Bool { self == .running || self == .stopping }
    }

    public var id: String
    public var name: String
    public var file: String
    public var status: State
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

/// The CLI's connection to the daemon: blocking, one request and its responses at a time.
public final class ControlConnection {
    private let channel: ControlChannel

    public var fd: Int32 { channel.fd }

    /// Connects to the daemon's socket.
    public static func connect(_ path: String) throws(ControlError) -> ControlConnection {
        do {
            return ControlConnection(channel: try ControlChannel.connect(path: path, maxMessageSize: ControlProtocol.maximumResponse))
        } catch .system(_, let error) where error == ENOENT || error == ECONNREFUSED {
            throw .noDaemon(path)
        } catch {
            throw .refused("cannot connect to the apus daemon at \(path): \(error)")
        }
    }

    private init(channel: ControlChannel) {
        self.channel = channel
    }

    public func send(_ request: ControlRequest) throws(ControlError) {
        let body: Data
        do {
            body = try JSONEncoder().encode(request)
        } catch {
            throw .protocolViolation("cannot encode the request: \(error)")
        }
        do {
            try channel.send([UInt8](body))
        } catch {
            throw .refused("cannot write to the apus daemon: \(error)")
        }
    }

    /// The next response; nil when the daemon closed the connection.
    public func receive() throws(ControlError) -> ControlResponse? {
        let body: [UInt8]
        do {
            (body, _) = try channel.receive()
        } catch .disconnected {
            return nil
        } catch {
            throw .protocolViolation("\(error)")
        }
        do {
            return try JSONDecoder().decode(ControlResponse.self, from: Data(body))
        } catch {
            throw .protocolViolation("\(error)")
        }
    }
}

extension ControlResponse {
    /// The response as a frame. Encoding cannot fail for these types (no non-finite number can
    /// be in one); should it, the client still gets a frame that says so.
    var frame: [UInt8] {
        if let body = try? JSONEncoder().encode(self) { return Frame.encode(body) }
        let fallback = #"{"version":"\#(ControlProtocol.version)","ok":false,"error":"the daemon could not encode its response"}"#
        return Frame.encode(Array(fallback.utf8))
    }
}
