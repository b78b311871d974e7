// What a node whose outputs are read on other machines is told in its environment, so that it
// writes their messages to DDS itself: `RUN DOMAIN BRIDGE TOPIC...`, each TOPIC as BridgeTopic
// writes it (OUTPUT=all|last:DEPTH:MACHINE,...). Ids and machine names hold no spaces.

public struct RemoteOutputsVariable: Sendable, Equatable, CustomStringConvertible {
    public static let name = "APUS_REMOTE_OUTPUTS"

    /// The run's id, which names its topics.
    public var run: String
    public var domain: UInt32
    /// The bridge-out node on this machine, whose input ring's position numbers each output's messages.
    public var bridge: String
    public var topics: [BridgeTopic]

    public init(run: String, domain: UInt32, bridge: String, topics: [BridgeTopic]) {
        self.run = run
        self.domain = domain
        self.bridge = bridge
        self.topics = topics
    }

    /// Parses the variable's value; the error says what is wrong with it.
    public init(_ text: String) throws(DDSError) {
        let words = text.split(separator: " ").map(String.init)
        guard words.count >= 4, let domain = UInt32(words[1]) else {
            throw DDSError("\(Self.name) '\(text)': expected RUN DOMAIN BRIDGE OUTPUT=all|last:DEPTH:MACHINE,...")
        }
        run = words[0]
        self.domain = domain
        bridge = words[2]
        topics = []
        for word in words.dropFirst(3) {
            do {
                topics.append(try BridgeTopic(word))
            } catch {
                throw DDSError("\(Self.name): \(error)")
            }
        }
    }

    public var description: String { ([run, String(domain), bridge] + topics.map(\.description)).joined(separator: " ") }
}
