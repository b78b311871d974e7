// How one output crosses machines, as the bridges and the sending node are told it:
// `ID=all:DEPTH[:MACHINE,...]` or `ID=last:DEPTH[:MACHINE,...]`.

/// A topic's delivery (`all`: none lost, at most DEPTH beyond what every reading machine passed
/// on; `last`: the newest DEPTH) and, on the sending side, the machines that read it.
public struct BridgeTopic: Sendable, Equatable, CustomStringConvertible {
    /// The output (or, to the bridge-out, its input) the topic carries.
    public var id: String
    public var delivery: DDSDelivery
    public var machines: [String]

    public init(id: String, delivery: DDSDelivery, machines: [String]) {
        self.id = id
        self.delivery = delivery
        self.machines = machines
    }

    /// Parses `ID=all:DEPTH[:MACHINE,...]` or `ID=last:DEPTH[:MACHINE,...]`; the error quotes the text.
    public init(_ text: String) throws(DDSError) {
        let halves = text.split(separator: "=", maxSplits: 1).map(String.init)
        let parts = halves.count == 2 ? halves[1].split(separator: ":", omittingEmptySubsequences: false).map(String.init) : []
        guard halves.count == 2, !halves[0].isEmpty, parts.count >= 2, parts.count <= 3, ["all", "last"].contains(parts[0]),
            let depth = Int(parts[1]), depth > 0
        else { throw DDSError("'\(text)': expected ID=all:DEPTH[:MACHINE,...] or ID=last:DEPTH[:MACHINE,...]") }
        id = halves[0]
        delivery = parts[0] == "all" ? .everyMessage(buffered: depth) : .newest(depth)
        machines = parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : []
    }

    public var description: String {
        "\(id)=\(delivery.keepAll ? "all" : "last"):\(delivery.depth)" + (machines.isEmpty ? "" : ":" + machines.joined(separator: ","))
    }
}
