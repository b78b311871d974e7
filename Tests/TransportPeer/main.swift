// A process for the transport tests: a producer, a consumer or a hostile writer, set up by the
// test harness over a Unix socket exactly as the daemon will set up nodes.
import ApusTransport
import Glibc
import TransportTestSupport

struct Options {
    var role = ""
    var socket = ""
    var id = 0
    var count = 0
    var size = 8
    var intervalMicroseconds = 0
    var linger = false
    var holdMilliseconds = 0
    var startDelayMilliseconds = 0
    var writeIntoPayload = false
    var descriptor: UInt64 = 0
    var length: UInt64 = 8
    var metadataLength: UInt32 = 0
    var elementType: UInt8 = 0
    var timeoutMilliseconds = 20_000

    init(_ arguments: [String]) {
        role = arguments.first ?? ""
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            func value() -> String { iterator.next() ?? "" }
            switch flag {
            case "--socket": socket = value()
            case "--id": id = Int(value()) ?? 0
            case "--count": count = Int(value()) ?? 0
            case "--size": size = Int(value()) ?? 8
            case "--interval-us": intervalMicroseconds = Int(value()) ?? 0
            case "--linger": linger = true
            case "--hold-ms": holdMilliseconds = Int(value()) ?? 0
            case "--start-delay-ms": startDelayMilliseconds = Int(value()) ?? 0
            case "--write-into-payload": writeIntoPayload = true
            case "--descriptor": descriptor = UInt64(value()) ?? 0
            case "--length": length = UInt64(value()) ?? 8
            case "--metadata-length": metadataLength = UInt32(value()) ?? 0
            case "--element-type": elementType = UInt8(value()) ?? 0
            case "--timeout-ms": timeoutMilliseconds = Int(value()) ?? 20_000
            default: fail("unknown flag \(flag)")
            }
        }
    }
}

func say(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ message: String) -> Never {
    say("error \(message)")
    exit(2)
}

func sleepMilliseconds(_ milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let channel: ControlChannel
do {
    channel = try ControlChannel.connect(path: options.socket)
} catch {
    fail("connect: \(error)")
}

func produce() throws(TransportError) {
    var edges: [[EdgeTarget]] = []
    var configuration: Publisher.Configuration?
    setup: while true {
        let (message, fds) = try channel.receiveHarnessMessage()
        switch message {
        case .producer(let pool, let outputs, let largeSlotCount, let maxSampleSize):
            configuration = Publisher.Configuration(
                name: "peer\(options.id)", pool: pool, largeSlotCount: largeSlotCount, maxSampleSize: maxSampleSize)
            edges = Array(repeating: [], count: outputs)
        case .edge(let output, let ring, let bit, let layout):
            edges[output].append(EdgeTarget(inbox: try Inbox(adopting: fds[0], layout: layout), ring: ring, bit: bit))
        case .start:
            break setup
        default:
            fail("unexpected \(message)")
        }
    }
    guard let configuration else { fail("no producer setup") }
    let publisher = try Publisher(configuration: configuration, outputs: edges) { (pool: SamplePool) throws(TransportError) in
        try channel.send(
            harness: .pool(producer: options.id, index: pool.index, layout: pool.layout), fds: [pool.data.fd, pool.control.fd])
    }
    var evicted = 0
    var failures = 0
    for sequence in 0..<options.count {
        let sample = try publisher.allocate(options.size)
        let payload = publisher.payload(sample)
        withUnsafeBytes(of: UInt64(sequence).littleEndian) { bytes in
            payload.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(payload.count)))
        }
        let metadata = SampleMetadata(
            elementType: .uint8, parameters: [("seq", .int(Int64(sequence))), ("from", .string("peer\(options.id)"))])
        do {
            evicted += try publisher.publish(sample, output: 0, metadata: metadata).evicted
        } catch .backpressureTimeout {
            failures += 1
        }
        if options.intervalMicroseconds > 0 {
            var request = timespec(tv_sec: 0, tv_nsec: options.intervalMicroseconds * 1000)
            nanosleep(&request, nil)
        }
    }
    say("sent \(options.count) evicted \(evicted) timeouts \(failures) pools \(publisher.pools.count)")
    if options.linger {
        while true { sleepMilliseconds(1000) }
    }
    publisher.closeOutputs()
}

