// `apus topic hz`'s figures: rate, period spread and bandwidth over the latest messages, from the
// timestamps their sender stamped.
import Foundation

struct RateWindow {
    let capacity: Int
    private var timestamps: [UInt64] = []
    private var sizes: [Int] = []
    /// Where the next message goes once the window is full (the oldest is there).
    private var next = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func add(timestamp: UInt64, bytes: Int) {
        if timestamps.count < capacity {
            timestamps.append(timestamp)
            sizes.append(bytes)
        } else {
            timestamps[next] = timestamp
            sizes[next] = bytes
            next = (next + 1) % capacity
        }
    }

    struct Figures {
        var messages: Int
        var rate: Double
        var minPeriod: Double
        var maxPeriod: Double
        var stddevPeriod: Double
        var bytesPerSecond: Double

        var text: String {
            func ms(_ seconds: Double) -> String { String(format: "%.3f ms", seconds * 1e3) }
            return String(format: "average rate: %.3f Hz", rate)
                + "\n  min: \(ms(minPeriod))  max: \(ms(maxPeriod))  std dev: \(ms(stddevPeriod))  window: \(messages)"
                + "\n  bandwidth: \(Self.bandwidth(bytesPerSecond))"
        }

        var json: String {
            String(
                format: #"{"messages":%d,"rate":%.6f,"min_period":%.9f,"max_period":%.9f,"stddev_period":%.9f,"bytes_per_second":%.3f}"#,
                messages, rate, minPeriod, maxPeriod, stddevPeriod, bytesPerSecond)
        }

        static func bandwidth(_ value: Double) -> String {
            for (limit, unit) in [(1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")] where value >= limit {
                return String(format: "%.2f %@", value / limit, unit)
            }
            return String(format: "%.0f B/s", value)
        }
    }

    /// Nil until two messages came. Periods are between consecutive messages in the order they
    /// were sent.
    var figures: Figures? {
        guard timestamps.count >= 2 else { return nil }
        let order = timestamps.count < capacity ? Array(timestamps.indices) : (0..<capacity).map { (next + $0) % capacity }
        let stamps = order.map { timestamps[$0] }
        let periods = zip(stamps.dropFirst(), stamps).map { Double($0 &- $1) / 1e9 }
        let span = Double(stamps.last! &- stamps.first!) / 1e9
        let mean = span / Double(periods.count)
        let variance = periods.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(periods.count)
        let bytes = order.dropFirst().reduce(0) { $0 + sizes[$1] }
        return Figures(
            messages: stamps.count, rate: mean > 0 ? 1 / mean : 0, minPeriod: periods.min()!, maxPeriod: periods.max()!,
            stddevPeriod: variance.squareRoot(), bytesPerSecond: span > 0 ? Double(bytes) / span : 0)
    }
}
