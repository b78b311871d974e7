import ApusTransport
import Testing

/// How `apus run` tells a runtime node its operators (APUS_OPERATORS).
@Suite struct OperatorSpecTests {
    @Test func everyFieldSurvivesTheEnvironment() {
        let specs = [
            OperatorSpec(
                kind: "wasm", id: "threshold", location: "/tmp/a:b/9:x.wasm", fuelPerEvent: 5000, memoryLimit: 1 << 20,
                restartPolicy: "on-failure", maxRestarts: 3),
            OperatorSpec(
                kind: "numba", id: "gain", location: "/data/ops é.py", function: "gain",
                parameters: [.init(name: "factor", value: "0.5"), .init(name: "invert", value: "true"), .init(name: "taps", value: "-8")]),
            OperatorSpec(kind: "python", id: "stats", location: "stats.py"),
        ]
        #expect(OperatorSpec.decode(OperatorSpec.encode(specs)) == specs)
    }

    @Test func anythingElseIsRefused() {
        let valid = OperatorSpec.encode([
            OperatorSpec(kind: "numba", id: "g", location: "o.py", function: "g", parameters: [.init(name: "k", value: "1")])
        ])
        for text in ["garbage", "3:abc", String(valid.dropLast()), valid.replacingOccurrences(of: "3:k=1", with: "3:k:1"), "99999999999:x"]
        {
            #expect(OperatorSpec.decode(text) == nil, "\(text)")
        }
    }
}
