// Two processes over ApusTransport: this one measures, a spawned copy of itself answers.
//   transport-bench pingpong SIZE ITERATIONS   -> "p50_ns p99_ns" of RTT/2
//   transport-bench throughput SIZE COUNT      -> "messages_per_s megabytes_per_s received sent"
//   transport-bench loopback COUNT             -> "ns" per 8 B hand-off to itself in one thread: the
//                                                 software cost of publish + receive + release alone
import ApusTransport
import Glibc

let layout = InboxLayout(rings: [
    InputRingLayout(capacity: 10, policy: .backpressure),  // ping-pong: the default queue_size
    InputRingLayout(capacity: 256, policy: .backpressure),  // throughput
])
let basePool = PoolLayout(slotCount: 64, payloadCapacity: 4096, metadataCapacity: 256)

func fail(_ message: String) -> Never {
    print("transport-bench: \(message)")
    exit(1)
}

func words(_ bytes: [UInt8]) -> [UInt64] {
    stride(from: 0, to: bytes.count - bytes.count % 8, by: 8).map { offset in
        bytes[offset..<(offset + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}

func bytes(_ words: [UInt64]) -> [UInt8] {
    words.flatMap { word in withUnsafeBytes(of: word.littleEndian, Array.init) }
}

/// One side: its own inbox, a publisher feeding the other side's inbox, and the socket to the other.
final class Side {
    let channel: ControlChannel
    let inbox: Inbox
    var publisher: Publisher!
    var subscriber: Subscriber!
    var commands: [[UInt64]] = []
    var pendingPools: [MappedPool] = []

    init(channel: ControlChannel, own: Inbox, peer: Inbox) throws(TransportError) {
        self.channel = channel
        self.inbox = own
        let configuration = Publisher.Configuration(name: "bench", pool: basePool, largeSlotCount: 16, maxSampleSize: 64 << 20)
        publisher = try Publisher(
            configuration: configuration,
            outputs: [[EdgeTarget(inbox: peer, ring: 0, bit: 1)], [EdgeTarget(inbox: peer, ring: 1, bit: 2)]]
        ) { (pool: SamplePool) throws(TransportError) in
            try channel.send(bytes([2, UInt64(pool.index)] + pool.layout.encoded), fds: [pool.data.fd, pool.control.fd])
        }
        subscriber = try Subscriber(inbox: own, inputs: [InputBinding(producer: 0, bit: 1), InputBinding(producer: 0, bit: 2)]) {
            [unowned self] (_, index) throws(TransportError) in
            while true {
                if let found = pendingPools.firstIndex(where: { $0.index == index }) { return pendingPools.remove(at: found) }
                try readMessage()
            }
        }
    }

    /// Reads one message: a pool announcement (kept) or a command (queued).
    func readMessage() throws(TransportError) {
        let (payload, fds) = try channel.receive()
        let message = words(payload)
        if message.first == 2, fds.count == 2 {
            pendingPools.append(
                try MappedPool(
                    index: Int(message[1]), layout: PoolLayout(encoded: Array(message[2...])),
                    dataFD: fds[0], controlFD: fds[1]))
        } else {
            commands.append(message)
        }
    }

}

/// The hand-off path as a user of the transport writes it, with no bookkeeping of the bench's own.
@inline(__always)
func nextSample(_ subscriber: Subscriber) throws(TransportError) -> ReceivedSample {
    guard case .sample(let sample) = try subscriber.receive(timeoutNanoseconds: 30_000_000_000) else {
        fail("no sample within 30 s")
    }
    return sample
}

let emptyMetadata = SampleMetadata()

/// The sequence number a sample carries (0 when it is shorter than 8 bytes): both sides read what
/// they receive, as a node does, and the reference programs do.
@inline(__always)
func sequence(in sample: ReceivedSample) -> UInt64 {
    sample.payload.count >= 8 ? sample.payload.loadUnaligned(as: UInt64.self) : 0
}

@inline(__always)
func send(_ publisher: Publisher, size: Int, output: Int, sequence: UInt64) throws(TransportError) {
    let sample = try publisher.allocate(size)
    let payload = publisher.payload(sample)
    if size >= 8 { payload.storeBytes(of: sequence, as: UInt64.self) }
    try publisher.publish(sample, output: output, metadata: emptyMetadata)
}

func spawnPeer(socket: Int32) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, socket, 3)
    var pid: pid_t = 0
    let arguments = [CommandLine.arguments[0], "--peer"]
    var argv = arguments.map { strdup($0) } + [nil]
    let result = posix_spawn(&pid, "/proc/self/exe", &actions, nil, &argv, environ)
    guard result == 0 else { fail("posix_spawn: \(result)") }
    return pid
}

func runPeer() throws(TransportError) {
    let channel = ControlChannel(adopting: 3)
    let (_, fds) = try channel.receive()
    guard fds.count == 2 else { fail("peer expected two inboxes") }
    let side = try Side(channel: channel, own: Inbox(adopting: fds[0], layout: layout), peer: Inbox(adopting: fds[1], layout: layout))
    while true {
        while side.commands.isEmpty {
            do { try side.readMessage() } catch .disconnected { return }
        }
        let command = side.commands.removeFirst()
        guard command.count == 4, command[0] == 3 else { fail("bad command \(command)") }
        let size = Int(command[2])
        let count = Int(command[3])
        let (publisher, subscriber) = (side.publisher!, side.subscriber!)
        if command[1] == 0 {
            // As a node does: answer, then let go of what it answered.
            for _ in 0..<count {
                let sample = try nextSample(subscriber)
                try send(publisher, size: size, output: 0, sequence: sequence(in: sample))
                subscriber.release(sample)
            }
        } else {
            for index in 0..<count { try send(publisher, size: size, output: 1, sequence: UInt64(index)) }
        }
    }
}

func runMeasurement(mode: String, size: Int, count: Int) throws(TransportError) {
    let (mine, theirs) = try ControlChannel.pair()
    let ownInbox = try Inbox(layout: layout, name: "bench-a")
    let peerInbox = try Inbox(layout: layout, name: "bench-b")
    _ = fcntl(theirs.fd, F_SETFD, 0)
    let pid = spawnPeer(socket: theirs.fd)
    try mine.send([1], fds: [peerInbox.segment.fd, ownInbox.segment.fd])
    let side = try Side(channel: mine, own: ownInbox, peer: peerInbox)
    let (publisher, subscriber) = (side.publisher!, side.subscriber!)

    if mode == "pingpong" {
        let warmup = count / 10 + 10
        try mine.send(bytes([3, 0, UInt64(size), UInt64(warmup + count)]))
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        for index in 0..<(warmup + count) {
            let start = monotonicNanoseconds()
            try send(publisher, size: size, output: 0, sequence: UInt64(index))
            let reply = try nextSample(subscriber)
            let echoed = sequence(in: reply)
            let end = monotonicNanoseconds()
            subscriber.release(reply)
            if size >= 8, echoed != UInt64(index) { fail("reply \(index) carried \(echoed)") }
            if index >= warmup { samples.append((end - start) / 2) }
        }
        samples.sort()
        print("\(samples[count / 2]) \(samples[count * 99 / 100])")
    } else {
        try mine.send(bytes([3, 1, UInt64(size), UInt64(count)]))
        var received = 0
        let first = try nextSample(subscriber)
        let start = monotonicNanoseconds()
        subscriber.release(first)
        received += 1
        while received < count {
            subscriber.release(try nextSample(subscriber))
            received += 1
        }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let rate = Double(count - 1) / seconds
        let megabytes = (rate * Double(size) / 1e5).rounded() / 10
        print("\(Int(rate)) \(megabytes) \(received) \(count)")
    }
    shutdown(mine.fd, Int32(SHUT_RDWR))
    var status: Int32 = 0
    waitpid(pid, &status, 0)
}

/// One thread publishing into its own inbox: every line stays in its cache, so what is left is the
/// cost of the instructions, locked operations and the clock read of a hand-off.
func runLoopback(count: Int) throws(TransportError) {
    let inbox = try Inbox(layout: layout, name: "bench-loopback")
    var mapped: [MappedPool] = []
    let publisher = try Publisher(
        configuration: Publisher.Configuration(name: "bench", pool: basePool),
        outputs: [[EdgeTarget(inbox: inbox, ring: 0, bit: 1)], [EdgeTarget(inbox: inbox, ring: 1, bit: 2)]]
    ) { (pool: SamplePool) throws(TransportError) in
        mapped.append(try MappedPool(index: pool.index, layout: pool.layout, dataFD: dup(pool.data.fd), controlFD: dup(pool.control.fd)))
    }
    let subscriber = try Subscriber(inbox: inbox, inputs: [InputBinding(producer: 0, bit: 1), InputBinding(producer: 0, bit: 2)]) {
        (_, index) throws(TransportError) in mapped[index]
    }
    let start = monotonicNanoseconds()
    for index in 0..<count {
        try send(publisher, size: 8, output: 0, sequence: UInt64(index))
        let sample = try nextSample(subscriber)
        let received = sequence(in: sample)
        subscriber.release(sample)
        if received != UInt64(index) { fail("sample \(index) carried \(received)") }
    }
    print(Double(monotonicNanoseconds() - start) / Double(count))
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    if arguments.first == "--peer" {
        try runPeer()
    } else if arguments.count == 2, arguments[0] == "loopback", let count = Int(arguments[1]), count > 0 {
        try runLoopback(count: count)
    } else if arguments.count == 3, ["pingpong", "throughput"].contains(arguments[0]),
        let size = Int(arguments[1]), let count = Int(arguments[2]), count > 1
    {
        try runMeasurement(mode: arguments[0], size: size, count: count)
    } else {
        fail("usage: transport-bench pingpong|throughput SIZE COUNT, or transport-bench loopback COUNT")
    }
} catch {
    fail("\(error)")
}
