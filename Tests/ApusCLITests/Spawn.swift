import Foundation
import Glibc

/// A child process started with posix_spawn and reaped with waitpid. Foundation's Process can
/// miss a child's exit on Linux (the child stays a zombie and waitUntilExit never returns), so
/// the tests do not use it.
struct Spawned {
    let pid: pid_t
    private(set) var status: Int32?
    /// The CPU time the child and the children it reaped used, in seconds, once it has ended.
    private(set) var cpuSeconds: Double?

    /// Starts `program` (looked up on PATH when it has no slash; 127 if not found) in `directory`, with its output
    /// going to the files `stdout` and `stderr` and standard input from /dev/null.
    static func start(
        _ program: String, _ arguments: [String], directory: URL, environment: [String: String] = ProcessInfo.processInfo.environment,
        stdout: URL, stderr: URL
    ) throws -> Spawned {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // The shell changes directory, then becomes the program (same pid).
        let argv = (["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory.path, program] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
        guard result == 0 else { throw HarnessError("cannot start \(program): \(String(cString: strerror(result)))") }
        return Spawned(pid: pid)
    }

    /// The exit status once the child has ended (128 + N when killed by signal N), else nil.
    mutating func poll() -> Int32? {
        if status == nil { reap(options: WNOHANG) }
        return status
    }

    /// Waits for the child to end; after `timeout` seconds kills it and returns nil.
    mutating func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while poll() == nil {
            if Date() >= deadline {
                kill(pid, SIGKILL)
                reap(options: 0)
                return nil
            }
            usleep(10_000)
        }
        return status
    }

    private mutating func reap(options: Int32) {
        var raw: Int32 = 0
        var usage = rusage()
        let result = wait4(pid, &raw, options, &usage)
        guard result == pid else {
            if result < 0 && errno != EINTR { status = -1 }
            return
        }
        let signal = raw & 0x7f
        status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        cpuSeconds = seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
