// Prints, once a second, the message rate and latency of each input: latency from the `captured_ns`
// parameter when the message carries one (capture → here), else from when it was sent.
import ApusNode
import Glibc

struct Window {
    var count = 0
    var latencies: [UInt64] = []

    mutating func add(_ latency: UInt64) {
        count += 1
        latencies.append(latency)
    }

    func summary(over seconds: Double) -> String {
        guard !latencies.isEmpty else { return "no messages" }
        let sorted = latencies.sorted()
        let ms = { (value: UInt64) in String(Double(value / 1000) / 1000) }
        return
            "\(Int((Double(count) / seconds).rounded())) msg/s, latency p50 \(ms(sorted[sorted.count / 2])) ms, max \(ms(sorted.last!)) ms"
    }
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

do {
    let node = try Node()
    var windows: [String: Window] = [:]
    var totals: [String: Int] = [:]
    var since = monotonicNanoseconds()
    func report(now: UInt64) {
        let seconds = Double(now - since) / 1e9
        let parts = node.inputIDs.compactMap { id in windows[id].map { "\(id): \($0.summary(over: seconds))" } }
        if !parts.isEmpty { print("monitor: " + parts.joined(separator: " | ")) }
        windows = [:]
        since = now
    }
    while !node.isFinished {
        let event = try node.next(timeout: .seconds(1))
        let now = monotonicNanoseconds()
        if case .input(let input)? = event {
            var start = input.timestamp
            if case .int(let captured)? = input[parameter: "captured_ns"], captured > 0 { start = UInt64(captured) }
            windows[input.id, default: Window()].add(now >= start ? now - start : 0)
            totals[input.id, default: 0] += 1
        }
        if now - since >= 1_000_000_000 { report(now: now) }
    }
    report(now: monotonicNanoseconds())
    print("monitor: received " + node.inputIDs.map { "\(totals[$0] ?? 0) on \($0)" }.joined(separator: ", "))
} catch {
    var message = "monitor: \(error)\n"
    message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}
