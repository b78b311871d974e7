// Exercises the ApusNode API across two processes. `produce` sends one message of each kind on
// `out`; `consume` (which reads with `for try await event in node.events`) checks each one and
// prints "ok <case>" or "FAIL <case>: <why>".
import ApusNode
import Glibc

let role = CommandLine.arguments.dropFirst().first ?? ""

let parameters: KeyValuePairs<String, Parameter> = [
    "flag": .bool(true), "count": .int(-42), "ratio": .float(0.25), "name": .string("camera-1"),
    "flags": .bools([true, false]), "counts": .ints([1, 2, 3]), "ratios": .floats([0.5, 1.5]),
    "names": .strings(["a", "bc"]),
]

func produce(_ node: Node) throws {
    try node.send("out", [UInt8](0..<200), metadata: Metadata(["case": .string("uint8")]))
    try node.send("out", [Int8](-5...5), metadata: Metadata(["case": .string("int8")]))
    try node.send("out", [UInt16](repeating: 65535, count: 3), metadata: Metadata(["case": .string("uint16")]))
    try node.send("out", [Int16](repeating: -300, count: 3), metadata: Metadata(["case": .string("int16")]))
    try node.send("out", [UInt32](repeating: 4_000_000_000, count: 3), metadata: Metadata(["case": .string("uint32")]))
    try node.send("out", [Int32](repeating: -70000, count: 3), metadata: Metadata(["case": .string("int32")]))
    try node.send("out", [UInt64](repeating: .max, count: 3), metadata: Metadata(["case": .string("uint64")]))
    try node.send("out", [Int64](repeating: .min, count: 3), metadata: Metadata(["case": .string("int64")]))
    try node.send("out", [Float16](repeating: 1.5, count: 3), metadata: Metadata(["case": .string("float16")]))
    var shaped = Metadata(["case": .string("float32")])
    shaped.shape = [2, 3]
    try node.send("out", [Float](repeating: 3.25, count: 6), metadata: shaped)
    try node.send("out", [Double](repeating: -2.5, count: 3), metadata: Metadata(["case": .string("float64")]))
    try node.send("out", [true, false, true], metadata: Metadata(["case": .string("bool")]))
    try node.send("out", "héllo", metadata: Metadata(["case": .string("utf8")]))
    try node.send("out", [UInt8](), metadata: Metadata(parameters))
    // Zero-copy: fill the shared sample in place.
    let sample = try node.allocate(output: "out", count: 1_000_000, of: Double.self)
    for index in sample.buffer.indices { sample.buffer[index] = Double(index) }
    try node.send(sample, metadata: Metadata(["case": .string("allocate")]))
    // Dropped without sending: goes back to the pool.
    _ = try node.allocate(output: "out", count: 10, of: UInt8.self)
    do {
        try node.send("nowhere", [UInt8(1)])
        print("FAIL undeclared: no error")
    } catch {
        print("ok undeclared: \(error)")
    }
}

func check(_ input: Input) -> String? {
    guard case .string(let name)? = input[parameter: "case"] else {
        for (key, value) in parameters where input[parameter: key] != value {
            return "FAIL parameters: \(key) is \(String(describing: input[parameter: key]))"
        }
        return input.bytes.isEmpty && input.elementType == .uint8 ? "ok parameters" : "FAIL parameters: payload"
    }
    func same<T: Element & Equatable>(_ expected: [T]) -> String {
        input.array(of: T.self) == expected && input.elementType == T.elementType
            ? "ok \(name)" : "FAIL \(name): \(input.elementType) \(input.bytes.count) bytes"
    }
    switch name {
    case "uint8": return same([UInt8](0..<200))
    case "int8": return same([Int8](-5...5))
    case "uint16": return same([UInt16](repeating: 65535, count: 3))
    case "int16": return same([Int16](repeating: -300, count: 3))
    case "uint32": return same([UInt32](repeating: 4_000_000_000, count: 3))
    case "int32": return same([Int32](repeating: -70000, count: 3))
    case "uint64": return same([UInt64](repeating: .max, count: 3))
    case "int64": return same([Int64](repeating: .min, count: 3))
    case "float16": return same([Float16](repeating: 1.5, count: 3))
    case "float32": return input.shape == [2, 3] ? same([Float](repeating: 3.25, count: 6)) : "FAIL float32: shape \(input.shape)"
    case "float64": return same([Double](repeating: -2.5, count: 3))
    case "bool": return same([true, false, true])
    case "utf8": return input.string == "héllo" ? "ok utf8" : "FAIL utf8"
    case "allocate":
        let sum = input.withElements(of: Double.self) { $0.reduce(0, +) }
        // The payload is the producer's pool, mapped read-only: no copy was made.
        return sum == 499_999_500_000 ? "ok allocate" : "FAIL allocate: sum \(String(describing: sum))"
    default: return "FAIL unknown case \(name)"
    }
}

func consume(_ node: Node) async throws {
    for try await event in node.events {
        switch event {
        case .input(let input):
            print(check(input) ?? "FAIL nil")
            input.release()
            print(input.bytes.isEmpty ? "ok released" : "FAIL released: payload still visible")
        case .inputClosed(let id):
            print("closed \(id)")
        default:
            break
        }
    }
    print("events ended")
}

do {
    let node = try Node()
    if role == "produce" { try produce(node) } else { try await consume(node) }
} catch {
    print("api-node: \(error)")
    exit(1)
}
