// Ping-pong over the Swift node API, for bench/bench.py: zero-copy both ways, like pingpong.c.
//   bench-pingpong ping   (env SIZES, ROUNDS, WARMUP, BUDGET as bench/pingpong/ping.py)
//   bench-pingpong pong
import ApusNode
import Glibc

func environment(_ name: String, _ fallback: String) -> String {
    getenv(name).map { String(cString: $0) } ?? fallback
}

func sendSized(_ node: Node, _ output: String, _ size: Int, _ sequence: UInt64) throws {
    let sample = try node.allocate(output: output, count: size)
    withUnsafeBytes(of: sequence) { bytes in
        UnsafeMutableRawBufferPointer(sample.buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(min(size, 8))))
    }
    try node.send(sample)
}

func ping(_ node: Node) throws {
    let sizes = environment("SIZES", "8,4096,65536").split(separator: ",").compactMap { Int($0) }
    let rounds = Int(environment("ROUNDS", "200")) ?? 200
    let warmup = Int(environment("WARMUP", "20")) ?? 20
    let budget = Double(environment("BUDGET", "5")) ?? 5
    var sequence: UInt64 = 0
    func roundTrip(_ size: Int) throws -> Double {
        let start = ContinuousClock.now
        try sendSized(node, "ping", size, sequence)
        sequence += 1
        while let event = try node.next() {
            guard case .input(let input) = event else { continue }
            guard input.bytes.count == size else { fatalError("ping: sent \(size) bytes, got \(input.bytes.count) back") }
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.attoseconds) / 2e12 + Double(elapsed.components.seconds) * 5e5
        }
        fatalError("ping: the event stream ended before the reply")
    }
    for size in sizes {
        for _ in 0..<warmup { _ = try roundTrip(size) }
        var halves: [Double] = []
        let deadline = ContinuousClock.now + .seconds(budget)
        while halves.count < rounds, halves.count < 10 || ContinuousClock.now < deadline { halves.append(try roundTrip(size)) }
        halves.sort()
        func at(_ fraction: Double) -> String { String(format3(halves[Int(Double(halves.count) * fraction)])) }
        var line =
            "{\"size\": \(size), \"rounds\": \(halves.count), \"p50_us\": \(at(0.5)), \"p90_us\": \(at(0.9)), \"p99_us\": \(at(0.99))}\n"
        line.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
    }
}

func format3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

func pong(_ node: Node) throws {
    while let event = try node.next() {
        guard case .input(let input) = event else { continue }
        var sequence: UInt64 = 0
        let size = input.bytes.count
        withUnsafeMutableBytes(of: &sequence) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: input.bytes.prefix(8))) }
        input.release()
        try sendSized(node, "pong", size, sequence)
    }
}

do {
    let node = try Node()
    if CommandLine.arguments.dropFirst().first == "pong" { try pong(node) } else { try ping(node) }
} catch {
    print("bench-pingpong: \(error)")
    exit(1)
}
