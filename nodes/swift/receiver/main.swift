// A sink: prints every message it receives with its latency, and a summary when its inputs close.
import ApusNode
import Glibc

do {
    let node = try Node()
    var received = 0
    var totalLatency: UInt64 = 0
    while let event = try node.next() {
        switch event {
        case .input(let input):
            let latency = input.ageNanoseconds
            received += 1
            totalLatency &+= latency
            let value = input.string.map { "\"\($0)\"" } ?? input.array(of: Int64.self).map { "\($0)" } ?? "\(input.bytes.count) bytes"
            print("\(input.id): \(value) (latency \(latency / 1_000) µs)")
        case .inputClosed(let id):
            print("input \(id) closed")
        case .nodeFailed(let failure):
            print("node \(failure.node) failed: \(failure.message)")
        case .stop, .error:
            break
        }
    }
    let mean = received == 0 ? 0 : totalLatency / UInt64(received) / 1_000
    print("received \(received) message\(received == 1 ? "" : "s"), mean latency \(mean) µs")
} catch {
    var message = "receiver: \(error)\n"
    message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}
