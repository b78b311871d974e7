import ApusTransport
import Foundation
import Glibc
import TransportTestSupport

/// Stands in for the daemon in transport tests: creates inboxes, spawns peer processes, hands them
/// their segments over Unix sockets, relays pool announcements from producers to consumers, and
/// keeps its own mapping of every pool so a test can check that all samples came back.
final class TransportHarness: @unchecked Sendable {
    static let peerBinary: URL = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("apus-transport-peer")
        if FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/apus-transport-peer")
    }()

    final class Consumer: @unchecked Sendable {
        let peer: Peer
        let inbox: Inbox
        let channel: ControlChannel
        let lock = NSLock()
        /// Per ring: the producer feeding it and that edge's holder bit.
        let bindings: [InputBinding]

        init(peer: Peer, inbox: Inbox, channel: ControlChannel, bindings: [InputBinding]) {
            self.peer = peer
            self.inbox = inbox
            self.channel = channel
            self.bindings = bindings
        }

        func isFed(by producer: Int) -> Bool { bindings.contains { $0.producer == producer } }

        func send(_ message: HarnessMessage, fds: [Int32] = []) throws {
            lock.lock()
            defer { lock.unlock() }
            try channel.send(harness: message, fds: fds)
        }
    }

    let folder: URL
    let shmBefore: Set<String>
    private(set) var peers: [Peer] = []
    private(set) var consumers: [Consumer] = []
    private var producerChannels: [(id: Int, channel: ControlChannel)] = []
    private let poolsLock = NSLock()
    private var poolsByProducer: [Int: [MappedPool]] = [:]
    private var nextBit: [Int: Int] = [:]
    private var relays: [Thread] = []

    init() throws {
        folder = URL(fileURLWithPath: "/tmp/apus-transport-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        shmBefore = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
    }

    /// Spawns a peer and accepts its connection on a socket of its own.
    private func spawn(_ name: String, _ arguments: [String]) throws -> (Peer, ControlChannel) {
        let path = folder.appendingPathComponent("\(name).sock").path
        let listener = try ControlListener(path: path)
        let peer = try Peer(name: name, executable: Self.peerBinary, arguments: arguments + ["--socket", path])
        peers.append(peer)
        var poller = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 10_000) == 1 else { throw HarnessError("\(name) never connected: \(peer.output)") }
        return (peer, try listener.accept())
    }

    /// A consumer with one ring per entry of `inputs` (the producer id feeding it, capacity, policy).
    @discardableResult
    func consumer(_ name: String, inputs: [(producer: Int, capacity: Int, policy: RingPolicy)], arguments: [String] = []) throws -> Consumer
    {
        let layout = InboxLayout(rings: inputs.map { InputRingLayout(capacity: $0.capacity, policy: $0.policy) })
        let inbox = try Inbox(layout: layout, name: name)
        let bindings = inputs.map { input -> InputBinding in
            let bit = nextBit[input.producer, default: 1]
            nextBit[input.producer] = bit + 1
            return InputBinding(producer: input.producer, bit: bit)
        }
        let (peer, channel) = try spawn(name, ["consume"] + arguments)
        try channel.send(harness: .inbox(layout: layout, bindings: bindings), fds: [inbox.segment.fd])
        let consumer = Consumer(peer: peer, inbox: inbox, channel: channel, bindings: bindings)
        consumers.append(consumer)
        return consumer
    }

    /// A producer whose one output feeds every consumer ring bound to `id`.
    @discardableResult
    func producer(_ name: String, id: Int, pool: PoolLayout, arguments: [String], largeSlotCount: Int = 4, maxSampleSize: Int = 64 << 20)
        throws -> Peer
    {
        let (peer, channel) = try spawn(name, ["produce", "--id", "\(id)"] + arguments)
        try channel.send(harness: .producer(pool: pool, outputs: 1, largeSlotCount: largeSlotCount, maxSampleSize: maxSampleSize))
        for consumer in consumers {
            for (ring, binding) in consumer.bindings.enumerated() where binding.producer == id {
                try channel.send(
                    harness: .edge(output: 0, ring: ring, bit: binding.bit, inbox: consumer.inbox.layout), fds: [consumer.inbox.segment.fd])
            }
        }
        producerChannels.append((id, channel))
        return peer
    }

    /// A hostile peer given write access to ring 0 of `consumer`'s inbox.
    func corrupter(_ name: String, into consumer: Consumer, descriptor: UInt64, header: [String] = []) throws -> Peer {
        let (peer, channel) = try spawn(name, ["corrupt", "--descriptor", "\(descriptor)"] + header)
        try channel.send(harness: .edge(output: 0, ring: 0, bit: 1, inbox: consumer.inbox.layout), fds: [consumer.inbox.segment.fd])
        return peer
    }

    /// Sends `start` to everyone and relays pool announcements until the producers hang up.
    func start() throws {
        for consumer in consumers { try consumer.send(.start) }
        for (id, channel) in producerChannels {
            try channel.send(harness: .start)
            let thread = Thread { [self] in relay(from: channel, producer: id) }
            thread.start()
            relays.append(thread)
        }
    }

    private func relay(from channel: ControlChannel, producer: Int) {
        while let (message, fds) = try? channel.receiveHarnessMessage() {
            guard case .pool(_, let index, let layout) = message, fds.count == 2 else { continue }
            for consumer in consumers where consumer.isFed(by: producer) {
                try? consumer.send(message, fds: fds)
            }
            if let pool = try? MappedPool(index: index, layout: layout, dataFD: fds[0], controlFD: fds[1]) {
                poolsLock.lock()
                poolsByProducer[producer, default: []].append(pool)
                poolsLock.unlock()
            }
        }
    }

    func pools(of producer: Int) -> [MappedPool] {
        poolsLock.lock()
        defer { poolsLock.unlock() }
        return poolsByProducer[producer] ?? []
    }

    /// Slots still held in any pool of any producer.
    var usedSlots: Int {
        poolsLock.lock()
        defer { poolsLock.unlock() }
        return poolsByProducer.values.joined().reduce(0) { $0 + $1.view.usedSlots }
    }

    /// Entries in /dev/shm that were not there when the harness started.
    var newShmEntries: Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).subtracting(shmBefore)
    }

    func tearDown() {
        for peer in peers { peer.kill() }
        for peer in peers { _ = peer.wait(seconds: 10) }
        try? FileManager.default.removeItem(at: folder)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A spawned process and the lines it printed.
final class Peer: @unchecked Sendable {
    let name: String
    let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var buffer = Data()

    init(name: String, executable: URL, arguments: [String]) throws {
        self.name = name
        process.executableURL = executable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.buffer.append(data)
            while let newline = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                self.lines.append(String(decoding: self.buffer[..<newline], as: UTF8.self))
                self.buffer.removeSubrange(...newline)
            }
            self.lock.unlock()
        }
        try process.run()
    }

    var output: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }

    /// The first line starting with `prefix`, waiting up to `seconds`.
    func line(startingWith prefix: String, seconds: Double = 60) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let line = output.first(where: { $0.hasPrefix(prefix) }) { return line }
            usleep(2_000)
        }
        return nil
    }

    /// Waits for the process to end; nil if it is still running after `seconds`.
    func wait(seconds: Double = 60) -> (reason: Process.TerminationReason, status: Int32)? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(2_000) }
        if process.isRunning { return nil }
        usleep(20_000)  // let the reader collect the last lines
        return (process.terminationReason, process.terminationStatus)
    }

    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }
}
