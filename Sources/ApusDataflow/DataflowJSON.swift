// A dataflow file as JSON, for nodes that ask for it (dora's `dataflow_descriptor()`): the YAML
// as written, each scalar typed as the loader reads it (YAML 1.2 core schema).
import Yams

public enum DataflowJSON {
    /// The YAML text as JSON; nil if it is not YAML.
    public static func json(yaml: String) -> String? {
        guard let node = try? Yams.compose(yaml: yaml) else { return nil }
        var out = ""
        write(node, to: &out)
        return out
    }

    private static func write(_ node: Node, to out: inout String) {
        switch node {
        case .mapping(let mapping):
            out += "{"
            for (index, (key, value)) in mapping.enumerated() {
                if index > 0 { out += "," }
                string(key.scalar?.string ?? "\(key)", to: &out)
                out += ":"
                write(value, to: &out)
            }
            out += "}"
        case .sequence(let sequence):
            out += "["
            for (index, item) in sequence.enumerated() {
                if index > 0 { out += "," }
                write(item, to: &out)
            }
            out += "]"
        case .scalar(let scalar):
            switch ScalarValue(scalar) {
            case .null: out += "null"
            case .bool(let flag): out += flag ? "true" : "false"
            case .int(let number): out += String(number)
            case .float(let number) where number.isFinite: out += "\(number)"
            case .float, .string: string(scalar.string, to: &out)
            }
        case .alias:
            out += "null"
        }
    }

    private static func string(_ text: String, to out: inout String) {
        out += quoted(text)
    }

    /// `text` as a JSON string literal.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
