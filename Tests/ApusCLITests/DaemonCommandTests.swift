import Foundation
import Glibc
import Testing

/// Daemon mode end to end: `apus up`, start, list, logs, stop, down, with real daemons, dataflows
/// and nodes; the control socket against garbage, stale sockets and other users.
@Suite(.serialized) struct DaemonCommandTests {
    /// A short private runtime folder (Unix socket paths are limited to 108 bytes).
    let runtime: String
    let folder: URL
    let tag = "apus-daemon-test-\(UUID().uuidString.prefix(8))"
    let shmBefore = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
    let bin = RunHarness.binaries

    init() throws {
        var template = Array("/tmp/apus-d-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
        runtime = String(cString: made)
        folder = URL(fileURLWithPath: runtime).appendingPathComponent("flows")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = runtime
        environment["APUS_TEST_TAG"] = tag
        return environment
    }

    var socket: String { runtime + "/apus/daemon.sock" }

    func apus(_ arguments: String...) throws -> ApusCommand.Result {
        try ApusCommand.run(arguments, in: folder, environment: environment)
    }

    /// A dataflow of the example sender and receiver: `count` messages, one every `period` ms.
    func writeFlow(_ name: String, count: Int, period: Int = 50) throws {
        try """
        nodes:
          - id: sender
            path: \(bin.path)/sender
            args: --count \(count)
            inputs:
              tick: apus/timer/millis/\(period)
            outputs: [count]
          - id: receiver
            path: \(bin.path)/receiver
            inputs:
              count: sender/count
        """.write(to: folder.appendingPathComponent("\(name).yml"), atomically: true, encoding: .utf8)
    }

    func survivors() -> [Int32] {
        let own = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            guard pid != own, let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return String(decoding: environ, as: UTF8.self).contains("APUS_TEST_TAG=\(tag)")
                && !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? false)
        }
    }

    /// Ends whatever is left (after a failed expectation) and checks nothing of the test remains.
    func cleanUp() {
        _ = try? apus("down", "--force")
        let deadline = Date().addingTimeInterval(15)
        while !survivors().isEmpty, Date() < deadline { usleep(50_000) }
        let left = survivors()
        for pid in left { kill(pid, SIGKILL) }
        #expect(left == [], "processes of the test left behind")
        let shm = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).subtracting(shmBefore)
        #expect(shm == [], "shared memory left in /dev/shm")
        try? FileManager.default.removeItem(atPath: runtime)
    }

    @Test func twoDataflowsAtOnceWithListLogsStopAndDown() throws {
        defer { cleanUp() }
        let up = try apus("up")
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stdout.hasPrefix("apus daemon 0.1.0 running (pid "), "\(up.stdout)")
        let again = try apus("up")
        #expect(again.status == 0)
        #expect(again.stdout.hasPrefix("an apus daemon is already running"), "\(again.stdout)")
        var status = stat()
        #expect(stat(runtime + "/apus", &status) == 0 && status.st_mode & 0o777 == 0o700)
        #expect(stat(socket, &status) == 0 && status.st_mode & 0o777 == 0o600)

        try writeFlow("long", count: 100_000)
        let alpha = try apus("start", "long.yml", "--name", "alpha")
        #expect(alpha.status == 0, "\(alpha.stderr)")
        #expect(alpha.stdout.hasPrefix("started alpha (id "), "\(alpha.stdout)")
        let beta = try apus("start", "long.yml", "--name", "beta")
        #expect(beta.status == 0, "\(beta.stderr)")
        let clash = try apus("start", "long.yml", "--name", "alpha")
        #expect(clash.status == 1)
        #expect(clash.stderr.contains("a dataflow named 'alpha' is running"), "\(clash.stderr)")
        try "nodes: {}".write(to: folder.appendingPathComponent("bad.yml"), atomically: true, encoding: .utf8)
        let bad = try apus("start", "bad.yml")
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("bad.yml:1:8: key 'nodes'"), "\(bad.stderr)")

        usleep(1_000_000)
        let list = try apus("list")
        #expect(list.status == 0, "\(list.stderr)")
        let rows = list.stdout.split(separator: "\n")
        #expect(rows.first?.hasPrefix("NAME") == true && rows.count == 3, "\(list.stdout)")
        #expect(rows.contains { $0.hasPrefix("alpha ") && $0.contains(" running ") }, "\(list.stdout)")
        let json = try apus("list", "--json")
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(Set(listed.compactMap { $0["name"] as? String }) == ["alpha", "beta"])
        #expect(listed.allSatisfy { $0["nodes"] as? Int == 2 && $0["status"] as? String == "running" && $0["restarts"] as? Int == 0 })

        let logs = try apus("logs", "alpha", "receiver")
        #expect(logs.status == 0, "\(logs.stderr)")
        #expect(logs.stdout.hasPrefix("count: [0] (latency "), "\(logs.stdout)")
        let all = try apus("logs", "alpha")
        #expect(all.stdout.contains("[receiver] count: [0] (latency "), "\(all.stdout)")

        // --follow sees lines written after it started, and ends with the dataflow.
        let output = folder.appendingPathComponent("follow.out")
        var follower = try Spawned.start(
            ApusCommand.binary.path, ["logs", "beta", "receiver", "--follow"], directory: folder, environment: environment,
            stdout: output, stderr: folder.appendingPathComponent("follow.err"))
        usleep(300_000)
        let before = (try? String(contentsOf: output, encoding: .utf8))?.split(separator: "\n").count ?? 0
        usleep(700_000)
        let stopBeta = try apus("stop", "beta", "--grace", "2s")
        #expect(stopBeta.status == 0, "\(stopBeta.stderr)")
        #expect(stopBeta.stdout.hasPrefix("stopped beta (id "), "\(stopBeta.stdout)")
        #expect(follower.wait(timeout: 20) == 0)
        let followed = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
        #expect(followed.count > before + 5, "follow printed \(followed.count) lines, \(before) before the wait")
        #expect(followed.last?.hasPrefix("received ") == true, "\(followed.suffix(3))")

        // One stopped, the other keeps running.
        let after = try apus("list", "--json")
        let states = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [[String: Any]])
        #expect(states.first { $0["name"] as? String == "beta" }?["status"] as? String == "finished")
        #expect(states.first { $0["name"] as? String == "alpha" }?["status"] as? String == "running")

        let unknown = try apus("logs", "nope")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no dataflow named 'nope' (dataflows: alpha ("), "\(unknown.stderr)")
        let ended = try apus("stop", "beta")
        #expect(ended.status == 1)
        #expect(ended.stderr.contains("dataflow 'beta' ("), "\(ended.stderr)")
        #expect(ended.stderr.contains(") has already ended: finished"), "\(ended.stderr)")
        let badGrace = try apus("stop", "alpha", "--grace", "soon")
        #expect(badGrace.status != 0 && badGrace.stderr.contains("--grace: 'soon' is not a duration"), "\(badGrace.stderr)")

        let refused = try apus("down")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("1 dataflow is running ('alpha'): stop it first, or `apus down --force`"), "\(refused.stderr)")
        let down = try apus("down", "--force")
        #expect(down.status == 0, "\(down.stderr)")
        #expect(down.stdout.contains("apus daemon stopped"))
        let gone = try apus("list")
        #expect(gone.status == 1)
        #expect(gone.stderr.contains("no apus daemon is running"), "\(gone.stderr)")
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    @Test func attachPrintsTheOutputAndExitsWithTheDataflowsStatus() throws {
        defer { cleanUp() }
        #expect(try apus("up").status == 0)
        try writeFlow("short", count: 5, period: 10)
        let attached = try apus("start", "short.yml", "--attach")
        #expect(attached.status == 0, "\(attached.stderr)")
        #expect(attached.stdout.contains("[receiver] count: [4]"), "\(attached.stdout)")
        #expect(attached.stdout.contains("[receiver] received 5 messages"), "\(attached.stdout)")

        try """
        nodes:
          - id: crasher
            path: /bin/sh
            args: -c 'echo going down; exit 3'
        """.write(to: folder.appendingPathComponent("crash.yml"), atomically: true, encoding: .utf8)
        let crashed = try apus("start", "crash.yml", "--attach")
        #expect(crashed.status == 1, "\(crashed.stdout)")
        #expect(crashed.stdout.contains("[crasher] going down"), "\(crashed.stdout)")
        let list = try apus("list", "--json")
        #expect(list.stdout.contains("\"status\" : \"failed\""), "\(list.stdout)")
    }

    /// Ctrl-C while attached (read through a signalfd, not a handler) asks the daemon to stop the
    /// dataflow; the attached CLI then prints its end and exits with its status.
    @Test func ctrlCWhileAttachedStopsTheDataflow() throws {
        defer { cleanUp() }
        #expect(try apus("up").status == 0)
        try writeFlow("long", count: 100_000)
        let out = folder.appendingPathComponent("attach.out")
        let err = folder.appendingPathComponent("attach.err")
        var attached = try Spawned.start(
            ApusCommand.binary.path, ["start", "long.yml", "--attach"], directory: folder,
            environment: environment, stdout: out, stderr: err)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !((try? String(contentsOf: out, encoding: .utf8)) ?? "").contains("[receiver] count:") { usleep(50_000) }
        kill(attached.pid, SIGINT)
        let status = attached.wait(timeout: 20)
        let printed = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(printed) \((try? String(contentsOf: err, encoding: .utf8)) ?? "")")
        #expect(printed.contains("[receiver] received "), "the receiver saw STOP and ended: \(printed)")
        let listed = try apus("list", "--json")
        #expect(listed.stdout.contains("\"status\" : \"finished\""), "\(listed.stdout)")
    }

    /// Connects to the daemon's socket directly.
    func raw() throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socket.utf8) + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw HarnessError("connect: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends bytes and returns the daemon's error message (or whatever it answered) once it closes
    /// the connection.
    func exchange(_ bytes: [UInt8], halfClose: Bool = true) throws -> String {
        try exchangeAndEnd(bytes, halfClose: halfClose).answer
    }

    /// Sends `bytes` and reads until the daemon closes the connection or 5 s pass; `closed` says
    /// whether the daemon closed it.
    func exchangeAndEnd(_ bytes: [UInt8], halfClose: Bool) throws -> (answer: String, closed: Bool) {
        let fd = try raw()
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var closed = false
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            closed = count == 0
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        let body = Data(answer.dropFirst(min(4, answer.count)))
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let error = object["error"] as? String {
            return (error, closed)
        }
        return (String(decoding: body, as: UTF8.self), closed)
    }

    /// A request as the CLI frames it: a 4-byte little-endian length, then the JSON.
    func framed(_ text: String) -> [UInt8] {
        let body = Array(text.utf8)
        return withUnsafeBytes(of: UInt32(body.count).littleEndian, Array.init) + body
    }

    func daemonPID() throws -> Int32 {
        let text = try String(contentsOfFile: runtime + "/apus/daemon.log", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").last { $0.contains("listening on") })
        return try #require(Int32(line.split(separator: "(pid ")[1].prefix { $0.isNumber }))
    }

    /// `apus stop --grace 0` kills at once. It took 12 s: the daemon's two SIGINTs to `apus run`
    /// merged into one, which then ran its own default grace (10 s) and SIGTERM time (2 s).
    @Test func stopWithNoGraceKillsAtOnce() throws {
        defer { cleanUp() }
        try """
        nodes:
          - id: stubborn
            path: \(bin.path)/apus-test-node
            args: --ignore-stop
            inputs: { tick: apus/timer/millis/50 }
        """.write(to: folder.appendingPathComponent("stubborn.yml"), atomically: true, encoding: .utf8)
        #expect(try apus("up").status == 0)
        #expect(try apus("start", "stubborn.yml").status == 0)
        usleep(500_000)
        let started = Date()
        let stopped = try apus("stop", "stubborn", "--grace", "0")
        let elapsed = Date().timeIntervalSince(started)
        #expect(stopped.status == 0, "\(stopped.stdout) \(stopped.stderr)")
        #expect(elapsed < 3, "apus stop --grace 0 took \(elapsed) s")
        #expect(stopped.stdout.contains("stopped stubborn"), "\(stopped.stdout)")
    }

    /// `apus list` counts the restarts that `apus run` reports on its events pipe.
    @Test func listCountsEachRestartOfADataflow() throws {
        defer { cleanUp() }
        try """
        nodes:
          - id: flaky
            path: \(bin.path)/apus-test-node
            args: --fail-after 1
            restart_policy: on-failure
            max_restarts: 2
            inputs: { tick: apus/timer/millis/20 }
        """.write(to: folder.appendingPathComponent("flaky.yml"), atomically: true, encoding: .utf8)
        #expect(try apus("up").status == 0)
        let attached = try apus("start", "flaky.yml", "--attach")
        #expect(attached.status == 1, "\(attached.stdout) \(attached.stderr)")
        let listed = try apus("list", "--json")
        let dataflows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(dataflows.first?["restarts"] as? Int == 2, "\(listed.stdout) \(listed.stderr)")
        #expect(dataflows.first?["status"] as? String == "failed", "\(listed.stdout)")
    }

    @Test func machineOptionsAreCheckedBeforeAnythingStarts() throws {
        defer { cleanUp() }
        for (arguments, problem) in [
            (["up", "--label", "gpu=true"], "--label needs --machine"),
            (["up", "--dds-domain", "3"], "--dds-domain needs --machine"),
            (["up", "--machine", "b", "--label", "gpu"], "--label 'gpu': expected KEY=VALUE"),
            (["daemon", "--label", "a b=c", "--machine", "b"], "--label 'a b=c': expected KEY=VALUE"),
            (["start", "flow.yml", "--discovery-timeout", "5x"], "--discovery-timeout"),
            (["start", "flow.yml", "--label", "=x"], "--label '=x': expected KEY=VALUE"),
            (["up", "--machine", "a b"], "--machine 'a b': a machine name may contain only"),
            (["daemon", "--machine=-x"], "--machine '-x': a machine name"),
            (["start", "flow.yml", "--machine", ".b"], "--machine '.b': a machine name"),
            (["run", "flow.yml", "--machine", "b/c"], "--machine 'b/c': a machine name"),
        ] {
            let result = try ApusCommand.run(arguments, in: folder, environment: environment)
            #expect(result.status != 0 && result.stderr.contains(problem), "\(arguments): \(result.stderr)")
        }
        // Nothing was started: no daemon answers.
        #expect(try apus("list").stderr.contains("no apus daemon is running"))
    }

    @Test func staleSocketsGarbageAndOtherUsersAreHandled() throws {
        defer { cleanUp() }
        // A socket file left by a daemon that died: nothing listens on it.
        try FileManager.default.createDirectory(
            atPath: runtime + "/apus", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let stale = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(self.socket.utf8) + [0]) }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(stale)
        #expect(FileManager.default.fileExists(atPath: socket))
        let noDaemon = try apus("list")
        #expect(noDaemon.status == 1 && noDaemon.stderr.contains("no apus daemon is running"), "\(noDaemon.stderr)")
        let up = try apus("up")
        #expect(up.status == 0, "\(up.stderr)")
        let pid = try daemonPID()
        let descriptors = { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let openBefore = descriptors()

        // Malformed, oversized, truncated, random and wrong-version requests: refused or dropped.
        #expect(try exchange(framed("{not json")).contains("malformed request"))
        #expect(try exchange([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).contains("over the limit of 1048576 bytes"))
        #expect(
            try exchange(framed("{\"version\":\"9.9.9\",\"command\":\"ping\"}")).contains(
                "version mismatch: this client is apus 9.9.9, the daemon at \(socket) is apus 0.1.0"))
        #expect(try exchange(framed("{\"version\":\"0.1.0\",\"command\":\"explode\"}")).contains("malformed request"))
        _ = try exchange(Array(framed("{\"version\":\"0.1.0\",\"command\":\"ping\"}").prefix(10)))
        var generator = SystemRandomNumberGenerator()
        for round in 0..<100 {
            var bytes = (0..<Int.random(in: 1...3000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if round % 2 == 0, bytes.count > 4 {
                bytes[0] = 0
                bytes[1] = 0
            }  // plausible lengths too
            _ = try exchange(bytes)
        }
        // A refused request closes the connection even while the client keeps its side open.
        for _ in 0..<50 {
            let (answer, closed) = try exchangeAndEnd(framed("{not json"), halfClose: false)
            #expect(answer.contains("malformed request") && closed, "\(answer)")
        }
        let version = try apus("list")
        #expect(version.status == 0 && version.stdout == "no dataflows\n", "the daemon survives: \(version.stderr)")
        usleep(200_000)
        #expect(descriptors() == openBefore, "the daemon leaks descriptors")

        // Another user can neither enter the folder nor connect.
        let other = try ApusCommand.run(
            program: "setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ApusCommand.binary.path, "list"],
            in: URL(fileURLWithPath: "/"), environment: environment)
        if getuid() == 0 {
            #expect(other.status == 1, "\(other.stdout)")
            #expect(other.stderr.contains("Permission denied"), "\(other.stderr)")
        }

        // A second daemon started by hand refuses: the first holds the lock.
        let second = try apus("daemon")
        #expect(second.status == 1)
        #expect(second.stderr.contains("another apus daemon is running"), "\(second.stderr)")
        #expect(try apus("list").status == 0)

        // A daemon killed with SIGKILL takes its dataflows and their nodes with it, and leaves its
        // socket behind: the next `apus up` replaces it.
        try writeFlow("long", count: 100_000)
        #expect(try apus("start", "long.yml").status == 0)
        usleep(500_000)
        #expect(survivors().count >= 4, "daemon, apus run and two nodes")
        kill(pid, SIGKILL)
        let deadline = Date().addingTimeInterval(10)
        while !survivors().isEmpty, Date() < deadline { usleep(50_000) }
        #expect(survivors() == [], "the dataflow outlived its daemon")
        #expect(FileManager.default.fileExists(atPath: socket))
        let orphaned = try apus("list")
        #expect(orphaned.status == 1 && orphaned.stderr.contains("no apus daemon is running"), "\(orphaned.stderr)")
        let revived = try apus("up")
        #expect(revived.status == 0 && revived.stdout.hasPrefix("apus daemon 0.1.0 running"), "\(revived.stdout) \(revived.stderr)")
        #expect(try apus("list").stdout == "no dataflows\n")
    }
}
