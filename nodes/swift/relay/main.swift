// Forwards every message of every input, unchanged, on each of its declared outputs.
import ApusNode
import Glibc

do {
    let node = try Node()
    var relayed = 0
    while let event = try node.next() {
        guard case .input(let input) = event else { continue }
        for output in node.outputIDs { try node.send(output, input.bytes, metadata: input.metadata) }
        relayed += 1
    }
    print("relayed \(relayed) message\(relayed == 1 ? "" : "s")")
} catch {
    var message = "relay: \(error)\n"
    message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}
