/// One problem found in a dataflow file, positioned so a person can go and fix it.
///
/// Rendered as `file:line:column: node 'id': input 'frame': message`; the node and
/// context parts appear only when they apply.
public struct DataflowDiagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    /// The dataflow file as the user named it.
    public var file: String
    /// 1-based line, or nil when the problem concerns the whole file (e.g. it cannot be read).
    public var line: Int?
    /// 1-based column, counted in Unicode scalars as libyaml does.
    public var column: Int?
    /// The node the problem belongs to: its id, or `#N` (1-based) when it has no usable id.
    public var node: String?
    /// Enclosing parts below the node, outermost first, e.g. `["input 'frame'"]`.
    public var context: [String]
    /// What is wrong and what was expected.
    public var message: String

    public init(file: String, line: Int?, column: Int?, node: String? = nil, context: [String] = [], message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.node = node
        self.context = context.map(Self.shortened)
        self.message = Self.shortened(message)
    }

    /// The longest quoted value a message shows whole.
    static let longestQuote = 100

    /// `text` with every quoted value ('…') longer than `longestQuote` cut to its start and end
    /// and its length, so that a huge value in a file is not echoed whole.
    static func shortened(_ text: String) -> String {
        guard text.utf8.count > longestQuote else { return text }
        let parts = text.split(separator: "'", omittingEmptySubsequences: false)
        var result = String(parts[0])
        for index in 1..<parts.count {
            let part = parts[index]
            // Odd parts lie between quotes (the last one only when a quote closes it).
            if index % 2 == 1, index < parts.count - 1, part.count > longestQuote {
                result += "'\(part.prefix(40))…\(part.suffix(20))' (\(part.utf8.count) bytes)"
                continue
            }
            result += (index % 2 == 0 && parts[index - 1].count > longestQuote && index - 1 < parts.count - 1) ? part : "'" + part
        }
        return result
    }

    /// The diagnostic without its file name, e.g. `14:9: node 'detector': ...`.
    public var positionedMessage: String {
        var text = ""
        if let line, let column { text += "\(line):\(column): " }
        if let node { text += node.hasPrefix("#") ? "node \(node): " : "node '\(node)': " }
        for part in context { text += "\(part): " }
        return text + message
    }

    public var description: String {
        line == nil ? "\(file): \(positionedMessage)" : "\(file):\(positionedMessage)"
    }
}

/// Every problem found in one dataflow file, in file order.
public struct DataflowErrors: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [DataflowDiagnostic]

    public init(_ diagnostics: [DataflowDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
