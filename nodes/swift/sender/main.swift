// A timer-driven sender: on each tick of its `tick` input it sends the next sequence number on
// `count` (an [Int64] with `seq` in its metadata), and exits after `--count N` messages (default 10).
import ApusNode
import Glibc

func option(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let number = Int(arguments[index + 1]) else {
        return value
    }
    return number
}

do {
    let total = option("--count", default: 10)
    let node = try Node()
    var sent = 0
    while sent < total, let event = try node.next() {
        switch event {
        case .input:
            try node.send("count", [Int64(sent)], metadata: Metadata(["seq": .int(Int64(sent))]))
            sent += 1
        case .stop:
            print("stopping early")
        default:
            break
        }
    }
    print("sent \(sent) message\(sent == 1 ? "" : "s")")
} catch {
    var message = "sender: \(error)\n"
    message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}
