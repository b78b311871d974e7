import CApusSys
import Glibc

/// A spawned child with its stdout and stderr read through pipes (non-blocking read ends).
struct ChildProcess {
    let pid: pid_t
    var stdout: Int32
    var stderr: Int32

    enum SpawnError: Error, CustomStringConvertible {
        case failed(String, errno: Int32)

        var description: String {
            switch self {
            case .failed(let what, let errno): "\(what): \(String(cString: strerror(errno)))"
            }
        }
    }

    /// Spawns `arguments[0]` in its own process group (see `apussys_spawn`), in `directory`, with
    /// `environment`; `control` (if any) becomes its fd 3.
    static func spawn(
        _ arguments: [String], environment: [String], directory: String, control: Int32? = nil
    ) throws(SpawnError) -> ChildProcess {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        let made = apussys_pipe(&out)
        guard made == 0 else { throw .failed("pipe", errno: -made) }
        let madeToo = apussys_pipe(&err)
        guard madeToo == 0 else {
            let error = -madeToo
            close(out[0])
            close(out[1])
            throw .failed("pipe", errno: error)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
            close(out[1])
            close(err[1])
        }
        let pid = apussys_spawn(arguments[0], argv, envp, directory, out[1], err[1], control ?? -1)
        guard pid > 0 else {
            close(out[0])
            close(err[0])
            throw .failed("cannot start \(arguments[0])", errno: -pid)
        }
        for fd in [out[0], err[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return ChildProcess(pid: pid, stdout: out[0], stderr: err[0])
    }
}

/// Reads what a non-blocking pipe has now. Returns false at end of stream (or on error).
func drainPipe(_ fd: Int32, into splitter: inout LineSplitter, _ emit: (String) -> Void) -> Bool {
    withUnsafeTemporaryAllocation(byteCount: 16 * 1024, alignment: 16) { buffer in
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count > 0 {
                splitter.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), emit)
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN { return true }
            splitter.finish(emit)
            return false
        }
    }
}

extension ChildProcess {
    struct Outcome {
        var signaled: Bool
        var status: Int32
        var stdout: [String]
        var stderr: [String]
        var succeeded: Bool { !signaled && status == 0 }
    }

    /// Runs a short helper command to its end and collects its output lines.
    static func run(_ arguments: [String], environment: [String], directory: String) throws(SpawnError) -> Outcome {
        var child = try spawn(arguments, environment: environment, directory: directory)
        var splitters = [LineSplitter(), LineSplitter()]
        var lines: [[String]] = [[], []]
        while child.stdout >= 0 || child.stderr >= 0 {
            var entries = [
                pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0),
                pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&entries, 2, -1) >= 0 || errno == EINTR else { break }
            for slot in 0..<2 where entries[slot].fd >= 0 && entries[slot].revents != 0 {
                if !drainPipe(entries[slot].fd, into: &splitters[slot], { lines[slot].append($0) }) {
                    close(entries[slot].fd)
                    if slot == 0 { child.stdout = -1 } else { child.stderr = -1 }
                }
            }
        }
        var signaled: Int32 = 0
        var value: Int32 = 0
        _ = apussys_reap(child.pid, 1, &signaled, &value)
        return Outcome(signaled: signaled != 0, status: value, stdout: lines[0], stderr: lines[1])
    }
}

/// The process environment as `NAME=value` strings.
func currentEnvironment() -> [String] {
    var result: [String] = []
    var pointer = environ
    while let entry = pointer.pointee {
        result.append(String(cString: entry))
        pointer += 1
    }
    return result
}

/// The value of `name` in `NAME=value` strings (the last one wins, as for the process that gets them).
func environmentValue(_ environment: [String], _ name: String) -> String? {
    let prefix = name + "="
    return environment.last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
}

/// `base` with `overrides` applied (later entries win), as `NAME=value` strings.
func mergeEnvironment(_ base: [String], _ overrides: [(String, String)]) -> [String] {
    var order: [String] = []
    var values: [String: String] = [:]
    for entry in base {
        let name = String(entry.prefix { $0 != "=" })
        if values[name] == nil { order.append(name) }
        values[name] = entry
    }
    for (name, value) in overrides {
        if values[name] == nil { order.append(name) }
        values[name] = "\(name)=\(value)"
    }
    return order.compactMap { values[$0] }
}
