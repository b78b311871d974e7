import Yams

/// A YAML scalar read with the YAML 1.2 core schema, as dora (serde_yaml) reads it:
/// `yes`/`no`/`on`/`off` stay strings, and quoting always makes a string.
enum ScalarValue: Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)

    init(_ scalar: Node.Scalar) {
        let text = scalar.string
        if scalar.tag.rawValue == Tag.Name.str.rawValue || scalar.style != .plain {
            self = .string(text)
            return
        }
        switch text {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true", "True", "TRUE": self = .bool(true)
        case "false", "False", "FALSE": self = .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": self = .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": self = .float(-.infinity)
        case ".nan", ".NaN", ".NAN": self = .float(.nan)
        default:
            if let value = ScalarValue.integer(text) {
                self = .int(value)
            } else if ScalarValue.looksLikeFloat(text), let value = Double(text) {
                self = .float(value)
            } else {
                self = .string(text)
            }
        }
    }

    private static func integer(_ text: String) -> Int64? {
        if text.hasPrefix("0x") { return Int64(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0o") { return Int64(text.dropFirst(2), radix: 8) }
        let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        return Int64(text)
    }

    private static func looksLikeFloat(_ text: String) -> Bool {
        text.contains(where: \.isASCIIDigit) && text.allSatisfy { $0.isASCIIDigit || "+-.eE".contains($0) }
    }
}

extension Node {
    /// How a value reads in an error message: "a mapping", "a list", "nothing", "the string 'x'", …
    var kindDescription: String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch ScalarValue(scalar) {
            case .null: return "nothing"
            case .bool(let value): return "the boolean \(value)"
            case .int(let value): return "the integer \(value)"
            case .float(let value): return "the number \(scalar.string.isEmpty ? String(value) : scalar.string)"
            case .string(let value): return "the string '\(value)'"
            }
        }
    }

    /// Position of this node; composed nodes always carry one.
    var position: (line: Int, column: Int) {
        let mark = self.mark
        return (mark?.line ?? 1, mark?.column ?? 1)
    }
}