func consume() throws(TransportError) {
    var pending: [(producer: Int, pool: MappedPool)] = []
    var inbox: Inbox?
    var bindings: [InputBinding] = []

    func handle(_ message: HarnessMessage, _ fds: [Int32]) throws(TransportError) -> Bool {
        switch message {
        case .inbox(let layout, let inputs):
            inbox = try Inbox(adopting: fds[0], layout: layout)
            bindings = inputs
        case .pool(let producer, let index, let layout):
            pending.append((producer, try MappedPool(index: index, layout: layout, dataFD: fds[0], controlFD: fds[1])))
        case .start:
            return true
        default:
            fail("unexpected \(message)")
        }
        return false
    }

    while true {
        let (message, fds) = try channel.receiveHarnessMessage()
        if try handle(message, fds) { break }
    }
    guard let inbox else { fail("no inbox") }
    let subscriber = try Subscriber(inbox: inbox, inputs: bindings) { (producer, index) throws(TransportError) in
        while true {
            if let found = pending.firstIndex(where: { $0.producer == producer && $0.pool.index == index }) {
                return pending.remove(at: found).pool
            }
            let (message, fds) = try channel.receiveHarnessMessage()
            _ = try handle(message, fds)
        }
    }
    for (producer, pool) in pending { try subscriber.add(pool, producer: producer) }
    pending.removeAll()
    say("ready")
    if options.startDelayMilliseconds > 0 { sleepMilliseconds(options.startDelayMilliseconds) }

    var counts = Array(repeating: 0, count: bindings.count)
    var last = Array(repeating: Int64(-1), count: bindings.count)
    var orderViolations = 0
    var errors: [String] = []
    var closed = 0
    var held: [ReceivedSample] = []
    while closed < bindings.count {
        let event: InboxEvent?
        do {
            event = try subscriber.receive(timeoutNanoseconds: UInt64(options.timeoutMilliseconds) * 1_000_000)
        } catch {
            errors.append(error.description)
            say("error \(error)")
            continue
        }
        guard let event else {
            say("timeout after \(counts) received")
            exit(3)
        }
        switch event {
        case .sample(let sample):
            if options.writeIntoPayload {
                say("writing into payload")
                UnsafeMutableRawPointer(mutating: sample.payload.baseAddress!).storeBytes(of: 0xFF, as: UInt8.self)
                say("write succeeded")
                exit(4)
            }
            let metadata: SampleMetadata
            do {
                metadata = try sample.metadata()
            } catch {
                errors.append(error.description)
                say("error \(error)")
                subscriber.release(sample)
                continue
            }
            guard case .int(let sequence) = metadata["seq"] else { fail("sample without seq") }
            var inPayload: UInt64 = 0
            withUnsafeMutableBytes(of: &inPayload) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: sample.payload.prefix(8))) }
            if sequence <= last[sample.input] || (sample.payload.count >= 8 && Int64(inPayload) != sequence) {
                orderViolations += 1
            }
            last[sample.input] = sequence
            counts[sample.input] += 1
            if options.holdMilliseconds > 0 {
                held.append(sample)
                sleepMilliseconds(options.holdMilliseconds)
                if held.count > 4 { subscriber.release(held.removeFirst()) }
            } else {
                subscriber.release(sample)
            }
        case .inputClosed:
            closed += 1
        case .control:
            fail("the harness posts no control")
        }
    }
    for sample in held { subscriber.release(sample) }
    say(
        "received \(counts.map(String.init).joined(separator: ",")) last \(last.map(String.init).joined(separator: ",")) "
            + "violations \(orderViolations) errors \(errors.count)")
}

/// Writes an entry (descriptor and sample header) straight into ring 0 of the inbox it is given, as
/// a faulty or hostile process could: the layout is public, so nothing stops it.
func corrupt() throws(TransportError) {
    let (message, fds) = try channel.receiveHarnessMessage()
    guard case .edge(_, _, _, let layout) = message else { fail("expected an edge") }
    let inbox = try Inbox(adopting: fds[0], layout: layout)
    let ring = inbox.segment.base + 128
    let tail = ring.load(fromByteOffset: 64, as: UInt64.self)
    let entry = ring + InputRingLayout.headerSize + Int(tail % UInt64(layout.rings[0].entryCount)) * 64
    entry.storeBytes(of: options.descriptor, toByteOffset: 8, as: UInt64.self)
    entry.storeBytes(of: UInt64.max, toByteOffset: 16, as: UInt64.self)
    entry.storeBytes(of: options.length, toByteOffset: 32, as: UInt64.self)
    entry.storeBytes(of: options.metadataLength, toByteOffset: 40, as: UInt32.self)
    entry.storeBytes(of: options.elementType, toByteOffset: 44, as: UInt8.self)
    entry.storeBytes(of: tail + 1, as: UInt64.self)
    ring.storeBytes(of: tail + 1, toByteOffset: 64, as: UInt64.self)
    inbox.doorbell.ring()
    say("corrupted")
}

do {
    switch options.role {
    case "produce": try produce()
    case "consume": try consume()
    case "corrupt": try corrupt()
    default: fail("unknown role '\(options.role)'")
    }
} catch {
    fail("\(error)")
}
