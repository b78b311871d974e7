// What the coordinator tells a runtime node about its operators, in its environment.

/// One operator a runtime node hosts, as its runtime needs it: the kind, the id its inputs and
/// outputs are qualified with, and where its code is.
public struct OperatorSpec: Sendable, Equatable {
    /// The environment variable that carries a runtime node's operators.
    public static let environmentName = "APUS_OPERATORS"

    public var kind: String
    public var id: String
    public var location: String
    /// A Wasm operator's budget per event and its memory limit in bytes (0 for other kinds).
    public var fuelPerEvent: UInt64
    public var memoryLimit: UInt64
    /// "never", "on-failure" or "always": whether a failed (or stopped) instance is replaced; and
    /// how many times at most (0: no limit).
    public var restartPolicy: String
    public var maxRestarts: UInt64
    /// A Numba operator's function in its module ("" for other kinds).
    public var function: String
    /// A Numba operator's `params:`, by argument name, each value as text (true, false, or a number).
    public var parameters: [Parameter]

    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(
        kind: String, id: String, location: String, fuelPerEvent: UInt64 = 0, memoryLimit: UInt64 = 0, restartPolicy: String = "never",
        maxRestarts: UInt64 = 0, function: String = "", parameters: [Parameter] = []
    ) {
        self.function = function
        self.parameters = parameters
        self.restartPolicy = restartPolicy
        self.maxRestarts = maxRestarts
        self.kind = kind
        self.id = id
        self.location = location
        self.fuelPerEvent = fuelPerEvent
        self.memoryLimit = memoryLimit
    }

    static let fieldCount = 9

    /// Each field as `LENGTH:BYTES` (UTF-8 lengths), nine per operator: any byte may appear in a path.
    /// Parameters are one field, `name=value` lines (names are identifiers, values have no newline).
    public static func encode(_ specs: [OperatorSpec]) -> String {
        specs.map { spec in
            [
                spec.kind, spec.id, spec.location, String(spec.fuelPerEvent), String(spec.memoryLimit), spec.restartPolicy,
                String(spec.maxRestarts), spec.function, spec.parameters.map { "\($0.name)=\($0.value)" }.joined(separator: "\n"),
            ]
            .map { "\($0.utf8.count):\($0)" }.joined()
        }.joined()
    }

    /// The operators `encode` wrote; nil for anything else.
    public static func decode(_ text: String) -> [OperatorSpec]? {
        var bytes = Substring(text).utf8[...]
        var fields: [String] = []
        while !bytes.isEmpty {
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon != bytes.startIndex,
                bytes.distance(from: bytes.startIndex, to: colon) <= 10,
                let length = Int(String(decoding: bytes[..<colon], as: UTF8.self)), length >= 0
            else { return nil }
            let start = bytes.index(after: colon)
            guard bytes.distance(from: start, to: bytes.endIndex) >= length else { return nil }
            let end = bytes.index(start, offsetBy: length)
            guard let field = String(validating: bytes[start..<end], as: UTF8.self) else { return nil }
            fields.append(field)
            bytes = bytes[end...]
        }
        guard fields.count % fieldCount == 0 else { return nil }
        var specs: [OperatorSpec] = []
        for start in stride(from: 0, to: fields.count, by: fieldCount) {
            guard let fuel = UInt64(fields[start + 3]), let memory = UInt64(fields[start + 4]), let restarts = UInt64(fields[start + 6])
            else { return nil }
            var parameters: [Parameter] = []
            for line in fields[start + 8].split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { return nil }
                parameters.append(Parameter(name: String(line[..<equals]), value: String(line[line.index(after: equals)...])))
            }
            specs.append(
                OperatorSpec(
                    kind: fields[start], id: fields[start + 1], location: fields[start + 2], fuelPerEvent: fuel, memoryLimit: memory,
                    restartPolicy: fields[start + 5], maxRestarts: restarts, function: fields[start + 7], parameters: parameters))
        }
        return specs
    }
}
