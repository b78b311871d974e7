// Type annotations on outputs and inputs (`output_types`, `input_types`), with dora's type URNs:
// `std/<category>/v<version>/<Name>`, optionally with parameters (`...AudioFrame[sample_type=f32]`).
// Types are never required; what is declared is checked statically (`apus check`, `apus run`) and,
// for primitive types, at run time when APUS_RUNTIME_TYPE_CHECK asks for it.
import Foundation
import Yams

/// A type URN as written: its base and its parameters.
public struct TypeURN: Sendable, Hashable, CustomStringConvertible {
    public var base: String
    public var parameters: [String: String]

    /// Parses `base` or `base[key=value,...]`; nil if malformed.
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let open = trimmed.firstIndex(of: "[") else {
            guard !trimmed.isEmpty, !trimmed.contains("]") else { return nil }
            base = trimmed
            parameters = [:]
            return
        }
        guard trimmed.hasSuffix("]") else { return nil }
        base = String(trimmed[..<open])
        parameters = [:]
        for pair in trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            parameters[parts[0]] = parts[1]
        }
        guard !base.isEmpty, !parameters.isEmpty else { return nil }
    }

    public var description: String {
        parameters.isEmpty
            ? base : base + "[" + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "]"
    }

    /// The element type a message of this type has, for the primitive types; nil for the others.
    public var elementTypeName: String? { TypeLibrary.primitives[base] }
}

/// The types a dataflow may name: dora's standard library, and user types from `types/` next to
/// the dataflow file (`types/myproject/sensors/v1.yml` defines `myproject/sensors/v1/<Name>`).
public struct TypeLibrary: Sendable {
    /// std/core/v1 types and the Apus element type a message of each has.
    static let primitives: [String: String] = [
        "std/core/v1/Float32": "float32", "std/core/v1/Float64": "float64", "std/core/v1/Int32": "int32",
        "std/core/v1/Int64": "int64", "std/core/v1/UInt8": "uint8", "std/core/v1/UInt32": "uint32",
        "std/core/v1/UInt64": "uint64", "std/core/v1/String": "utf8", "std/core/v1/Bool": "bool",
    ]
    /// The standard library, with the parameters each type takes.
    static let standard: [String: Set<String>] = {
        var types: [String: Set<String>] = [:]
        for name in primitives.keys { types[name] = [] }
        types["std/core/v1/Bytes"] = []
        for name in ["Vector3", "Quaternion", "Pose", "Transform"] { types["std/math/v1/" + name] = [] }
        for name in ["Twist", "JointState", "Odometry"] { types["std/control/v1/" + name] = [] }
        for name in ["BoundingBox", "Detection", "Segmentation"] { types["std/vision/v1/" + name] = [] }
        types["std/media/v1/Image"] = ["encoding"]
        types["std/media/v1/CompressedImage"] = ["format"]
        types["std/media/v1/PointCloud"] = ["point_type"]
        types["std/media/v1/AudioFrame"] = ["sample_type", "channels"]
        return types
    }()
    /// Widening that needs no conversion rule: each step, transitive up to three steps.
    static let widening: [String: String] = [
        "std/core/v1/UInt8": "std/core/v1/UInt32", "std/core/v1/UInt32": "std/core/v1/UInt64",
        "std/core/v1/Int32": "std/core/v1/Int64", "std/core/v1/Float32": "std/core/v1/Float64",
    ]
    static let bytes = "std/core/v1/Bytes"
    /// What a timer input carries.
    static let timer = "std/core/v1/UInt64"

    /// Type name → the parameters it takes (user types take any).
    var known: [String: Set<String>?]
    /// User rules (`type_rules`): `from` may feed an input of type `to`.
    var rules: Set<[String]>

    /// The standard types, and the user types found under `directory`/types; problems reading
    /// those are returned as messages.
    static func load(directory: String) -> (TypeLibrary, [String]) {
        var library = TypeLibrary(known: standard.mapValues { $0 }, rules: [])
        var problems: [String] = []
        let root = URL(fileURLWithPath: directory).appendingPathComponent("types")
        guard let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return (library, problems) }
        for case let url as URL in files where url.pathExtension == "yml" || url.pathExtension == "yaml" {
            let prefix = url.deletingPathExtension().path.dropFirst(root.path.count + 1)
            guard !prefix.hasPrefix("std/") else {
                problems.append("types/\(prefix): the std/ prefix is reserved for the standard library")
                continue
            }
            guard let text = try? String(contentsOf: url, encoding: .utf8), let document = try? Yams.compose(yaml: text),
                let types = document.mapping?["types"], case .mapping(let mapping) = types
            else {
                problems.append("types/\(prefix).\(url.pathExtension): expected a mapping 'types' of type names")
                continue
            }
            for (key, _) in mapping { if let name = key.scalar?.string { library.known["\(prefix)/\(name)"] = .some(nil) } }
        }
        return (library, problems)
    }

    /// Why `urn` names no type this library has, with a likely intended name; nil if it does.
    func problem(with urn: TypeURN) -> String? {
        guard let entry = known[urn.base] else {
            let close = known.keys.min { distance($0, urn.base) < distance($1, urn.base) }
            let hint = close.map { distance($0, urn.base) <= 3 ? " (did you mean '\($0)'?)" : "" } ?? ""
            return "unknown type '\(urn.base)'\(hint)"
        }
        if let allowed = entry, let bad = urn.parameters.keys.sorted().first(where: { !allowed.contains($0) }) {
            return allowed.isEmpty
                ? "type '\(urn.base)' takes no parameters (found '\(bad)')"
                : "type '\(urn.base)' has no parameter '\(bad)' (it takes \(allowed.sorted().joined(separator: ", ")))"
        }
        return nil
    }

    /// Whether a message of type `sent` may arrive on an input of type `expected`.
    func accepts(_ expected: TypeURN, from sent: TypeURN) -> Bool {
        if expected.base == Self.bytes { return true }
        if rules.contains([sent.base, expected.base]) { return true }
        var base = sent.base
        for _ in 0...3 {
            if base == expected.base {
                // Same base: parameters on both sides must agree; one side without is a wildcard.
                return expected.parameters.allSatisfy { key, value in sent.parameters[key].map { $0 == value } ?? true }
            }
            guard let wider = Self.widening[base] else { return false }
            base = wider
        }
        return false
    }

    private func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return row[b.count]
    }
}
