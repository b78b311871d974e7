import ApusTransport
import CApusSys
import Glibc

/// Runs the nodes' `build` steps before anything starts: each distinct command once, in the
/// dataflow folder, with its output streamed as `[node] line`. The running `apus` comes first on
/// PATH, so `$(apus config --cflags --libs)` in a build step refers to this installation.
struct Builder {
    let plan: RunPlan
    let console: Console
    let environment: [String]
    let signals: Int32

    /// nil when every build succeeded; otherwise the exit code for `apus run`.
    func run() -> Int32? {
        var environment = environment
        if let directory = Installation.executableDirectory() {
            let path = environmentValue(environment, "PATH") ?? "/usr/local/bin:/usr/bin:/bin"
            environment = mergeEnvironment(environment, [("PATH", "\(directory):\(path)")])
        }
        var done: Set<String> = []
        for (index, node) in plan.nodes.enumerated() {
            for command in node.descriptor.builds where done.insert(command).inserted {
                if let code = build(command, node: index, environment: environment) { return code }
            }
        }
        return nil
    }

    /// Runs one build step for node `index`; nil when it succeeded, else the exit code for `apus run`.
    private func build(_ command: String, node index: Int, environment: [String]) -> Int32? {
        let id = plan.nodes[index].descriptor.id
        console.line(node: index, id: id, "build: \(command)")
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(["/bin/sh", "-c", command], environment: environment, directory: plan.dataflow.directory)
        } catch {
            console.note("build of node '\(id)' could not start: \(error)")
            return 1
        }
        guard let status = stream(child, node: index, id: id) else {
            console.note("interrupted during the build of node '\(id)'")
            return 130
        }
        if status.signaled || status.value != 0 {
            console.note("build of node '\(id)' failed (\(describeExit(signaled: status.signaled, value: status.value))): \(command)")
            return 1
        }
        return nil
    }

    /// Streams the build's output until it exits; nil if interrupted (the build is then killed).
    private func stream(_ child: ChildProcess, node: Int, id: String) -> (signaled: Bool, value: Int32)? {
        var child = child
        var lines = [LineSplitter(), LineSplitter()]
        while child.stdout >= 0 || child.stderr >= 0 {
            var entries = [
                pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
                pollfd(fd: child.stdout, events: Int16(POLLIN), revents: 0),
                pollfd(fd: child.stderr, events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&entries, 3, -1) >= 0 || errno == EINTR else { break }
            if entries[0].revents != 0 {
                var interrupted = false
                while true {
                    let signal = apussys_signalfd_read(signals)
                    guard signal > 0 else { break }
                    if signal != SIGCHLD { interrupted = true }
                }
                if interrupted {
                    kill(-child.pid, SIGKILL)
                    _ = wait(for: child)
                    for fd in [child.stdout, child.stderr] where fd >= 0 { close(fd) }
                    return nil
                }
            }
            for (slot, fd) in [child.stdout, child.stderr].enumerated() where fd >= 0 && entries[slot + 1].revents != 0 {
                let open = drainPipe(fd, into: &lines[slot]) { console.line(node: node, id: id, $0) }
                if !open {
                    close(fd)
                    if slot == 0 { child.stdout = -1 } else { child.stderr = -1 }
                }
            }
        }
        return wait(for: child)
    }

    private func wait(for child: ChildProcess) -> (signaled: Bool, value: Int32) {
        var signaled: Int32 = 0
        var value: Int32 = 0
        _ = apussys_reap(child.pid, 1, &signaled, &value)
        return (signaled != 0, value)
    }
}
