// The runtime type check: each send on an output with a declared primitive type (`output_types`)
// or required metadata keys (`output_metadata`, `pattern`) is checked against them when
// APUS_RUNTIME_TYPE_CHECK (or dora's DORA_RUNTIME_TYPE_CHECK) is `warn` (also 1 or true: the first
// mismatch per output is printed) or `error` (the send fails). `apus run` passes the declarations
// in APUS_OUTPUT_CONTRACTS: a line per output, `output<TAB>element type or -<TAB>key,key`.
import ApusTransport
import Glibc

final class OutputContracts: @unchecked Sendable {
    struct Contract {
        /// The element type messages must have; nil when the type is not a primitive one.
        var elementType: ElementType?
        var typeName: String
        var requiredKeys: [String]
    }

    /// Messages of services and actions carry several shapes on one output: not type-checked.
    static let patternKeys: Set = ["request_id", "goal_id", "goal_status"]

    let failsSend: Bool
    let contracts: [Int: Contract]
    private let lock = Lock()
    private var warned: Set<Int> = []

    /// The check this process was asked for, or nil (no overhead) when it was not.
    static func fromEnvironment(outputs: [String]) -> OutputContracts? {
        let names = ["APUS_RUNTIME_TYPE_CHECK", "DORA_RUNTIME_TYPE_CHECK"]
        let mode = names.compactMap { name in getenv(name).map { String(cString: $0) } }.first
        guard let mode = mode?.lowercased(), ["1", "true", "warn", "error"].contains(mode),
            let text = getenv("APUS_OUTPUT_CONTRACTS").map({ String(cString: $0) })
        else { return nil }
        var contracts: [Int: Contract] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4, let index = outputs.firstIndex(of: fields[0]) else { continue }
            let element = ElementType.allCases.first { "\($0)" == fields[1] }
            contracts[index] = Contract(
                elementType: element, typeName: fields[2], requiredKeys: fields[3].split(separator: ",").map(String.init))
        }
        return contracts.isEmpty ? nil : OutputContracts(failsSend: mode == "error", contracts: contracts)
    }

    init(failsSend: Bool, contracts: [Int: Contract]) {
        self.failsSend = failsSend
        self.contracts = contracts
    }

    /// Why a message with `metadata` breaks the contract of output `index`, if it does.
    func violation(output index: Int, _ metadata: Metadata) -> String? {
        guard let contract = contracts[index] else { return nil }
        let keys = Set(metadata.parameters.map(\.key))
        if let missing = contract.requiredKeys.first(where: { !keys.contains($0) }) {
            return "it lacks the metadata key '\(missing)' that output_metadata requires"
        }
        // Plain bytes (uint8 without a shape) are untyped, as dora's raw sends are; pattern
        // messages may carry several shapes.
        guard let expected = contract.elementType, keys.isDisjoint(with: Self.patternKeys),
            !(metadata.elementType == .uint8 && metadata.shape.isEmpty && expected != .uint8), metadata.elementType != expected
        else { return nil }
        return "it is \(metadata.elementType), and output_types declares \(contract.typeName) (\(expected))"
    }

    /// Checks a send; in warn mode prints the first violation per output and lets it pass.
    func check(output index: Int, name: String, _ metadata: Metadata) throws(NodeError) {
        guard let reason = violation(output: index, metadata) else { return }
        let message = "runtime type check: a message on '\(name)' does not fit: \(reason)"
        if failsSend { throw .contractViolation(message) }
        let first = lock.locked { warned.insert(index).inserted }
        if first { writeLine(2, "WARN  \(message) (only the first is reported)") }
    }
}
